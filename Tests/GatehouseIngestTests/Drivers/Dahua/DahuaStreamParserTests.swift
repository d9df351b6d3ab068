import Foundation
import GatehouseCore
import Testing

@testable import GatehouseIngest

/// The attach stream's framing: boundaries, lying lengths, multi-line data, garbage and cuts.
@Suite("dahua attach stream parser")
struct DahuaStreamParserTests {
    /// The protocol notes' sample: a heartbeat, a plate read over many lines, a door event.
    static let sample = """
        --myboundary\r
        Content-Type: text/plain\r
        Content-Length: 9\r
        \r
        Heartbeat\r
        --myboundary\r
        Content-Type: text/plain\r
        Content-Length: 462\r
        \r
        Code=TrafficJunction;action=Pulse;index=0;data={
           "Name" : "TrafficJunction",
           "EventID" : 9137,
           "GroupID" : 88123, "CountInGroup" : 1, "IndexInGroup" : 1,
           "Object" : { "ObjectType" : "Plate", "Text" : "粤BA1234" },
           "TrafficCar" : { "PlateNumber" : "粤BA1234", "PlateColor" : "Blue",
                            "VehicleColor" : "White", "Lane" : 1 },
           "LocaleTime" : "2025-03-14 18:20:05",
           "UTC" : 1741976405, "UTCMS" : 250, "RealUTC" : 1741947605
        }\r
        --myboundary\r
        Content-Type: text/plain\r
        Content-Length: 59\r
        \r
        Code=DoorStatus;action=Pulse;index=0;data={"Status":"Open"}\r

        """

    static func summary(_ items: [DahuaStreamItem]) -> [String] {
        items.map { item in
            switch item {
            case .heartbeat: "heartbeat"
            case .event(let e): "\(e.code)/\(e.action)/\(e.index.map(String.init) ?? "-")\(e.data == nil ? "" : "+data")"
            case .malformed(_, let reason): "malformed: \(reason)"
            }
        }
    }

    static func parse(_ text: String, chunk: Int? = nil, max: Int = DahuaStreamParser.defaultMaxRecordBytes) -> [DahuaStreamItem] {
        var parser = DahuaStreamParser(maxRecordBytes: max)
        let bytes = Array(text.utf8)
        var items: [DahuaStreamItem] = []
        var offset = 0
        let size = chunk ?? bytes.count
        while offset < bytes.count {
            items += parser.feed(bytes[offset..<min(offset + size, bytes.count)])
            offset += size
        }
        return items + parser.finish()
    }

    @Test("the notes' sample: a heartbeat (not an event), a multi-line plate read, a door pulse")
    func sample() throws {
        let items = Self.parse(Self.sample)
        #expect(Self.summary(items) == ["heartbeat", "TrafficJunction/Pulse/0+data", "DoorStatus/Pulse/0+data"])
        guard case .event(let plate) = items[1], case .object(let data)? = plate.data, case .object(let car)? = data["TrafficCar"] else {
            Issue.record("no plate data")
            return
        }
        #expect(car["PlateNumber"] == .string("粤BA1234"))
        #expect(data["RealUTC"] == .number(1_741_947_605))
    }

    @Test("split at every offset, in chunks of 1, 2, 3, 7 and 64 bytes, the same items come out", arguments: [1, 2, 3, 7, 64])
    func oddOffsets(chunk: Int) {
        #expect(Self.summary(Self.parse(Self.sample, chunk: chunk)) == Self.summary(Self.parse(Self.sample)))
    }

    @Test("Content-Length 0, too long or too short changes nothing: the length is never used to slice")
    func lyingContentLength() {
        for length in ["0", "3", "9999", "not-a-number"] {
            let text = "--myboundary\r\nContent-Type: text/plain\r\nContent-Length: \(length)\r\n\r\nCode=VideoMotion;action=Start;index=1;data={\r\n  \"Id\" : [ 0 ]\r\n}\r\n"
                + "--myboundary\r\nContent-Length: \(length)\r\n\r\nCode=VideoMotion;action=Stop;index=1\r\n"
            #expect(Self.summary(Self.parse(text)) == ["VideoMotion/Start/1+data", "VideoMotion/Stop/1"], "Content-Length: \(length)")
        }
    }

    @Test("a record is yielded when its closing brace arrives, a heartbeat when its text does, not with the next part")
    func yieldsEarly() {
        var parser = DahuaStreamParser()
        #expect(Self.summary(parser.feed(Array("--myboundary\r\nContent-Length: 9\r\n\r\nHeartbeat".utf8))) == ["heartbeat"])
        #expect(Self.summary(parser.feed(Array("\r\n--myboundary\r\n\r\nCode=AlarmLocal;action=Start;index=1;data={\"a\":{\"b\":1}".utf8))).isEmpty)
        #expect(Self.summary(parser.feed(Array("}".utf8))) == ["AlarmLocal/Start/1+data"])
        // Without data= the line end closes the record.
        #expect(Self.summary(parser.feed(Array("\r\n--myboundary\r\n\r\nCode=AlarmLocal;action=Stop;index=1".utf8))).isEmpty)
        #expect(Self.summary(parser.feed(Array("\r\n".utf8))) == ["AlarmLocal/Stop/1"])
    }

    @Test("braces and semicolons inside JSON strings do not end the record")
    func bracesInStrings() throws {
        let items = Self.parse("Code=CrossLineDetection;action=Pulse;index=2;data={\"Name\":\"gate}{;x=1\",\"Esc\":\"a\\\"}\",\"Obj\":{\"k\":[1,{\"z\":\"]\"}]}}\r\n")
        #expect(Self.summary(items) == ["CrossLineDetection/Pulse/2+data"])
        guard case .event(let event) = items.first, case .object(let data)? = event.data else { return }
        #expect(data["Name"] == .string("gate}{;x=1"))
        #expect(data["Esc"] == .string("a\"}"))
    }

    @Test("several records in one part (NVRs) and records with no boundary at all")
    func severalInOnePart() {
        let text = "--myboundary\r\nContent-Type: text/plain\r\n\r\nCode=VideoLoss;action=Start;index=0\r\nCode=VideoLoss;action=Start;index=3;data={\r\n}\r\n"
            + "Code=VideoBlind;action=Stop;index=1\r\n"
        #expect(Self.summary(Self.parse(text)) == ["VideoLoss/Start/0", "VideoLoss/Start/3+data", "VideoBlind/Stop/1"])
    }

    @Test("garbage is quarantined as one item per run and the stream goes on")
    func garbage() {
        var bytes = Array("--myboundary\r\n\r\nthis is not an event\r\n".utf8) + [0x00, 0xFF, 0xFE, 0x0A] + Array("more noise\r\n".utf8)
        bytes += Array("--myboundary\r\nContent-Length: 5\r\n\r\nCode=VideoMotion;action=Start;index=0\r\n".utf8)
        var parser = DahuaStreamParser()
        let items = parser.feed(bytes) + parser.finish()
        #expect(items.count == 2)
        guard case .malformed(let kept, let reason) = items.first else {
            Issue.record("expected the garbage first: \(Self.summary(items))")
            return
        }
        #expect(reason.contains("not a Dahua event record"))
        #expect(kept.count == 36)
        #expect(Self.summary(Array(items.dropFirst())) == ["VideoMotion/Start/0"])
    }

    @Test("a part cut inside data= is quarantined as truncated; the next part is read")
    func truncatedPart() {
        let text = "--myboundary\r\n\r\nCode=VideoMotion;action=Start;index=0;data={\r\n  \"Id\" : [ 0 \r\n"
            + "--myboundary\r\nContent-Length: 37\r\n\r\nCode=VideoMotion;action=Stop;index=0\r\n"
        let summary = Self.summary(Self.parse(text))
        #expect(summary.count == 2)
        #expect(summary.first?.contains("truncated record") == true, "\(summary)")
        #expect(summary.last == "VideoMotion/Stop/0")
        // Cut mid-line, the next part's boundary right after the cut.
        let midLine = "Code=VideoMotion;action=Start;index=0;data={\r\n  \"Name\" : \"cut--myboundary\r\n\r\nCode=VideoMotion;action=Stop;index=0\r\n"
        let cut = Self.summary(Self.parse(midLine, chunk: 5))
        #expect(cut.count == 2 && cut.first?.contains("truncated record") == true && cut.last == "VideoMotion/Stop/0", "\(cut)")
        // The stream ending inside a record.
        #expect(Self.summary(Self.parse("Code=VideoMotion;action=Start;index=0;data={\"Id\":")).first?.contains("truncated") == true)
    }

    @Test("data that is not JSON, a bad index and a record without Code are malformed with the reason")
    func badRecords() {
        let items = Self.summary(Self.parse(
            "Code=VideoMotion;action=Start;index=0;data={\"a\":tru}\r\nCode=VideoMotion;action=Start;index=-1\r\nCode=;action=Start\r\nCode=X;data=hello\r\n"))
        #expect(items.count == 4, "\(items)")
        #expect(items[0].contains("not valid JSON"))
        #expect(items[1].contains("index '-1'"))
        #expect(items[2].contains("without Code"))
        #expect(items[3].contains("not a JSON object"))
    }

    @Test("an endless record is cut at the cap, skipped to the next part, and memory stays bounded")
    func bounded() {
        var parser = DahuaStreamParser(maxRecordBytes: 2048)
        var items = parser.feed(Array("--myboundary\r\n\r\nCode=VideoMotion;action=Start;index=0;data={\"x\":\"".utf8))
        for _ in 0..<100 {
            items += parser.feed(Array(repeating: UInt8(ascii: "a"), count: 500))
            #expect(parser.bufferedBytes <= 2048 + 500)
        }
        items += parser.feed(Array("\"}\r\n--myboundary\r\n\r\nCode=VideoMotion;action=Stop;index=0\r\n".utf8))
        let summary = Self.summary(items)
        #expect(summary.count == 2, "\(summary)")
        #expect(summary.first?.contains("longer than 2048 bytes") == true)
        #expect(summary.last == "VideoMotion/Stop/0")
        // Garbage without any line break is cut at the cap too.
        var noise = DahuaStreamParser(maxRecordBytes: 1024)
        var garbage: [DahuaStreamItem] = []
        for _ in 0..<20 { garbage += noise.feed(Array(repeating: UInt8(0xAB), count: 300)) }
        #expect(noise.bufferedBytes <= 1024 + 300)
        #expect(!garbage.isEmpty)
    }

    @Test("GB18030 data from older firmware is read as such")
    func gb18030() throws {
        let plate = try #require(TextDecoding.encode("粤BA1234", as: .gb18030))
        let bytes = Array("Code=TrafficJunction;action=Pulse;index=0;data={\"TrafficCar\":{\"PlateNumber\":\"".utf8) + plate + Array("\"}}\r\n".utf8)
        var parser = DahuaStreamParser()
        let items = parser.feed(bytes)
        guard case .event(let event)? = items.first, case .object(let data)? = event.data, case .object(let car)? = data["TrafficCar"] else {
            Issue.record("\(Self.summary(items))")
            return
        }
        #expect(car["PlateNumber"] == .string("粤BA1234"))
    }
}
