import Foundation
import GatehouseTesting
import Testing

/// The daemon with an `mqtt` sink to a real mosquitto, a `mosquitto_sub` consumer with a
/// persistent session: `kill -9` of the daemon and a broker restart lose nothing acknowledged.
@Suite("mqtt sink end to end", .serialized, .enabled(if: MosquittoBroker.available, "mosquitto is not installed (scripts/test installs it)"))
struct MQTTEndToEndTests {
    static func ids(_ consumer: MosquittoSubscriber) -> Set<String> {
        Set(consumer.messages.compactMap { message in
            (try? JSONSerialization.jsonObject(with: Data(message.payload.utf8)) as? [String: Any])?["id"] as? String
        })
    }

    @Test("kill -9 mid-delivery, then the broker restarted: every acknowledged event reaches the consumer")
    func crashAndBrokerRestart() async throws {
        let broker = try MosquittoBroker()
        try await broker.start()
        let consumer = MosquittoSubscriber(port: broker.port)
        try consumer.start()
        #expect(await eventually { broker.log.contains("gatehouse-test-consumer 1 gatehouse/#") })
        let (_, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        var site = TestSite(receiverPort: port)
        defer { site.remove() }
        site.sinkExtra = """
              - {name: broker, type: mqtt, host: 127.0.0.1, port: \(broker.port), client_id: gatehouse-e2e, connect_timeout_seconds: 2, batch_max_events: 50, backoff_initial_seconds: 0.05, backoff_max_seconds: 0.5}
            """
        let config = try site.write()
        let devices = site.devices
        let oracle = Oracle()
        for iteration in 0..<3 {
            let (daemon, ingest, _) = try await DaemonProcess.start(configPath: config)
            let load = Task {
                await oracle.load(baseURL: "http://127.0.0.1:\(ingest)", workers: 4, devices: devices, batch: 2, seed: UInt64(iteration + 1))
            }
            await DeliveryTests.waitUntil(oracle, acknowledged: oracle.acknowledgedCount + 11)
            await daemon.kill9()
            load.cancel()
            await load.value
        }
        // A last run: more events, and the broker restarted under it.
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: config)
        await oracle.load(baseURL: "http://127.0.0.1:\(ingest)", workers: 2, devices: devices, perWorker: 20, batch: 2, seed: 9)
        broker.stop()
        try await broker.start()
        consumer.stop()
        try consumer.start()
        let wanted = oracle.acknowledgedIDs
        #expect(wanted.count > 33, "load too small to mean anything: \(oracle.tally)")
        let arrived = await eventually(timeout: .seconds(120)) { Self.ids(consumer).isSuperset(of: wanted) }
        #expect(arrived, "missing \(wanted.subtracting(Self.ids(consumer)).count) of \(wanted.count):\n\(daemon.log.suffix(3000))")
        #expect(try await daemon.stop() == 0)
    }
}
