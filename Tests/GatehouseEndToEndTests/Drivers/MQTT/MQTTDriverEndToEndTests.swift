import Foundation
import GatehouseTesting
import Testing

/// The daemon subscribed to a real mosquitto through the `mqtt` driver, `mosquitto_pub` as the
/// devices (QoS 1: it exits 0 once the broker acknowledged every message), a file sink as the
/// central store. Every message the broker accepted ends up committed exactly once.
@Suite(
    "mqtt driver end to end", .serialized,
    .enabled(if: MosquittoBroker.available, "mosquitto is not installed (scripts/test installs it)"))
struct MQTTDriverEndToEndTests {
    struct Site {
        let directory: String
        let brokerPort: Int

        init(brokerPort: Int, name: String = #function) {
            self.brokerPort = brokerPort
            let safe = name.filter { $0.isLetter || $0.isNumber }
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-mqtt-\(safe)-\(UUID().uuidString.prefix(8))").path
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }

        var outbox: String { directory + "/outbox/events.ndjson" }

        func write() throws -> String {
            let yaml = """
                site: e2e-mqtt
                state_directory: \(directory)/state
                status_interval_seconds: 1
                adapters_directory: \(shippedAdapters)
                ingest: {host: 127.0.0.1, port: 0}
                admin: {host: 127.0.0.1, port: 0}
                devices:
                  - id: hub
                    driver: mqtt
                    type: alarm-panel
                    address: mqtt://127.0.0.1:\(brokerPort)
                    options:
                      profile: mqtt-alarm-sensor
                      topic: "sensors/{device}/+"
                      client_id: gatehouse-e2e-hub
                      retry_initial_seconds: 0.05
                      retry_max_seconds: 0.5
                sinks:
                  - name: outbox
                    type: file
                    path: \(outbox)
                    backoff_initial_seconds: 0.05
                    backoff_max_seconds: 0.5
                """
            let path = directory + "/gatehouse.yaml"
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        /// Event ids per reading `seq` in the outbox (a sink may write an event twice after a
        /// crash, always under its one id).
        func idsBySequence() -> [Int: Set<String>] {
            let text = (try? String(contentsOfFile: outbox, encoding: .utf8)) ?? ""
            var ids: [Int: Set<String>] = [:]
            for line in text.split(separator: "\n") {
                guard let event = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    event["kind"] as? String == "vendor.other", let id = event["id"] as? String,
                    let sequence = (event["attributes"] as? [String: Any])?["sequence"] as? Int
                else { continue }
                ids[sequence, default: []].insert(id)
            }
            return ids
        }

        func remove() { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// Temperature reports with sequence numbers `range`, one JSON line each.
    static func readings(_ range: Range<Int>) -> [String] {
        let now = Int(Date().timeIntervalSince1970)
        return range.map { #"{"devId":"TMP-B1-0002","type":"temperature","event":"report","value":\#($0 % 40),"unit":"C","ts":\#(now),"seq":\#($0)}"# }
    }

    static func publish(_ broker: MosquittoBroker, _ range: Range<Int>) async throws {
        let status = try await MosquittoPublisher.publish(port: broker.port, topic: "sensors/hub/temperature", lines: readings(range))
        #expect(status == 0, "mosquitto_pub exited \(status): \(broker.log.suffix(1500))")
    }

    static func expectExactlyOnce(_ site: Site, _ count: Int, daemon: DaemonProcess, broker: MosquittoBroker) async {
        let complete = await eventually(timeout: .seconds(120)) { site.idsBySequence().count >= count }
        let ids = site.idsBySequence()
        let brokerLines = broker.log.split(separator: "\n").filter { !$0.contains("PUBLISH") && !$0.contains("PUBACK") && !$0.contains("PING") }
            .suffix(40).joined(separator: "\n")
        let driverLines = daemon.log.split(separator: "\n").filter { $0.contains("mqtt") }.suffix(30).joined(separator: "\n")
        #expect(complete, "\(ids.count) of \(count) readings arrived:\n\(driverLines)\n\(brokerLines)")
        #expect(ids.count != count || Set(ids.keys) == Set(0..<count))
        let twice = ids.filter { $0.value.count > 1 }
        #expect(twice.isEmpty, "stored more than once: \(twice.keys.sorted().prefix(20))")
    }

    @Test("the broker restarted mid-stream loses nothing and stores nothing twice")
    func brokerRestart() async throws {
        let broker = try MosquittoBroker()
        try await broker.start()
        defer { broker.stop() }
        let site = Site(brokerPort: broker.port)
        defer { site.remove() }
        let (daemon, _, _) = try await DaemonProcess.start(configPath: try site.write())
        defer { if daemon.process.isRunning { daemon.sendSignal(SIGKILL) } }
        #expect(await daemon.waitForLog("mqtt: subscribed"), "\(daemon.log)")
        #expect(await eventually { broker.log.contains("gatehouse-e2e-hub 1 sensors/hub/+") })

        try await Self.publish(broker, 0..<2000)
        // Stopped while the daemon is reading (SIGTERM: the broker saves the session's queue).
        _ = await eventually { !site.idsBySequence().isEmpty }
        broker.stop()
        try await broker.start()
        try await Self.publish(broker, 2000..<2500)
        await Self.expectExactlyOnce(site, 2500, daemon: daemon, broker: broker)
        #expect(try await daemon.stop() == 0)
    }

    @Test("kill -9 of the daemon mid-stream, then a restart: every accepted message committed exactly once")
    func daemonKilled() async throws {
        let broker = try MosquittoBroker()
        try await broker.start()
        defer { broker.stop() }
        let site = Site(brokerPort: broker.port)
        defer { site.remove() }
        let config = try site.write()
        let (first, _, _) = try await DaemonProcess.start(configPath: config)
        #expect(await first.waitForLog("mqtt: subscribed"), "\(first.log)")
        #expect(await eventually { broker.log.contains("gatehouse-e2e-hub 1 sensors/hub/+") })

        try await Self.publish(broker, 0..<2000)
        _ = await eventually { !site.idsBySequence().isEmpty }
        await first.kill9()
        // More while the gateway is away: the broker keeps them for its persistent session.
        try await Self.publish(broker, 2000..<2300)
        let (second, _, _) = try await DaemonProcess.start(configPath: config)
        defer { if second.process.isRunning { second.sendSignal(SIGKILL) } }
        await Self.expectExactlyOnce(site, 2300, daemon: second, broker: broker)
        #expect(try await second.stop() == 0)
    }

    @Test("plates over MQTT under the hash policy: the event carries the keyed hash; no byte on disk or in the debug log holds a plate in clear")
    func platesHashed() async throws {
        let broker = try MosquittoBroker()
        try await broker.start()
        defer { broker.stop() }
        let site = Site(brokerPort: broker.port)
        defer { site.remove() }
        let keyFile = site.directory + "/quarantine-key"
        try "a-site-quarantine-key-for-the-mqtt-test-0123".write(toFile: keyFile, atomically: true, encoding: .utf8)
        let yaml = """
            site: e2e-mqtt
            state_directory: \(site.directory)/state
            log_level: debug
            adapters_directory: \(shippedAdapters)
            ingest: {host: 127.0.0.1, port: 0}
            admin: {host: 127.0.0.1, port: 0}
            privacy:
              plate: hash
              hash_secret: "\(PrivacyEndToEndTests.hashSecret)"
              quarantine_key: {file: \(keyFile)}
            devices:
              - id: gate-lpr
                driver: mqtt
                type: lpr-camera
                address: mqtt://127.0.0.1:\(broker.port)
                options: {profile: mqtt-lpr-camera, topic: "lpr/{device}/plate", client_id: gatehouse-e2e-lpr}
            sinks:
              - {name: outbox, type: file, path: \(site.outbox)}
            """
        let config = site.directory + "/gatehouse.yaml"
        try yaml.write(toFile: config, atomically: true, encoding: .utf8)
        let (daemon, _, _) = try await DaemonProcess.start(configPath: config)
        defer { if daemon.process.isRunning { daemon.sendSignal(SIGKILL) } }
        #expect(await eventually { broker.log.contains("gatehouse-e2e-lpr 1 lpr/gate-lpr/plate") }, "\(daemon.log.suffix(2000))")

        // Values the privacy test's leak search looks for, in every encoding it knows.
        let plate = PrivacyEndToEndTests.zhenshiPlate, quarantinedPlate = PrivacyEndToEndTests.malformedPlate
        let read = #"{"sn":"LPR-7F3A21","event":"plate","lane":1,"plate":"\#(plate)","color":"blue","confidence":0.96,"time":"2025-03-14 08:12:09.412","recordId":"20250314081209412-0001"}"#
        let truncated = #"{"sn":"LPR-7F3A21","event":"plate","lane":1,"plate":"\#(quarantinedPlate)","color":"bl"#
        let status = try await MosquittoPublisher.publish(port: broker.port, topic: "lpr/gate-lpr/plate", lines: [read, truncated])
        #expect(status == 0)
        let hashed = PrivacyEndToEndTests.hmac("plate", plate)
        #expect(await eventually(timeout: .seconds(60)) {
            ((try? String(contentsOfFile: site.outbox, encoding: .utf8)) ?? "").contains(hashed)
        }, "\(daemon.log.suffix(2000))")
        let list = try await DaemonProcess.runTool(["quarantine", "list", "--config", config])
        #expect(list.status == 0 && list.stdout.contains("gate-lpr"), "\(list.stdout)\(list.stderr)")
        #expect(try await daemon.stop() == 0)

        var leaks: [String] = []
        let searched = PrivacyEndToEndTests.files(under: site.directory + "/state") + [site.outbox]
        #expect(searched.contains { $0.hasSuffix("queue.sqlite") })
        for path in searched {
            leaks += PrivacyEndToEndTests.leaks(in: FileManager.default.contents(atPath: path) ?? Data(), what: path)
        }
        leaks += PrivacyEndToEndTests.leaks(in: Data((daemon.log + list.stdout).utf8), what: "daemon log (debug), quarantine list")
        #expect(leaks.isEmpty, "\(leaks.joined(separator: "\n"))")
        #expect(daemon.log.contains("quarantined input"), "the log searched covers the quarantine")
    }
}
