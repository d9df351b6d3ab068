import Foundation
import GatehouseCore
import GatehouseDaemon
import GatehouseTesting
import Logging
import Synchronization
import Testing

@testable import GatehouseIngest

@Suite("mqtt driver: topics and config")
struct MQTTDriverConfigTests {
    @Test("topic filters: + is one level, # the rest, $ topics need an explicit first level")
    func topicMatching() {
        #expect(MQTTTopicFilter.matches("sensors/+/alarm", topic: "sensors/b3/alarm"))
        #expect(!MQTTTopicFilter.matches("sensors/+/alarm", topic: "sensors/b3/x/alarm"))
        #expect(MQTTTopicFilter.matches("sensors/#", topic: "sensors"))
        #expect(MQTTTopicFilter.matches("sensors/#", topic: "sensors/b3/smoke/1"))
        #expect(!MQTTTopicFilter.matches("sensors/#", topic: "lpr/gate"))
        #expect(MQTTTopicFilter.matches("lpr/gate-east", topic: "lpr/gate-east"))
        #expect(!MQTTTopicFilter.matches("lpr/gate-east", topic: "lpr/gate-east/x"))
        #expect(!MQTTTopicFilter.matches("#", topic: "$SYS/broker/uptime"))
        #expect(MQTTTopicFilter.matches("$SYS/#", topic: "$SYS/broker/uptime"))
        #expect(MQTTTopicFilter.matches("+/+", topic: "a/"))
        #expect(MQTTTopicFilter.problem("sensors/#/x") != nil)
        #expect(MQTTTopicFilter.problem("sensors/b+/x") != nil)
        #expect(MQTTTopicFilter.problem("") != nil)
        #expect(MQTTTopicFilter.problem("sensors/+/alarm") == nil)
    }

    @Test("broker URLs: mqtt:// 1883, mqtts:// 8883, anything else refused")
    func brokerAddress() {
        #expect(MQTTDeviceSettings.brokerAddress("mqtt://10.0.0.5")! == ("10.0.0.5", 1883, false))
        #expect(MQTTDeviceSettings.brokerAddress("mqtts://broker.example.org:18883")! == ("broker.example.org", 18883, true))
        #expect(MQTTDeviceSettings.brokerAddress("http://10.0.0.5") == nil)
        #expect(MQTTDeviceSettings.brokerAddress("10.0.0.5:1883") == nil)
        #expect(MQTTDeviceSettings.brokerAddress("mqtt://10.0.0.5/path") == nil)
    }

    @Test("config errors name the file, the line, the key and what would be valid")
    func configErrors() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-mqtt-config-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/gatehouse.yaml"
        try """
            site: test
            state_directory: \(directory)/state
            adapters_directory: \(shippedAdapters)
            devices:
              - id: sos-hub
                driver: mqtt
                type: alarm-panel
                address: tcp://10.0.0.5:1883
                auth: {token: abc}
                options: {profile: mqtt-alarm-sensor, topic: "sensors/#/x"}
              - id: lpr-east
                driver: mqtt
                type: lpr-camera
                address: mqtt://10.0.0.5
                options: {profile: mqtt-lpr-camera, topic: lpr/east, protocol: "4"}
              - id: lpr-west
                driver: mqtt
                type: lpr-camera
                address: mqtt://10.0.0.5
                options: {profile: mqtt-lpr-camra, ca_file: /nonexistent/ca.pem}
            sinks:
              - {name: out, type: file, path: \(directory)/out.ndjson}
            """.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError.self) { try GatehouseDaemon.loadConfig(path: path) }
        do {
            _ = try GatehouseDaemon.loadConfig(path: path)
        } catch {
            let lines = error.diagnostics.map(\.description)
            let text = lines.joined(separator: "\n")
            // The option the loader reads: its own line and the valid choices.
            #expect(lines.contains { $0.contains("\(path):15") && $0.contains("protocol") && $0.contains("3.1.1") }, "\(text)")
            if !text.contains("protocol") { return }
            // The drivers' own checks run too once the loader read every device: all at once.
        }
        // With the option fixed, the driver's checks: address, topic, auth, profile, TLS file.
        try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: ", protocol: \"4\"", with: "")
            .write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try GatehouseDaemon.loadConfig(path: path)
            Issue.record("a config with four mistakes loaded")
        } catch {
            let lines = error.diagnostics.map(\.description)
            let text = lines.joined(separator: "\n")
            #expect(lines.contains { $0.contains("\(path):5") && $0.contains("devices[0]") && $0.contains("address: 'tcp://10.0.0.5:1883'") && $0.contains("mqtt://host[:port]") }, "\(text)")
            #expect(lines.contains { $0.contains("devices[0]") && $0.contains("options.topic") && $0.contains("# other than as the whole last level") }, "\(text)")
            #expect(lines.contains { $0.contains("devices[0]") && $0.contains("auth: a token cannot log in to a broker") }, "\(text)")
            #expect(lines.contains { $0.contains("\(path):16") && $0.contains("devices[2]") && $0.contains("options.topic: required") }, "\(text)")
            #expect(lines.contains { $0.contains("devices[2]") && $0.contains("did you mean 'mqtt-lpr-camera'") }, "\(text)")
            #expect(lines.contains { $0.contains("devices[2]") && $0.contains("options.ca_file: TLS files need an mqtts:// address") }, "\(text)")
            #expect(!lines.contains { $0.contains("devices[1]") }, "\(text)")
        }
    }
}

/// Against a real mosquitto (Debian's, started on a free port by the fixture).
@Suite(
    "mqtt driver against mosquitto", .serialized,
    .enabled(if: MosquittoBroker.available, "mosquitto is not installed (scripts/test installs it)"))
struct MQTTDriverBrokerTests {
    /// The driver's `protocol` option values.
    static let protocols = ["5", "3.1.1"]

    /// How mosquitto's log names the protocol of a client that connected ("as <id> (p5, …").
    static func logged(_ version: String) -> String { version == "5" ? "p5" : "p2" }

    static func settings(port: Int, clientID: String, topic: String, protocol version: String = "5") -> MQTTInboundConnection.Settings {
        MQTTInboundConnection.Settings(
            host: "127.0.0.1", port: port, useTLS: false, username: nil, password: nil, protocolV5: version == "5", clientID: clientID,
            keepaliveSeconds: 30, sessionExpirySeconds: 3600, topics: [topic], maxBatch: 50)
    }

    final class Payloads: Sendable {
        private let received = Mutex<[String]>([])
        func append(_ payloads: [String]) { received.withLock { $0 += payloads } }
        var all: [String] { received.withLock { $0 } }
    }

    /// Connects and receives on a task; the payloads of every read are collected, then `hold`
    /// (if any) decides when the commit returns.
    static func receiving(
        _ settings: MQTTInboundConnection.Settings, broker: MosquittoBroker, hold: WakeUpSignal? = nil
    ) async throws -> (MQTTInboundConnection, Task<Void, Never>, Payloads) {
        let connection = try MQTTInboundConnection(settings: settings)
        try await connection.connect(clock: MachineClock(), timeoutSeconds: 20)
        let payloads = Payloads()
        let task = Task {
            _ = try? await connection.receive { messages in
                payloads.append(messages.map { String(decoding: $0.payload, as: UTF8.self) })
                await hold?.wait()
                return true
            }
        }
        // The SUBSCRIBE goes out with the first write; the broker logs it.
        let subscribed = await eventually { broker.log.contains("\(settings.clientID) 1 \(settings.topics[0])") }
        #expect(subscribed, "\(broker.log.suffix(2000))")
        return (connection, task, payloads)
    }

    @Test(
        "a message whose commit is held is not acknowledged: after a dropped connection the broker sends it again; once committed, never again",
        arguments: protocols)
    func commitBeforeAcknowledgement(protocol version: String) async throws {
        let broker = try MosquittoBroker()
        try await broker.start()
        defer { broker.stop() }
        let settings = Self.settings(port: broker.port, clientID: "gatehouse-held-commit", topic: "held/#", protocol: version)

        // First connection: the commit of A is held (an emit that blocks) and the connection dies under it.
        let release = WakeUpSignal()
        let (first, firstTask, arrived) = try await Self.receiving(settings, broker: broker, hold: release)
        #expect(try await MosquittoPublisher.publish(port: broker.port, topic: "held/a", lines: ["A"]) == 0)
        #expect(await eventually { arrived.all == ["A"] })
        #expect(broker.log.contains("as gatehouse-held-commit (\(Self.logged(version)),"), "\(broker.log.suffix(2000))")
        first.drop()
        // The commit completes after the connection died: its PUBACK cannot go out any more.
        release.signal()
        await firstTask.value

        // Second connection, same client id: the broker sends A again (a PUBACK would have stopped it).
        let (_, secondTask, again) = try await Self.receiving(settings, broker: broker)
        #expect(await eventually { again.all.contains("A") }, "A was not sent again: \(broker.log.suffix(2000))")
        // Committed this time: the PUBACK goes out after the commit, before the clean disconnect.
        secondTask.cancel()
        await secondTask.value

        // Third connection: B arrives, and A, acknowledged, is not sent before it.
        let (_, thirdTask, third) = try await Self.receiving(settings, broker: broker)
        #expect(try await MosquittoPublisher.publish(port: broker.port, topic: "held/b", lines: ["B"]) == 0)
        #expect(await eventually { third.all.contains("B") })
        #expect(third.all == ["B"])
        thirdTask.cancel()
        await thirdTask.value
    }

    @Test("a persistent session (clean session off): what is published while the gateway is away arrives when it is back", arguments: protocols)
    func persistentSession(protocol version: String) async throws {
        let broker = try MosquittoBroker()
        try await broker.start()
        defer { broker.stop() }
        let settings = Self.settings(port: broker.port, clientID: "gatehouse-away", topic: "away/#", protocol: version)
        let (_, firstTask, _) = try await Self.receiving(settings, broker: broker)
        #expect(broker.log.contains("as gatehouse-away (\(Self.logged(version)), c0,"), "\(broker.log.suffix(2000))")
        // A clean goodbye: the broker keeps the session and its subscription.
        firstTask.cancel()
        await firstTask.value
        #expect(await eventually { broker.log.contains("Client gatehouse-away disconnected.") }, "\(broker.log.suffix(2000))")

        #expect(try await MosquittoPublisher.publish(port: broker.port, topic: "away/x", lines: ["X", "Y"]) == 0)
        let (_, secondTask, back) = try await Self.receiving(settings, broker: broker)
        #expect(await eventually { back.all == ["X", "Y"] }, "\(back.all) \(broker.log.suffix(2000))")
        secondTask.cancel()
        await secondTask.value
    }

    @Test("wrong password: one clear log line and the device down with the reason; the next attempt only after refused_retry_seconds on the clock")
    func wrongPassword() async throws {
        let broker = try MosquittoBroker(users: ["sensor-hub": "right"])
        try await broker.start()
        defer { broker.stop() }
        let clock = ManualClock()
        let (logger, lines) = CapturingLogHandler.logger()
        let fixture = try IngestFixture(
            devices: """
                  - id: hub
                    driver: mqtt
                    type: alarm-panel
                    address: mqtt://127.0.0.1:\(broker.port)
                    auth: {username: sensor-hub, password: wrong}
                    options: {profile: mqtt-alarm-sensor, topic: "sensors/#", client_id: gatehouse-wrong-password, refused_retry_seconds: 300}
                """, extra: "adapters_directory: \(shippedAdapters)", clock: clock, logger: logger)
        let device = try #require(fixture.context.device(id: "hub"))
        let run = Task { try? await MQTTDriver().run(device: device, context: fixture.context) }
        func attempts() -> Int { broker.log.components(separatedBy: "disconnected, not authorised").count - 1 }
        // The driver's line and the device-down line (the status log's reason), each once.
        func refusals() -> [CapturingLogHandler.Line] { lines.all.filter { $0.message.contains("Not authorized") } }

        // Refused once, reported once, then waiting on the clock (a timer pending), not retrying.
        #expect(await eventually { refusals().count == 2 && clock.pendingTimers > 0 }, "\(lines.all.map(\.message))")
        #expect(attempts() == 1, "\(broker.log)")
        #expect(fixture.pipeline.devices.healthSnapshot.first { $0.id == "hub" }?.reason?.contains("Not authorized") == true)
        // 299 s: still waiting.
        clock.advance(by: .seconds(299))
        #expect(attempts() == 1)
        // 300 s: one more attempt, refused the same way, and no second log line.
        clock.advance(by: .seconds(1))
        #expect(await eventually { attempts() == 2 && clock.pendingTimers > 0 }, "\(broker.log)")
        #expect(refusals().count == 2, "\(lines.all.map(\.message))")
        #expect(refusals().filter { $0.message.hasPrefix("mqtt:") && $0.message.contains("check auth") }.count == 1)
        run.cancel()
        clock.advance(by: .seconds(300))
        await run.value
        await fixture.finish()
    }

    @Test("messages in, events committed; a malformed payload goes to quarantine with its topic as the route", arguments: protocols)
    func messagesToEvents(protocol version: String) async throws {
        let broker = try MosquittoBroker()
        try await broker.start()
        defer { broker.stop() }
        let fixture = try IngestFixture(
            devices: """
                  - id: hub
                    driver: mqtt
                    type: alarm-panel
                    address: mqtt://127.0.0.1:\(broker.port)
                    options: {profile: mqtt-alarm-sensor, topic: "sensors/{device}/+", client_id: gatehouse-events, protocol: "\(version)"}
                """, extra: "adapters_directory: \(shippedAdapters)")
        let device = try #require(fixture.context.device(id: "hub"))
        let run = Task { try? await MQTTDriver().run(device: device, context: fixture.context) }
        #expect(await eventually { broker.log.contains("gatehouse-events 1 sensors/hub/+") })
        #expect(broker.log.contains("as gatehouse-events (\(Self.logged(version)),"), "\(broker.log.suffix(2000))")
        let sample = try String(contentsOfFile: shippedAdapters + "/mqtt-alarm-sensor/samples/panic-button.json", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await MosquittoPublisher.publish(port: broker.port, topic: "sensors/hub/sos", lines: [sample, #"{"devId":"x","type":"#]) == 0)
        #expect(await eventually { (try? await fixture.events().contains { $0.kind == .alarmPanic }) == true })
        let events = try await fixture.events()
        let panic = try #require(events.first { $0.kind == .alarmPanic })
        #expect(panic.priority == .alarm && panic.point == "SOS-3F-0102" && panic.source.driver == "mqtt" && panic.source.profile == "mqtt-alarm-sensor")
        #expect(await eventually { (try? await fixture.queue.quarantineEntries().count) == 1 })
        let kept = try #require(try await fixture.queue.quarantineEntries().first)
        #expect(kept.route == "mqtt:sensors/hub/sos" && kept.driver == "mqtt" && kept.deviceID == "hub")
        // The console's device page shows the last message: here the malformed one, which did not map.
        let last = try #require(fixture.pipeline.lastPayload(of: "hub"))
        #expect(!last.mapped && last.byteCount == #"{"devId":"x","type":"#.utf8.count, "\(last)")
        run.cancel()
        await run.value
        await fixture.finish()
    }
}
