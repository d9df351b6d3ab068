import AsyncHTTPClient
import Foundation
import GatehouseSimulation
import GatehouseTesting
import NIOCore
import Testing

/// A scratch site whose devices are mapped by the shipped profiles, with a file sink so that
/// the forwarded output can be read back.
struct ProfileSite {
    let directory: String
    var extra = ""
    var maxBody = "64KiB"
    /// More device entries (indented as list items under `devices:`).
    var extraDevices = ""
    var adaptersDirectory = ProfileSite.adapters

    init(name: String = #function) {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-profile-\(safe)-\(UUID().uuidString.prefix(8))").path
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    static let adapters = shippedAdapters

    var outbox: String { directory + "/outbox/events.ndjson" }
    var queueFile: String { directory + "/state/queue.sqlite" }

    func write() throws -> String {
        let yaml = """
            site: e2e-profiles
            state_directory: \(directory)/state
            status_interval_seconds: 1
            log_level: info
            adapters_directory: \(adaptersDirectory)
            ingest:
              host: 127.0.0.1
              port: 0
              max_body_bytes: \(maxBody)
            admin:
              host: 127.0.0.1
              port: 0
            \(extra)
            devices:
              - id: east-in
                driver: profile
                type: lpr-camera
                direction: in
                serial: a3c9e105-7d214b60
                options: {profile: zhenshi-lpr}
              - id: east-out
                driver: profile
                type: lpr-camera
                direction: out
                serial: a3c9e105-7d214b61
                options: {profile: zhenshi-lpr, barrier: never}
              - id: west-hik
                driver: profile
                type: lpr-camera
                direction: out
                serial: "44:19:b6:10:22:7e"
                options: {profile: hikvision-anpr}
              - id: old-gate
                driver: profile
                type: barrier
                serial: PK2019-0042
                options: {profile: legacy-parking-gbk}
            \(extraDevices)
            sinks:
              - name: outbox
                type: file
                path: \(directory)/outbox/events.ndjson
                backoff_initial_seconds: 0.05
                backoff_max_seconds: 0.5
            """
        let path = directory + "/gatehouse.yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func sample(_ profile: String, _ file: String) throws -> [UInt8] {
        try #require(FileManager.default.contents(atPath: "\(Self.adapters)/\(profile)/samples/\(file)")).map { $0 }
    }

    /// The forwarded vehicle events (device health events aside), once `count` of them are there (bounded wait).
    func forwarded(atLeast count: Int, timeout: Duration = .seconds(15)) async throws -> [[String: Any]] {
        _ = await eventually(timeout: timeout, poll: .milliseconds(50)) { forwardedSoFar().count >= count }
        return forwardedSoFar()
    }

    /// The vehicle events in the file sink's outbox right now.
    func forwardedSoFar() -> [[String: Any]] {
        let text = (try? String(contentsOfFile: outbox, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }.filter { ($0["kind"] as? String)?.hasPrefix("vehicle.") == true }
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

@Suite("Profile devices end to end", .serialized)
struct ProfileEndToEndTests {
    static func post(_ url: String, _ body: [UInt8], contentType: String) async throws -> (Int, String) {
        try await RobustnessTests.post(url, body: body, headers: [("Content-Type", contentType)])
    }

    @Test("Zhenshi, Hikvision multipart and a GBK form: mapped, stored once, replied per profile")
    func vendorsThroughTheDaemon() async throws {
        let site = ProfileSite()
        defer { site.remove() }
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: try site.write())
        defer { if daemon.process.isRunning { daemon.process.terminate() } }
        let base = "http://127.0.0.1:\(ingest)/v1/push"

        let entry = try site.sample("zhenshi-lpr", "entry-read.json")
        let (status, reply) = try await Self.post("\(base)/zhenshi-lpr", entry, contentType: "application/json")
        #expect(status == 200)
        #expect(reply == #"{"Response_AlarmInfoPlate":{"info":"no","plateid":48213,"content":"retransfer_stop"}}"#)
        // The camera's retry of the same record is answered the same way and stored once.
        let (retryStatus, retryReply) = try await Self.post("\(base)/zhenshi-lpr", entry, contentType: "application/json")
        #expect(retryStatus == 200)
        #expect(retryReply == reply)

        let offline = try site.sample("zhenshi-lpr", "offline-replay.json")
        let (_, offlineReply) = try await Self.post("\(base)/zhenshi-lpr", offline, contentType: "application/json")
        #expect(offlineReply.contains(#""ContinuePushOffline":{"plateid":48190,"continue":1}"#), "\(offlineReply)")

        let multipart = try site.sample("hikvision-anpr", "multipart-with-pictures.bin")
        let (hikStatus, hikReply) = try await Self.post("\(base)/hikvision-anpr", multipart, contentType: "multipart/form-data; boundary=boundary")
        #expect(hikStatus == 200)
        #expect(hikReply.contains("<statusCode>1</statusCode><statusString>OK</statusString>"), "\(hikReply)")

        let form = try site.sample("legacy-parking-gbk", "entry.form")
        let (formStatus, formReply) = try await Self.post("\(base)/legacy-parking-gbk", form, contentType: "application/x-www-form-urlencoded")
        #expect(formStatus == 200)
        #expect(formReply == "OK 7001")

        let events = try await site.forwarded(atLeast: 4)
        let plates = events.filter { ($0["kind"] as? String)?.hasPrefix("vehicle.") == true }
        #expect(plates.count == 4, "the retried record is stored once: \(plates)")
        func event(_ device: String) -> [String: Any]? { plates.first { ($0["device"] as? [String: Any])?["id"] as? String == device } }
        #expect(event("east-in")?["kind"] as? String == "vehicle.entry")
        #expect((event("east-in")?["subject"] as? [String: Any])?["value"] as? String == "川F12345")
        #expect(event("east-out")?["kind"] as? String == "vehicle.exit")
        #expect(((event("west-hik")?["attributes"] as? [String: Any])?["images"] as? Int) == 2)
        #expect(event("old-gate")?["kind"] as? String == "vehicle.entry")
        #expect((event("old-gate")?["source"] as? [String: Any])?["profile"] as? String == "legacy-parking-gbk")
        #expect(try await daemon.stop() == 0)
    }

    @Test("hostile payloads are quarantined with reasons and the daemon keeps serving")
    func hostilePayloads() async throws {
        var site = ProfileSite()
        site.maxBody = "1MiB"
        defer { site.remove() }
        let config = try site.write()
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: config)
        defer { if daemon.process.isRunning { daemon.process.terminate() } }
        let base = "http://127.0.0.1:\(ingest)/v1/push"

        let multipart = try site.sample("hikvision-anpr", "multipart-with-pictures.bin")
        let truncated = Array(multipart.prefix(multipart.count / 2))
        let (s1, r1) = try await Self.post("\(base)/hikvision-anpr", truncated, contentType: "multipart/form-data; boundary=boundary")
        #expect(s1 == 200 && r1.contains("<statusString>OK</statusString>"), "the device still gets its reply: \(r1)")

        let wrongCharset = try site.sample("legacy-parking-gbk", "wrong-charset.form")
        let (s2, r2) = try await Self.post("\(base)/legacy-parking-gbk", wrongCharset, contentType: "application/x-www-form-urlencoded")
        #expect(s2 == 200 && r2 == "OK")

        let huge = [UInt8](repeating: 0xAB, count: 10 << 20)
        let (s3, _) = try await Self.post("\(base)/hikvision-anpr", huge, contentType: "multipart/form-data; boundary=boundary")
        #expect(s3 == 413)

        let deep = Array((String(repeating: "{\"AlarmInfoPlate\":", count: 500) + "1" + String(repeating: "}", count: 500)).utf8)
        let (s4, r4) = try await Self.post("\(base)/zhenshi-lpr", deep, contentType: "application/json")
        #expect(s4 == 200 && r4.contains("\"info\":\"no\"") && r4.contains("retransfer_stop"), "\(r4)")

        // Still serving: a good record maps.
        let (s5, _) = try await Self.post("\(base)/zhenshi-lpr", try site.sample("zhenshi-lpr", "entry-read.json"), contentType: "application/json")
        #expect(s5 == 200)
        #expect(try await daemon.stop() == 0)

        let list = try await DaemonProcess.runTool(["quarantine", "list", "--config", config])
        #expect(list.stdout.contains("truncated multipart body"), "\(list.stdout)\(list.stderr)")
        #expect(list.stdout.contains("is not valid gbk text"))
        #expect(list.stdout.contains("nested deeper than"))
    }

    @Test("with plate hashing the clear plate is nowhere in the queue file or the sink output")
    func privacyHash() async throws {
        var site = ProfileSite()
        site.extra = """
            privacy:
              plate: hash
              hash_secret: "e2e-secret-key"
            """
        defer { site.remove() }
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: try site.write())
        defer { if daemon.process.isRunning { daemon.process.terminate() } }
        let base = "http://127.0.0.1:\(ingest)/v1/push"
        let (status, _) = try await Self.post("\(base)/zhenshi-lpr", try site.sample("zhenshi-lpr", "entry-read.json"), contentType: "application/json")
        #expect(status == 200)
        let (formStatus, _) = try await Self.post("\(base)/legacy-parking-gbk", try site.sample("legacy-parking-gbk", "entry.form"), contentType: "application/x-www-form-urlencoded")
        #expect(formStatus == 200)
        let events = try await site.forwarded(atLeast: 2)
        #expect(events.count >= 2)
        #expect(try await daemon.stop() == 0)
        let clear = Data("川F12345".utf8)
        var stored = Data()
        for suffix in ["", "-wal", "-shm"] {
            stored += FileManager.default.contents(atPath: site.queueFile + suffix) ?? Data()
        }
        #expect(!stored.isEmpty)
        #expect(stored.range(of: clear) == nil, "clear plate in the queue database")
        let output = FileManager.default.contents(atPath: site.outbox) ?? Data()
        #expect(output.range(of: clear) == nil, "clear plate in the sink output")
        #expect(String(decoding: output, as: UTF8.self).contains("\"treatment\":\"hashed\""))
    }

    @Test("simulated vendor cameras: retries stored once, offline replays acknowledged")
    func simulatedCameras() async throws {
        let site = ProfileSite()
        defer { site.remove() }
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: try site.write())
        defer { if daemon.process.isRunning { daemon.process.terminate() } }
        let base = "http://127.0.0.1:\(ingest)"
        let zhenshi = VendorCamera(brand: .zhenshi, serial: "a3c9e105-7d214b60", baseURL: base)
        let hikvision = VendorCamera(brand: .hikvision, serial: "44:19:b6:10:22:7e", baseURL: base)
        let legacy = VendorCamera(brand: .legacyGBK, serial: "PK2019-0042", baseURL: base)
        for record in 0..<3 {
            let payload = zhenshi.payload(plate: "川F1000\(record)", record: 500 + record, at: Date())
            for _ in 0..<2 {
                let exchange = await zhenshi.post(payload)
                #expect(exchange.status == 200 && exchange.reply.contains("\"info\":\"no\""))
            }
        }
        let replay = await zhenshi.post(zhenshi.payload(plate: "川F10009", record: 499, at: Date().addingTimeInterval(-3600), offline: true))
        #expect(replay.reply.contains("ContinuePushOffline"))
        let hik = await hikvision.post(hikvision.payload(plate: "川F20000", record: 1, at: Date(), imageBytes: 50_000))
        #expect(hik.status == 200)
        let old = await legacy.post(legacy.payload(plate: "无牌", record: 9, at: Date()))
        #expect(old.reply == "OK 9")
        let events = try await site.forwarded(atLeast: 6).filter { ($0["kind"] as? String)?.hasPrefix("vehicle.") == true }
        #expect(events.count == 6, "3 reads (sent twice), 1 replay, 1 Hikvision, 1 legacy: \(events.count)")
        #expect(events.contains { $0["kind"] as? String == "vehicle.unplated" })
        #expect(try await daemon.stop() == 0)
    }

    @Test("one two-lane camera: lane 1 is the entry, lane 2 the exit, an unlisted lane stays detected")
    func twoLaneCamera() async throws {
        var site = ProfileSite()
        defer { site.remove() }
        // No device direction: only the points decide, so an unlisted lane shows the fallback.
        site.extraDevices = """
              - id: east-gate
                driver: profile
                type: lpr-camera
                serial: "44:19:b6:10:22:80"
                options: {profile: hikvision-anpr}
                points:
                  lane-1: {direction: in}
                  lane-2: {direction: out, name: east-exit}
            """
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: try site.write())
        defer { if daemon.process.isRunning { daemon.process.terminate() } }
        let camera = VendorCamera(brand: .hikvision, serial: "44:19:b6:10:22:80", baseURL: "http://127.0.0.1:\(ingest)")
        for (record, lane) in [(1, 1), (2, 2), (3, 3)] {
            let exchange = await camera.post(camera.payload(plate: "川F3000\(record)", record: record, at: Date(), lane: lane))
            #expect(exchange.status == 200, "\(exchange.reply)")
        }
        let events = try await site.forwarded(atLeast: 3)
        func event(_ plate: String) -> [String: Any]? { events.first { ($0["subject"] as? [String: Any])?["value"] as? String == plate } }
        #expect(event("川F30001")?["kind"] as? String == "vehicle.entry")
        #expect(event("川F30001")?["point"] as? String == "lane-1")
        #expect(event("川F30001")?["direction"] as? String == "in")
        #expect(event("川F30002")?["kind"] as? String == "vehicle.exit")
        #expect(event("川F30002")?["point"] as? String == "east-exit")
        #expect(event("川F30002")?["direction"] as? String == "out")
        #expect(event("川F30003")?["kind"] as? String == "vehicle.detected")
        #expect(event("川F30003")?["point"] as? String == "lane-3")
        #expect(try await daemon.stop() == 0)
    }

    @Test("check-config names an unknown profile and a bad option")
    func checkConfig() async throws {
        let site = ProfileSite()
        defer { site.remove() }
        let path = try site.write()
        var text = try String(contentsOfFile: path, encoding: .utf8)
        text = text.replacingOccurrences(of: "{profile: hikvision-anpr}", with: "{profile: hikvision-anrp}")
            .replacingOccurrences(of: "barrier: never", with: "barrier: always")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try await DaemonProcess.runTool(["check-config", path])
        #expect(result.status != 0)
        let output = result.stdout + result.stderr
        #expect(output.contains("no profile 'hikvision-anrp'"), "\(output)")
        #expect(output.contains("did you mean 'hikvision-anpr'"))
        #expect(output.contains(".options.barrier: 'always' is not valid (expected one of "), "\(output)")
    }
}
