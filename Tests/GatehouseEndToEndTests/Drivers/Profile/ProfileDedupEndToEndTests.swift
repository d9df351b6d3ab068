import Foundation
import GatehouseTesting
import Testing

/// Vendor counters are not identities: the regressions of the field trial, through the daemon.
/// A repeated key with other content is a new event (a dedup collision); a re-send with the same
/// content is stored once, also when only its picture differs; a payload with no id at all is
/// recognised by its content.
@Suite("Profile dedup on content end to end", .serialized)
struct ProfileDedupEndToEndTests {
    static func zhenshi(plate: String, plateID: Int?, seconds: Int) -> [UInt8] {
        let id = plateID.map { "\"plateid\":\($0)," } ?? ""
        return Array("""
            {"AlarmInfoPlate":{"channel":0,"serialno":"a3c9e105-7d214b60","result":{"PlateResult":{\
            "license":"\(plate)","colorType":1,"triggerType":8,\(id)"isoffline":0,\
            "timeStamp":{"Timeval":{"sec":\(seconds),"usec":0}}}}}}
            """.utf8)
    }

    static func hikvision(plate: String, uuid: String, time: String) -> String {
        """
        <EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">\
        <macAddress>44:19:b6:10:22:7e</macAddress><channelID>1</channelID><dateTime>\(time)</dateTime>\
        <eventType>ANPR</eventType><eventState>active</eventState><ANPR><licensePlate>\(plate)</licensePlate>\
        <line>1</line><plateColor>blue</plateColor></ANPR><UUID>\(uuid)</UUID></EventNotificationAlert>
        """
    }

    static func multipart(xml: String, picture: [UInt8]) -> [UInt8] {
        var body: [UInt8] = []
        func part(_ name: String, _ type: String, _ bytes: [UInt8]) {
            body += Array("--b\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(name)\"\r\nContent-Type: \(type)\r\n\r\n".utf8)
            body += bytes + Array("\r\n".utf8)
        }
        part("anpr.xml", "application/xml", Array(xml.utf8))
        part("licensePlatePicture.jpg", "image/jpeg", [0xFF, 0xD8] + picture + [0xFF, 0xD9])
        return body + Array("--b--\r\n".utf8)
    }

    static func plates(_ events: [[String: Any]], device: String) -> [String] {
        events.filter { ($0["device"] as? [String: Any])?["id"] as? String == device }
            .compactMap { ($0["subject"] as? [String: Any])?["value"] as? String }
    }

    @Test("counter restart, placeholder UUID, no id, exact re-send, re-send with another picture")
    func contentDedup() async throws {
        let site = ProfileSite()
        defer { site.remove() }
        let (daemon, ingest, admin) = try await DaemonProcess.start(configPath: try site.write())
        defer { if daemon.process.isRunning { daemon.process.terminate() } }
        let base = "http://127.0.0.1:\(ingest)/v1/push"
        func post(_ profile: String, _ body: [UInt8], _ type: String) async throws {
            let (status, reply) = try await RobustnessTests.post("\(base)/\(profile)", body: body, headers: [("Content-Type", type)])
            #expect(status == 200, "\(reply)")
        }
        let now = Int(Date().timeIntervalSince1970)

        // Zhenshi: plateid 7, then the camera reboots and counts from 1 again: a different car is id 7 too.
        try await post("zhenshi-lpr", Self.zhenshi(plate: "川A11111", plateID: 7, seconds: now - 600), "application/json")
        try await post("zhenshi-lpr", Self.zhenshi(plate: "川B22222", plateID: 7, seconds: now - 60), "application/json")
        try await post("zhenshi-lpr", Self.zhenshi(plate: "川B22222", plateID: 7, seconds: now - 60), "application/json")  // exact re-send
        // A clone with no id at all: recognised by content.
        try await post("zhenshi-lpr", Self.zhenshi(plate: "川C33333", plateID: nil, seconds: now - 30), "application/json")
        try await post("zhenshi-lpr", Self.zhenshi(plate: "川C33333", plateID: nil, seconds: now - 30), "application/json")
        try await post("zhenshi-lpr", Self.zhenshi(plate: "川D44444", plateID: nil, seconds: now - 30), "application/json")

        // Hikvision firmware that sends the placeholder UUID "x" for every read.
        let t = "2026-11-30T08:00:0%d+08:00"
        for (i, plate) in ["川E55555", "川F66666", "川G77777"].enumerated() {
            try await post("hikvision-anpr", Array(Self.hikvision(plate: plate, uuid: "x", time: String(format: t, i)).utf8), "application/xml")
        }
        try await post("hikvision-anpr", Array(Self.hikvision(plate: "川F66666", uuid: "x", time: String(format: t, 1)).utf8), "application/xml")
        // The same read re-sent with another picture (a re-encoded JPEG): one event.
        let xml = Self.hikvision(plate: "川H88888", uuid: "2026113008000500001", time: String(format: t, 5))
        try await post("hikvision-anpr", Self.multipart(xml: xml, picture: [1, 2, 3]), "multipart/form-data; boundary=b")
        try await post("hikvision-anpr", Self.multipart(xml: xml, picture: [4, 5, 6, 7]), "multipart/form-data; boundary=b")

        let events = try await site.forwarded(atLeast: 8)
        #expect(Self.plates(events, device: "east-in").sorted() == ["川A11111", "川B22222", "川C33333", "川D44444"], "\(events)")
        #expect(Self.plates(events, device: "west-hik").sorted() == ["川E55555", "川F66666", "川G77777", "川H88888"], "\(events)")
        let noID = events.first { ($0["subject"] as? [String: Any])?["value"] as? String == "川C33333" }
        #expect(((noID?["source"] as? [String: Any])?["dedupKey"] as? String)?.hasPrefix("content:") == true, "\(String(describing: noID))")

        let status = try await RobustnessTests.status(adminPort: admin)
        let queue = try #require(status["queue"] as? [String: Any])
        // Collisions: B under A's id 7, and F and G under E's "x".
        #expect(queue["dedupCollisions"] as? Int == 3, "\(queue)")
        #expect(queue["duplicates"] as? Int == 4, "\(queue)")
        #expect(try await daemon.stop() == 0)
        #expect(daemon.log.contains("dedup key reused with different content"), "\(daemon.log.suffix(2000))")
    }
}
