import Crypto
import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseTesting
import Testing

/// Issue 8 items 5 and 6: personal data under the policy in every byte on disk, and
/// quarantine replay for a payload whose sender was configured only later.
@Suite("Privacy end to end", .serialized)
struct PrivacyEndToEndTests {
    static let hashSecret = "privacy-e2e-hash-secret-0123456789"
    // Clear values sent by the devices; none may be found anywhere afterwards.
    static let zhenshiPlate = "苏E12345"
    static let gbkPlate = "川A7B8C9"
    static let hikvisionPlate = "京N0K123"
    static let malformedPlate = "浙C55555"
    static let latePlate = "粤B0K123"
    static let capturedPlate = "闽D24680"
    static let card = "8800123456"
    static let quarantinedCard = "8800654321"
    static let name = "张三丰"
    static let pins = ["77031234", "77031235", "77039999"]
    static var clearValues: [String] {
        [zhenshiPlate, gbkPlate, hikvisionPlate, malformedPlate, latePlate, capturedPlate, card, quarantinedCard, name] + pins
    }

    static let lateSerial = "a3c9e105-00000099"

    /// UTF-8, GBK and base64 of both, at the three alignments a value can take inside a longer
    /// base64 text (only the characters that do not depend on the neighbours are searched).
    static func forms(_ value: String) -> [(String, Data)] {
        var encodings: [(String, [UInt8])] = [("UTF-8", Array(value.utf8))]
        if let gbk = TextDecoding.encode(value, as: .gbk), gbk != Array(value.utf8) { encodings.append(("GBK", gbk)) }
        var forms: [(String, Data)] = encodings.map { ($0.0, Data($0.1)) }
        for (label, bytes) in encodings {
            for shift in 0..<3 {
                let text = Data(Array(repeating: UInt8(0), count: shift) + bytes).base64EncodedString()
                let skip = (shift * 4 + 2) / 3
                let stable = text.dropFirst(skip).dropLast(4)
                if stable.count >= 6 { forms.append(("base64 of \(label) +\(shift)", Data(stable.utf8))) }
            }
        }
        return forms
    }

    /// Each file under `directory`, recursively.
    static func files(under directory: String) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return [] }
        var paths: [String] = []
        while let name = walker.nextObject() as? String {
            let path = (directory as NSString).appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue { paths.append(path) }
        }
        return paths
    }

    /// "what: value as form" for every clear value found in `data`.
    static func leaks(in data: Data, what: String) -> [String] {
        clearValues.flatMap { value in
            forms(value).compactMap { label, form in data.range(of: form) == nil ? nil : "\(what): \(value) as \(label)" }
        }
    }

    static func hmac(_ type: String, _ value: String) -> String {
        PrivacyPolicy.hash(value, type: SubjectType(rawValue: type) ?? .plate, secret: Secret(value: hashSecret, origin: "test"))
    }

    @Test("hash policy: plates (UTF-8, GBK), cards, PINs and names through profile, ZKTeco and generic drivers, quarantine, replay and scaffold leave no clear value in any byte")
    func noClearValueAnywhere() async throws {
        var site = ProfileSite()
        defer { site.remove() }
        let keyFile = site.directory + "/quarantine-key"
        try "a-site-quarantine-key-for-the-test-0123456789".write(toFile: keyFile, atomically: true, encoding: .utf8)
        site.maxBody = "1MiB"
        site.extra = """
            privacy:
              plate: hash
              card: hash
              person: hash
              face: hash
              phone: hash
              names: drop
              images: drop
              hash_secret: "\(Self.hashSecret)"
              quarantine_key: {file: \(keyFile)}
            images:
              store: true
            """
        site.extraDevices = """
              - id: door-g
                driver: generic-json
                type: door-controller
                auth: {token: "door-g-token"}
              - id: zk-gbk
                driver: zkteco
                type: access-terminal
                serial: ZKGBK0000001
                options: {charset: gbk}
              - id: mystery-gate
                driver: profile
                type: lpr-camera
                options: {capture: true}
            """
        let config = try site.write()
        var text = try String(contentsOfFile: config, encoding: .utf8)
        text = text.replacingOccurrences(of: "log_level: info", with: "log_level: debug")
        try text.write(toFile: config, atomically: true, encoding: .utf8)

        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: config)
        defer { if daemon.process.isRunning { daemon.process.terminate() } }
        let url = "http://127.0.0.1:\(ingest)"
        let now = Date()

        // Profile devices: UTF-8 JSON, a GBK form, a multipart payload with a picture.
        let zhenshi = VendorCamera(brand: .zhenshi, serial: "a3c9e105-7d214b60", baseURL: url)
        #expect(await zhenshi.post(zhenshi.payload(plate: Self.zhenshiPlate, record: 1, at: now)).status == 200)
        let gbk = VendorCamera(brand: .legacyGBK, serial: "PK2019-0042", baseURL: url)
        #expect(await gbk.post(gbk.payload(plate: Self.gbkPlate, record: 2, at: now)).status == 200)
        let hikvision = VendorCamera(brand: .hikvision, serial: "44:19:b6:10:22:7e", baseURL: url)
        #expect(await hikvision.post(hikvision.payload(plate: Self.hikvisionPlate, record: 3, at: now)).status == 200)
        // Quarantined: a truncated payload, and one from a camera whose serial is not configured yet.
        let truncated = Array(zhenshi.payload(plate: Self.malformedPlate, record: 4, at: now).body.dropLast(30))
        #expect(await zhenshi.post((truncated, "application/json")).status == 200)
        let late = VendorCamera(brand: .zhenshi, serial: Self.lateSerial, baseURL: url)
        #expect(await late.post(late.payload(plate: Self.latePlate, record: 5, at: now)).status == 200)
        // A capture device of an undocumented brand.
        let captured = zhenshi.payload(plate: Self.capturedPlate, record: 6, at: now).body
        #expect(try await ProfileEndToEndTests.post("\(url)/v1/push/capture/mystery-gate", captured, contentType: "application/json").0 == 200)

        // Generic JSON: a card, and a malformed event that quotes another card.
        let headers = [("Content-Type", "application/json"), ("Authorization", "Bearer door-g-token")]
        // Its dedup key quotes the card: it is kept in the dedup table and forwarded, so it is treated too.
        let good = #"{"kind":"access.granted","dedupKey":"card-\#(Self.card)-1","subject":{"type":"card","value":"\#(Self.card)"}}"#
        #expect(try await RobustnessTests.post("\(url)/v1/devices/door-g/events", body: Array(good.utf8), headers: headers).0 == 200)
        let bad = #"{"kind":"access.granted","subject":{"type":"card","value":"\#(Self.quarantinedCard)","owner":"\#(Self.name)"}}"#
        let (badStatus, badReply) = try await RobustnessTests.post("\(url)/v1/devices/door-g/events", body: Array(bad.utf8), headers: headers)
        #expect(Self.leaks(in: Data(badReply.utf8), what: "reply").isEmpty, "\(badStatus) \(badReply)")

        // ZKTeco in GBK: a resident's roster line with her name, a punch and a malformed punch.
        let terminal = ZKTecoDevice(configuration: .init(serial: "ZKGBK0000001", baseURL: url, charset: .gbk))
        #expect(await terminal.upload(table: "OPERLOG", lines: ZKTecoDevice.userLines([(Self.pins[0], Self.name)]), stamp: "1").body == "OK: 1")
        let punches = ["\(Self.pins[1])\t2025-03-14 07:58:31\t0\t15\t0\t0\t0\t0", "\(Self.pins[2])\tgarbage"]
        #expect(await terminal.upload(table: "ATTLOG", lines: punches, stamp: "2").body == "OK: 2")
        await terminal.shutdown()

        // Item 6: the operator adds the camera that was not configured, and replays.
        text = try String(contentsOfFile: config, encoding: .utf8)
        text = text.replacingOccurrences(of: "  - id: door-g\n", with: """
              - id: late-cam
                driver: profile
                type: lpr-camera
                direction: in
                serial: \(Self.lateSerial)
                options: {profile: zhenshi-lpr}
              - id: door-g

            """)
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let check = try await DaemonProcess.runTool(["check-config", config])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        daemon.sendSignal(SIGHUP)
        let replay = try await DaemonProcess.runTool(["quarantine", "replay", "--config", config])
        #expect(replay.stdout.contains("1 replayed"), "\(replay.stdout)\(replay.stderr)")
        let list = try await DaemonProcess.runTool(["quarantine", "list", "--all", "--config", config])
        #expect(list.status == 0 && list.stdout.contains("mystery-gate"), "\(list.stdout)\(list.stderr)")

        let draft = site.directory + "/drafts/acme-lpr"
        let scaffold = try await DaemonProcess.runTool(["adapters", "scaffold", "--from-quarantine", "mystery-gate", draft, "--config", config])
        #expect(scaffold.status == 0, "\(scaffold.stdout)\(scaffold.stderr)")

        // What the centre gets: hashed plates (the replayed one too), cards and PINs, no name.
        let events = try await site.forwarded(atLeast: 4)
        let plates = Set(events.compactMap { ($0["subject"] as? [String: Any])?["value"] as? String })
        let expected = Set([Self.zhenshiPlate, Self.gbkPlate, Self.hikvisionPlate, Self.latePlate].map { Self.hmac("plate", $0) })
        #expect(plates == expected, "\(events)")
        #expect(events.contains { ($0["device"] as? [String: Any])?["id"] as? String == "late-cam" }, "the late camera's payload was replayed")
        #expect(try await daemon.stop() == 0)
        let outbox = try String(contentsOfFile: site.outbox, encoding: .utf8)
        #expect(outbox.contains(#""dedupKey":"card-\#(Self.hmac("card", Self.card))-1""#))
        #expect(outbox.contains(Self.hmac("person", Self.pins[1])))
        #expect(outbox.contains(#""record":"user""#), "the roster line became an event, without the name")

        // The picture was dropped by the policy: not written although images.store is true.
        #expect(Self.files(under: site.directory + "/state/images").isEmpty)

        var leaks: [String] = []
        let searched = Self.files(under: site.directory + "/state") + Self.files(under: site.directory + "/outbox") + Self.files(under: draft)
        #expect(searched.contains { $0.hasSuffix("queue.sqlite") } && searched.contains { $0.hasSuffix("events.ndjson") })
        #expect(searched.contains { $0.hasSuffix(".json") && $0.contains("/samples/") }, "\(searched)")
        for path in searched {
            leaks += Self.leaks(in: FileManager.default.contents(atPath: path) ?? Data(), what: path)
        }
        leaks += Self.leaks(in: Data(daemon.log.utf8), what: "daemon log (debug)")
        leaks += Self.leaks(in: Data((list.stdout + replay.stdout + scaffold.stdout).utf8), what: "quarantine list/replay, scaffold output")
        #expect(leaks.isEmpty, "\(leaks.joined(separator: "\n"))")
        #expect(daemon.log.contains("quarantined input"), "the debug log was captured")
    }
}
