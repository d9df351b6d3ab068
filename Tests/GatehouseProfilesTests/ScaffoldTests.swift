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
        #expect(events.first?.subject?.value == "川A12345")
        #expect(events.first?.dedupKey == "ACME-0042:101")
        #expect(outcome.deviceKey == "ACME-0042")
        let readme = try String(contentsOfFile: directory + "/README.md", encoding: .utf8)
        #expect(readme.contains("`Upload.rec.carNo` | **plate**"))
        // A second scaffold into the same folder refuses instead of overwriting a profile being edited.
        #expect(throws: ProfileScaffold.Failure.self) { try scaffold.write(to: directory) }
    }
}
