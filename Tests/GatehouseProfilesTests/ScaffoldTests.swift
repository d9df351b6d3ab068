import Foundation
import GatehouseCore
import Testing

@testable import GatehouseProfiles

@Suite("Profile scaffold: field inventory and guesses")
struct ScaffoldTests {
    static func json(_ plate: String, id: Int, sec: Int, lane: Int) -> CapturedPayload {
        let text = #"{"Upload":{"sn":"ACME-0042","rec":{"recordId":\#(id),"carNo":"\#(plate)","passTime":\#(sec),"laneNo":\#(lane),"confidence":\#(90 + id % 7)}}}"#
        return CapturedPayload(body: Array(text.utf8), contentType: "application/json")
    }

    static func role(_ inventory: FieldInventory, _ path: String) -> FieldRole? {
        inventory.fields.first { $0.path == path }?.role
    }

    @Test("JSON: plate, epoch time, lane, record id and device serial are guessed; values listed")
    func jsonGuesses() throws {
        let payloads = [
            Self.json("川A12345", id: 101, sec: 1_741_911_129, lane: 1),
            Self.json("粤B7D8E9F", id: 102, sec: 1_741_911_200, lane: 2),
            Self.json("京N0K123", id: 103, sec: 1_741_911_300, lane: 1),
        ]
        let inventory = FieldInventory.build(payloads)
        #expect(inventory.format == .json)
        #expect(Self.role(inventory, "Upload.rec.carNo") == .plate)
        #expect(Self.role(inventory, "Upload.rec.passTime") == .time)
        #expect(inventory.fields.first { $0.path == "Upload.rec.passTime" }?.timeFormat == "epoch-seconds")
        #expect(Self.role(inventory, "Upload.rec.laneNo") == .lane)
        #expect(Self.role(inventory, "Upload.rec.recordId") == .recordID)
        #expect(Self.role(inventory, "Upload.sn") == .deviceSerial)
        #expect(Self.role(inventory, "Upload.rec.confidence") == nil)
        let lane = try #require(inventory.fields.first { $0.path == "Upload.rec.laneNo" })
        #expect(lane.values == ["1", "2"])
        #expect(lane.presentIn == 3)
    }

    @Test("XML: RFC 3339 time stamp, plate by value, direction codes")
    func xmlGuesses() {
        let payloads = (0..<3).map { index in
            let xml = """
                <?xml version="1.0" encoding="UTF-8"?>
                <Alert><dateTime>2025-03-14T08:1\(index):09+08:00</dateTime><ANPR><licensePlate>浙A9876\(index)</licensePlate>\
                <direction>\(index == 1 ? "reverse" : "forward")</direction></ANPR><eventId>ev-\(index)</eventId></Alert>
                """
            return CapturedPayload(body: Array(xml.utf8), contentType: "application/xml")
        }
        let inventory = FieldInventory.build(payloads)
        #expect(inventory.format == .xml)
        #expect(Self.role(inventory, "Alert.dateTime") == .time)
        #expect(inventory.fields.first { $0.path == "Alert.dateTime" }?.timeFormat == "rfc3339")
        #expect(Self.role(inventory, "Alert.ANPR.licensePlate") == .plate)
        #expect(Self.role(inventory, "Alert.ANPR.direction") == .direction)
        #expect(Self.role(inventory, "Alert.eventId") == .recordID)
    }

    @Test("form: local time, in/out values, plate key; at most 5 distinct values kept")
    func formGuesses() {
        let payloads = (0..<7).map { index in
            let form = "plate_no=%E8%8B%8FE1234\(index)&time=2025-03-14+08%3A1\(index)%3A09&inout=\(index % 2 == 0 ? "in" : "out")&id=\(500 + index)&gate=east"
            return CapturedPayload(body: Array(form.utf8), contentType: "application/x-www-form-urlencoded")
        }
        let inventory = FieldInventory.build(payloads)
        #expect(inventory.format == .form)
        #expect(Self.role(inventory, "plate_no") == .plate)
        #expect(Self.role(inventory, "time") == .time)
        #expect(inventory.fields.first { $0.path == "time" }?.timeFormat == "local")
        #expect(Self.role(inventory, "inout") == .direction)
        #expect(Self.role(inventory, "id") == .recordID)
        #expect(Self.role(inventory, "gate") == nil)
        let plates = inventory.fields.first { $0.path == "plate_no" }
        #expect(plates?.values.count == 5)
        #expect(plates?.distinctCount == 7)
    }

    @Test("the draft loads with the engine and maps its own samples")
    func draftLoadsAndMaps() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("scaffold-\(UUID().uuidString.prefix(8))/acme-lpr").path
        defer { try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent) }
        let payloads = [
            Self.json("川A12345", id: 101, sec: 1_741_911_129, lane: 1),
            Self.json("粤B7D8E9F", id: 102, sec: 1_741_911_200, lane: 2),
        ]
        let scaffold = ProfileScaffold(name: "acme-lpr", deviceID: "gate-1", timeZone: "Asia/Shanghai", payloads: payloads)
        try scaffold.write(to: directory)
        let yaml = try String(contentsOfFile: directory + "/profile.yaml", encoding: .utf8)
        #expect(yaml.contains("# GUESS:"))
        let profile = try ProfileLoader.load(directory: directory)
        let cases = VectorCase.all(in: directory)
        #expect(cases.count == 2)
        let (request, device) = try cases[0].request()
        let outcome = profile.process(request, device: device)
        let events = try outcome.events.get()
        // The samples carry stand-ins of the same shape, never the clear plates.
        #expect(events.first?.subject?.value == "川X00002")
        for file in try FileManager.default.contentsOfDirectory(atPath: directory + "/samples") + ["profile.yaml", "README.md"] {
            let path = file.hasSuffix(".md") || file.hasSuffix(".yaml") && !file.contains(".meta") ? directory + "/" + file : directory + "/samples/" + file
            let bytes = FileManager.default.contents(atPath: path) ?? Data()
            #expect(bytes.range(of: Data("川A12345".utf8)) == nil && bytes.range(of: Data("粤B7D8E9F".utf8)) == nil, "\(file)")
        }
        #expect(events.first?.dedupKey == "ACME-0042:101")
        #expect(outcome.deviceKey == "ACME-0042")
        let readme = try String(contentsOfFile: directory + "/README.md", encoding: .utf8)
        #expect(readme.contains("`Upload.rec.carNo` | **plate**"))
        // A second scaffold into the same folder refuses instead of overwriting a profile being edited.
        #expect(throws: ProfileScaffold.Failure.self) { try scaffold.write(to: directory) }
    }
}

@Suite("Profile scaffold: redaction of personal values")
struct ScaffoldRedactionTests {
    static let plates = ["苏E12345", "川A7B8C9"]
    static let card = "8800123456"
    static let phone = "13800138000"
    static let name = "张三"

    /// Every form a clear value can take in a raw sample.
    static func forms(_ value: String) -> [Data] {
        var forms = [Data(value.utf8), Data(value.utf8.map { String(format: "%%%02X", $0) }.joined().utf8)]
        if let gbk = TextDecoding.encode(value, as: .gbk) {
            forms.append(Data(gbk))
            forms.append(Data(gbk.map { $0 < 0x80 ? String(UnicodeScalar($0)) : String(format: "%%%02X", $0) }.joined().utf8))
        }
        forms.append(Data(value.unicodeScalars.map { $0.isASCII ? String($0) : String(format: "\\u%04x", $0.value) }.joined().utf8))
        return forms
    }

    @Test("GBK form and escaped JSON samples keep their shape; no clear plate, card, phone or name in any file")
    func redactsEveryEncoding() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("scaffold-\(UUID().uuidString.prefix(8))/acme-door").path
        defer { try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent) }
        let percentGBK = { (text: String) in (TextDecoding.encode(text, as: .gbk) ?? []).map { $0 < 0x80 ? String(UnicodeScalar($0)) : String(format: "%%%02X", $0) }.joined() }
        let payloads = Self.plates.enumerated().map { index, plate in
            let form = "plate=\(percentGBK(plate))&cardNo=\(Self.card)&userName=\(percentGBK(Self.name))&mobile=\(Self.phone)&time=2025-03-14+08%3A1\(index)%3A09&id=\(700 + index)"
            return CapturedPayload(body: Array(form.utf8), contentType: "application/x-www-form-urlencoded")
        } + [
            CapturedPayload(
                body: Array(#"{"plate":"\u82cfE12345","card":"\#(Self.card)","time":"2025-03-14 08:20:09","id":702}"#.utf8),
                contentType: "application/json")
        ]
        let scaffold = ProfileScaffold(name: "acme-door", deviceID: "door-1", payloads: payloads)
        #expect(scaffold.redactions >= 5)
        try scaffold.write(to: directory)
        var files = ["profile.yaml", "README.md"].map { directory + "/" + $0 }
        files += try FileManager.default.contentsOfDirectory(atPath: directory + "/samples").map { directory + "/samples/" + $0 }
        for file in files {
            let bytes = try #require(FileManager.default.contents(atPath: file))
            for value in Self.plates + [Self.card, Self.phone, Self.name] {
                for form in Self.forms(value) {
                    #expect(bytes.range(of: form) == nil, "\(value) in \(file)")
                }
            }
        }
        // The redacted samples still decode and the guesses still hold.
        let again = FieldInventory.build(scaffold.payloads.prefix(2).map { $0 })
        #expect(again.fields.first { $0.path == "plate" }?.role == .plate)
        #expect(again.fields.first { $0.path == "time" }?.values.first == "2025-03-14 08:10:09", "times are not personal and stay")
        #expect(again.fields.first { $0.path == "userName" }?.values.first == "某某")
    }
}
