import Foundation
import GatehouseTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A district (docs/district.md): three gateways — real daemons — publish through the `mqtt`
/// sink to different nodes of a three-node NATS JetStream cluster; one node is killed during
/// delivery and started again.
///
/// What "acknowledged" means there (nats-server 2.9, server/mqtt.go `mqttProcessPub`): a QoS 1
/// PUBLISH is stored in the JetStream stream `$MQTT_msgs` (replicated to three nodes here) and the
/// PUBACK is sent only after that store answered; a store that fails closes the connection
/// without a PUBACK. So every event a gateway's cursor passed is in `$MQTT_msgs`. NATS's MQTT
/// interface speaks 3.1.1 only, so the event id travels in the payload, and MQTT cannot set the
/// `Nats-Msg-Id` header JetStream deduplicates by: a PUBLISH stored whose PUBACK was lost is
/// stored again when the sink retries. Duplicates are therefore possible and must be removable
/// by event id: each repeat carries the same id with the same bytes.
@Suite(
    "district: gateways on a NATS JetStream cluster", .serialized,
    .enabled(if: NATSCluster.available, "nats-server is not installed (scripts/test installs it)"))
struct DistrictTests {
    static let gateways = 3

    struct Stored {
        /// Event id → how many times it is stored, and the distinct payloads seen under it.
        var copies: [String: Int] = [:]
        var payloads: [String: Set<String>] = [:]
        var unreadable = 0

        init(_ rows: [[Any]]) {
            for row in rows {
                guard let id = row.first as? String, let digest = row.last as? String else {
                    unreadable += 1
                    continue
                }
                copies[id, default: 0] += 1
                payloads[id, default: []].insert(digest)
            }
        }

        var ids: Set<String> { Set(copies.keys) }
        var duplicates: Int { copies.values.reduce(0) { $0 + $1 - 1 } }
    }

    static func mqttSink(_ sinks: Any?) -> [String: Any]? {
        (sinks as? [[String: Any]])?.first { ($0["status"] as? [String: Any])?["name"] as? String == "district" }
    }

    static func delivered(admin: Int) async throws -> Int {
        let status = try await RobustnessTests.status(adminPort: admin)
        return (mqttSink(status["sinks"])?["status"] as? [String: Any])?["deliveredEvents"] as? Int ?? 0
    }

    static func lag(admin: Int) async throws -> Int {
        let status = try await RobustnessTests.status(adminPort: admin)
        return mqttSink(status["sinks"])?["lag"] as? Int ?? -1
    }

    @Test("a node killed during delivery and restarted: every acknowledged event is in $MQTT_msgs; repeats are byte-identical by event id")
    func nodeKilledDuringDelivery() async throws {
        let cluster = try NATSCluster()
        try await cluster.start()
        // Retried while JetStream elects its leaders.
        try #require(await cluster.waitUntilMQTTStores(), "no QoS 1 publish accepted by the cluster:\n\(cluster.log(node: 0).suffix(3000))")
        let prepared = try JSONSerialization.jsonObject(with: Data(try await cluster.jetstream(["prepare"]).utf8)) as? [String: Any]
        let replicas = try #require(prepared?["replicas"] as? [String: Int])
        #expect(replicas == ["$MQTT_msgs": 3, "DISTRICT": 3], "replicas: \(replicas)")

        let (_, receiverTask, receiverPort) = try await startReceiver()
        defer { receiverTask.cancel() }
        var daemons: [(daemon: DaemonProcess, ingest: Int, admin: Int)] = []
        var sites: [TestSite] = []
        var loads: [Task<Void, Never>] = []
        defer {
            // Also when an expectation above threw: nothing of this test outlives it.
            loads.forEach { $0.cancel() }
            for gateway in daemons where gateway.daemon.process.isRunning { gateway.daemon.sendSignal(SIGKILL) }
            sites.forEach { $0.remove() }
        }
        for gateway in 0..<Self.gateways {
            var site = TestSite(receiverPort: receiverPort, name: "district\(gateway)")
            // Gateway i publishes to node i: each node has its own publishers.
            site.sinkExtra = """
                  - {name: district, type: mqtt, host: 127.0.0.1, port: \(cluster.nodes[gateway].mqttPort), protocol: "3.1.1", topic_replace_dots: true, client_id: gatehouse-district-\(gateway), connect_timeout_seconds: 2, ack_timeout_seconds: 10, batch_max_events: 50, backoff_initial_seconds: 0.05, backoff_max_seconds: 0.5}
                """
            sites.append(site)
            daemons.append(try await DaemonProcess.start(configPath: try site.write()))
        }
        let oracle = Oracle()
        loads = daemons.enumerated().map { index, gateway in
            Task {
                await oracle.load(
                    baseURL: "http://127.0.0.1:\(gateway.ingest)", workers: 2, devices: 4, batch: 2, seed: UInt64(index + 1))
            }
        }
        // Node 1 dies while its gateway is delivering (the load goes on, so it has more to send).
        let victim = 1
        #expect(await eventually(timeout: .seconds(120)) { try await Self.delivered(admin: daemons[victim].admin) >= 50 })
        cluster.kill(node: victim)
        // The other two keep a quorum: their gateways' events are still acknowledged.
        var before: [Int] = []
        for gateway in daemons { before.append(try await Self.delivered(admin: gateway.admin)) }
        for index in daemons.indices where index != victim {
            let admin = daemons[index].admin
            let progressed = await eventually(timeout: .seconds(120), poll: .milliseconds(100)) {
                try await Self.delivered(admin: admin) >= before[index] + 50
            }
            #expect(progressed, "gateway \(index) got no PUBACKs with node \(victim) down:\n\(daemons[index].daemon.log.suffix(2000))")
        }
        loads.forEach { $0.cancel() }
        for load in loads { await load.value }
        try await cluster.start(node: victim)

        // Every gateway's cursor at the end of its queue: every event it took is acknowledged.
        for (index, gateway) in daemons.enumerated() {
            let drained = await eventually(timeout: .seconds(180), poll: .milliseconds(200)) { try await Self.lag(admin: gateway.admin) == 0 }
            #expect(drained, "gateway \(index) still has events to deliver:\n\(gateway.daemon.log.suffix(3000))")
        }
        for gateway in daemons { #expect(try await gateway.daemon.stop() == 0) }
        let acknowledged = oracle.acknowledgedIDs
        #expect(acknowledged.count > 300, "load too small to mean anything: \(oracle.tally)")

        let read = try JSONSerialization.jsonObject(with: Data(try await cluster.jetstream(["read"]).utf8)) as? [String: Any]
        let stored = Stored(try #require(read?["$MQTT_msgs"] as? [[Any]]))
        let missing = acknowledged.subtracting(stored.ids)
        #expect(missing.isEmpty, "\(missing.count) of \(acknowledged.count) acknowledged events are not in $MQTT_msgs")
        // (The stream may also hold events the oracle does not know: a push cancelled when the
        // load stops can be committed by the gateway without its reply being read.)
        #expect(stored.unreadable == 0, "\(stored.unreadable) stored messages without an event id")
        // Duplicates may exist (see above); each must be the same event, so dropping by id is safe.
        let differing = stored.payloads.filter { $0.value.count > 1 }
        #expect(differing.isEmpty, "ids stored with different payloads: \(differing.keys.prefix(5))")

        // Our own stream on gatehouse.> gets each message as a plain NATS publish, without an
        // acknowledgement to anyone: what it misses is reported, never relied on.
        let captured = Stored(try #require(read?["DISTRICT"] as? [[Any]]))
        print("district: \(acknowledged.count) events acknowledged to the devices by 3 gateways; $MQTT_msgs holds \(stored.copies.values.reduce(0, +)) messages, \(stored.ids.count) distinct event ids, \(stored.duplicates) duplicates; the gatehouse.> capture stream misses \(acknowledged.subtracting(captured.ids).count) of the acknowledged events and holds \(captured.duplicates) duplicates")
    }
}
