import Foundation
@testable import GatehouseCore
import GatehouseQueue
import GatehouseTesting
import Logging
import Testing

@testable import GatehouseSinks

/// The `mqtt` sink against a real mosquitto broker on 127.0.0.1 (Debian's `mosquitto`, which
/// `scripts/test` installs), with `mosquitto_sub` as the consumer.
@Suite("mqtt sink", .enabled(if: MosquittoBroker.available, "mosquitto is not installed (scripts/test installs it)"))
struct MQTTSinkTests {
    static let ids = EventIDGenerator()

    static func events(_ count: Int, kind: EventKind = .cameraIntrusion) throws -> [StoredEvent] {
        let now = Timestamp.now
        return try (0..<count).map { index in
            let event = Event(
                id: ids.next(), kind: kind, occurredAt: now, receivedAt: now, site: "sunny-garden",
                device: DeviceRef(id: "cam/\(index % 3)", vendor: "acme", type: .camera), source: Source(driver: "test"))
            return StoredEvent(seq: Int64(index + 1), priority: event.priority, body: try EventCoding.encode(event))
        }
    }

    static func sink(
        port: Int, version: MQTTSinkConfig.ProtocolVersion = .v5, user: String? = nil, password: String? = nil,
        clientID: String = "gatehouse-test-\(UUID().uuidString.prefix(8))", connectTimeout: Double = 20, ackTimeout: Double = 30
    ) throws -> MQTTSink {
        let config = MQTTSinkConfig(
            host: "127.0.0.1", port: port, protocolVersion: version, clientID: clientID,
            topic: "gatehouse/{site}/{priority}/{kind}/{device}", username: user,
            password: password.map { Secret(value: $0, origin: "test") }, connectTimeoutSeconds: connectTimeout, ackTimeoutSeconds: ackTimeout)
        return try MQTTSink(name: "broker", config: config, logger: Logger(label: "mqtt-test"))
    }

    static func ids(_ events: [StoredEvent]) -> Set<String> {
        Set(events.compactMap { MQTTSink.routingFields($0.body).id })
    }

    @Test("every event is one QoS 1 message on its topic, with the event id as a user property (MQTT 5)")
    func deliversWithEventID() async throws {
        let broker = try MosquittoBroker()
        try await broker.start()
        let consumer = MosquittoSubscriber(port: broker.port)
        try consumer.start()
        // The consumer's subscription must exist before publishing: wait until the broker logged it.
        #expect(await eventually { broker.log.contains("gatehouse-test-consumer 1 gatehouse/#") })
        let sink = try Self.sink(port: broker.port)
        let batch = try Self.events(25)
        #expect(await sink.send(SinkBatch(sink: "broker", events: batch)) == .delivered)
        #expect(await eventually { consumer.messages.count >= 25 })
        let received = consumer.messages
        #expect(received.count == 25)
        #expect(Set(received.map(\.payload)) == Set(batch.map { String(decoding: $0.body, as: UTF8.self) }))
        let first = try #require(received.first)
        #expect(first.topic.hasPrefix("gatehouse/sunny-garden/alarm/camera.intrusion/cam_"), "a / in the device id would add a level: \(first.topic)")
        let ids = Self.ids(batch)
        #expect(Set(received.compactMap { $0.properties.split(separator: ":").last.map(String.init) }) == ids,
                "event-id user properties: \(received.prefix(2).map(\.properties))")
        await sink.shutdown()
    }

    @Test("MQTT 3.1.1: delivered, and the id is in the payload")
    func version311() async throws {
        let broker = try MosquittoBroker()
        try await broker.start()
        let sink = try Self.sink(port: broker.port, version: .v311)
        #expect(await sink.send(SinkBatch(sink: "broker", events: try Self.events(5))) == .delivered)
        #expect(broker.log.contains("p2 c0 k30") || broker.log.contains("(p2, c0, k30"), "clean session off, MQTT 3.1.1")
        await sink.shutdown()
    }

    @Test("a wrong password is a fatal outcome that says so, and no retry storm follows")
    func wrongPassword() async throws {
        let broker = try MosquittoBroker(users: ["gatehouse": "right"])
        try await broker.start()
        let sink = try Self.sink(port: broker.port, user: "gatehouse", password: "wrong")
        let result = await sink.send(SinkBatch(sink: "broker", events: try Self.events(1)))
        guard case .fatal(let reason) = result else {
            Issue.record("expected fatal, got \(result)")
            return
        }
        #expect(reason.contains("refused the connection") && reason.lowercased().contains("not authorized"), "\(reason)")
        #expect(!reason.contains("wrong"), "the password is not in the reason")
        // A second send reports the same without a new connection of its own.
        let again = await sink.send(SinkBatch(sink: "broker", events: try Self.events(1)))
        #expect(again == result)
        await sink.shutdown()
        let attempts = broker.log.components(separatedBy: "not authorised").count - 1
        #expect(attempts >= 1 && attempts <= 3, "connection attempts refused: \(attempts)\n\(broker.log)")

        let good = try Self.sink(port: broker.port, user: "gatehouse", password: "right")
        #expect(await good.send(SinkBatch(sink: "broker", events: try Self.events(1))) == .delivered)
        await good.shutdown()
    }

    @Test("broker down: retryable; the broker back (killed and restarted): delivered, nothing lost")
    func brokerRestart() async throws {
        let broker = try MosquittoBroker()
        let clientID = "gatehouse-restart-\(UUID().uuidString.prefix(8))"
        let sink = try Self.sink(port: broker.port, clientID: clientID, connectTimeout: 5)
        let first = try Self.events(10)
        let down = await sink.send(SinkBatch(sink: "broker", events: first))
        guard case .retryable(_, let reason) = down else {
            Issue.record("expected retryable while the broker is down, got \(down)")
            return
        }
        #expect(reason.contains("127.0.0.1:\(broker.port)"), "\(reason)")

        try await broker.start()
        let consumer = MosquittoSubscriber(port: broker.port)
        try consumer.start()
        #expect(await eventually { broker.log.contains("gatehouse-test-consumer 1 gatehouse/#") })
        // libmosquitto reconnects by itself (1 s, doubling): the runner's next tries succeed.
        var delivered = false
        for _ in 0..<30 where !delivered {
            delivered = await sink.send(SinkBatch(sink: "broker", events: first)) == .delivered
        }
        #expect(delivered)

        broker.stop(kill: true)
        let second = try Self.events(10)
        let lost = await sink.send(SinkBatch(sink: "broker", events: second))
        #expect(lost != .delivered)
        try await broker.start()
        // The kill lost the broker's copy of the consumer's subscription: only once the consumer has
        // subscribed again is there anyone the second batch can be routed to.
        let subscribed = "gatehouse-test-consumer 1 gatehouse/#"
        #expect(await eventually(timeout: .seconds(60)) { broker.log.components(separatedBy: subscribed).count - 1 >= 2 }, "\(broker.log.suffix(1500))")
        delivered = false
        for _ in 0..<30 where !delivered {
            delivered = await sink.send(SinkBatch(sink: "broker", events: second)) == .delivered
        }
        #expect(delivered)
        // The consumer's persistent session survived the kill only for what the broker had
        // persisted; what matters is that every event the sink reported delivered is there
        // (possibly twice: consumers deduplicate by event id).
        let wanted = Self.ids(first + second)
        consumer.stop()
        try consumer.start()
        #expect(await eventually { Set(consumer.messages.compactMap { MQTTSink.routingFields(Data($0.payload.utf8)).id }).isSuperset(of: Self.ids(second)) })
        let seen = Set(consumer.messages.compactMap { MQTTSink.routingFields(Data($0.payload.utf8)).id })
        #expect(seen.isSubset(of: wanted))
        await sink.shutdown()
    }

    @Test("config: topic templates and TLS files are checked with file, line and key")
    func configErrors() {
        func errors(_ sink: String) -> String {
            do {
                _ = try ConfigLoader.parse(
                    "site: s\nsinks:\n\(sink)", file: "site.yaml", knownDrivers: [], sinkTypes: SinkRegistry.readers)
                return ""
            } catch {
                return "\(error)"
            }
        }
        #expect(errors("  - {name: b, type: mqtt, host: 127.0.0.1, client_id: g}\n").isEmpty)
        let wildcard = errors("  - {name: b, type: mqtt, host: 127.0.0.1, client_id: g, topic: 'gatehouse/#'}\n")
        #expect(wildcard.contains("site.yaml:3") && wildcard.contains("topic") && wildcard.contains("wildcard"), "\(wildcard)")
        let placeholder = errors("  - {name: b, type: mqtt, host: 127.0.0.1, client_id: g, topic: 'g/{room}'}\n")
        #expect(placeholder.contains("{room}") && placeholder.contains("{site}, {kind}, {device}, {priority}"), "\(placeholder)")
        let noClient = errors("  - {name: b, type: mqtt, host: 127.0.0.1}\n")
        #expect(noClient.contains("client_id"), "\(noClient)")
        let version = errors("  - {name: b, type: mqtt, host: h, client_id: g, protocol: '3.1'}\n")
        #expect(version.contains("3.1.1") && version.contains("5"), "\(version)")
        let tls = errors("  - {name: b, type: mqtt, host: h, client_id: g, tls: {ca_file: /nonexistent/ca.pem}}\n")
        #expect(tls.contains("cannot read '/nonexistent/ca.pem'"), "\(tls)")
    }

    @Test("topic levels: placeholders filled, / + # in values replaced")
    func topics() {
        let config = MQTTSinkConfig(host: "h", clientID: "g", topic: "gw/{site}/{kind}/{device}/{priority}")
        #expect(config.topic(site: "a/b", kind: "camera.motion", device: "x+#", priority: "alarm") == "gw/a_b/camera.motion/x__/alarm")
        var nats = config
        nats.replaceDotsInTopic = true
        #expect(nats.topic(site: "a.b", kind: "camera.motion", device: "x", priority: "alarm") == "gw/a_b/camera_motion/x/alarm")
        #expect(MQTTSinkConfig.topicProblem("gatehouse/{site}/{kind}") == nil)
        #expect(MQTTSinkConfig.topicProblem("a/{site") != nil)
    }

    @Test("over TLS with a client certificate to a broker that requires one: delivered; without the CA of the broker, not")
    func overTLS() async throws {
        let certificates = try await TestCertificates()
        let unrelated = try await TestCertificates()
        defer {
            certificates.remove()
            unrelated.remove()
        }
        let broker = try MosquittoBroker(tls: .init(certificates, requireClientCertificate: true))
        try await broker.start()
        let tlsPort = try #require(broker.tlsPort)
        func sink(ca: String, clientID: String) throws -> MQTTSink {
            let config = MQTTSinkConfig(
                host: "127.0.0.1", port: tlsPort, clientID: clientID, caFile: ca, clientCertificateFile: certificates.clientCert,
                clientKeyFile: certificates.clientKey, connectTimeoutSeconds: 5)
            return try MQTTSink(name: "broker", config: config, logger: Logger(label: "mqtt-test"))
        }
        let trusted = try sink(ca: certificates.ca, clientID: "gatehouse-tls-sink")
        #expect(await trusted.send(SinkBatch(sink: "broker", events: try Self.events(5))) == .delivered)
        // tlsPort is the TLS listener, which speaks nothing else.
        #expect(broker.log.contains("as gatehouse-tls-sink"), "\(broker.log.suffix(2000))")
        await trusted.shutdown()

        let untrusting = try sink(ca: unrelated.ca, clientID: "gatehouse-tls-wrong-ca")
        let result = await untrusting.send(SinkBatch(sink: "broker", events: try Self.events(1)))
        #expect(result != .delivered)
        #expect(!broker.log.contains("as gatehouse-tls-wrong-ca"))
        await untrusting.shutdown()
    }

    @Test(
        "NATS's MQTT interface drops the connection for a '.' in a topic: the reason names the topic and topic_replace_dots; with it, delivered",
        .enabled(if: NATSCluster.available, "nats-server is not installed (scripts/test installs it)"))
    func topicRefusedByNATS() async throws {
        let nats = try NATSCluster(size: 1)
        try await nats.start()
        try #require(await nats.waitUntilMQTTStores(), "no QoS 1 publish accepted:\n\(nats.log(node: 0).suffix(3000))")
        func sink(replaceDots: Bool) throws -> MQTTSink {
            // NATS speaks MQTT 3.1.1; {kind} of a camera intrusion is camera.intrusion.
            let config = MQTTSinkConfig(
                host: "127.0.0.1", port: nats.nodes[0].mqttPort, protocolVersion: .v311, clientID: "gatehouse-dots-\(replaceDots)",
                topic: "gatehouse/{site}/{kind}", connectTimeoutSeconds: 20, ackTimeoutSeconds: 30, replaceDotsInTopic: replaceDots)
            return try MQTTSink(name: "district", config: config, logger: Logger(label: "mqtt-test"))
        }
        let dotted = try sink(replaceDots: false)
        let refused = await dotted.send(SinkBatch(sink: "district", events: try Self.events(2)))
        await dotted.shutdown()
        guard case .retryable(_, let reason) = refused else {
            Issue.record("expected a retryable outcome, got \(refused)")
            return
        }
        // NATS closes the connection: seen while waiting for the PUBACK ("lost") or at the next
        // publish ("not currently connected"), as the timing falls; either way the topic and the fix are named.
        #expect((reason.contains("lost") || reason.contains("not currently connected")), "\(reason)")
        #expect(reason.contains("'gatehouse/sunny-garden/camera.intrusion'") && reason.contains("topic_replace_dots: true"), "\(reason)")
        #expect(nats.log(node: 0).contains("not supported for MQTT topics"))

        let replaced = try sink(replaceDots: true)
        #expect(await replaced.send(SinkBatch(sink: "district", events: try Self.events(2))) == .delivered)
        await replaced.shutdown()
    }

    @Test("the hint for a refused topic names only a topic with '.' or ' '")
    func refusedTopicHint() {
        #expect(MosquittoClient.refusedTopicHint(["gatehouse/a/access_granted"]).isEmpty)
        #expect(MosquittoClient.refusedTopicHint(["gatehouse/a/b", "gatehouse/a/access.granted"]).contains("'gatehouse/a/access.granted'"))
    }
}
