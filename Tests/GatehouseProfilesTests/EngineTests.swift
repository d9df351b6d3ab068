import Foundation
import GatehouseCore
import Testing

@testable import GatehouseProfiles

@Suite("Profile engine")
struct EngineTests {
    static let shanghai = TimeZone(identifier: "Asia/Shanghai") ?? .gmt

    static func profile(_ yaml: String, name: String = "test-profile") throws -> Profile {
        try ProfileLoader.parse(yaml, file: "/tmp/\(name)/profile.yaml", directory: "/tmp/\(name)")
    }

    static let minimal = """
        format: 1
        name: test-profile
        vendor: acme
        device: {by: path}
        tables:
          colors: {"1": blue, default: unknown}
        event:
          kind: {const: vehicle.detected}
          plate: Plate.Text
          plate_color: {path: Plate.Color, lookup: colors}
          no_plate: ["无牌"]
          time: [{path: Time, format: compact}]
          dedup: {template: "${Id}"}
        replies:
          - when: {error: true}
            body: '{"ok":false}'
          - body: '{"ok":true,"id":"${Id|none}"}'
        """

    @Test("XML: attributes as @name, repeated elements as arrays, namespaces dropped")
    func xmlTree() throws {
        let xml = #"<a:Root xmlns:a="urn:x" v="2"><Item>1</Item><Item>2</Item><One k="z">text</One><Empty/></a:Root>"#
        let tree = try XMLTree.parse(Array(xml.utf8))
        #expect(FieldPath("Root.@v")?.resolve(in: tree) == .string("2"))
        #expect(FieldPath("Root.Item")?.resolve(in: tree) == .array([.string("1"), .string("2")]))
        #expect(FieldPath("Root.Item[1]")?.resolve(in: tree) == .string("2"))
        #expect(FieldPath("Root.One.#text")?.resolve(in: tree) == .string("text"))
        #expect(FieldPath("Root.One.@k")?.resolve(in: tree) == .string("z"))
        #expect(FieldPath("Root.Empty")?.resolve(in: tree) == .string(""))
    }

    @Test("XML nested deeper than the limit is refused, not a crash")
    func xmlDepth() {
        let xml = String(repeating: "<a>", count: 200) + String(repeating: "</a>", count: 200)
        #expect(throws: MappingError.self) { try XMLTree.parse(Array(xml.utf8)) }
    }

    @Test("form bodies are percent-decoded as bytes, then read as GBK")
    func formGBK() throws {
        let value = try FormURLEncoded.parse(Array("plate=%B4%A8A12345&time=2025-03-14+08%3A00%3A00".utf8), charset: .gbk)
        #expect(FieldPath("plate")?.resolve(in: value) == .string("川A12345"))
        #expect(FieldPath("time")?.resolve(in: value) == .string("2025-03-14 08:00:00"))
        #expect(throws: MappingError.self) { try FormURLEncoded.parse(Array("plate=%FF%FF".utf8), charset: .gbk) }
    }

    @Test("multipart: the document part is read, pictures are counted")
    func multipart() throws {
        let body = Array("--b\r\nContent-Disposition: form-data; name=\"doc\"\r\nContent-Type: application/json\r\n\r\n{\"x\":1}\r\n--b\r\nContent-Disposition: form-data; name=\"p.jpg\"\r\nContent-Type: image/jpeg\r\n\r\nJPEGDATA\r\n--b--\r\n".utf8)
        let document = try BodyDecoder.decode(body, contentType: "multipart/form-data; boundary=b", spec: BodySpec())
        #expect(document.root == .object(["x": .number(1)]))
        #expect(document.images == ImageStats(count: 1, bytes: 8, names: ["p.jpg"]))
        #expect(throws: MappingError.self) {
            try BodyDecoder.decode(Array(body.prefix(60)), contentType: "multipart/form-data; boundary=b", spec: BodySpec())
        }
    }

    @Test("JSON nested deeper than the limit becomes a mapping error")
    func deepJSON() {
        let json = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: MappingError.self) { try BodyDecoder.decode(Array(json.utf8), contentType: "application/json", spec: BodySpec()) }
    }

    @Test("time formats", arguments: [
        ("20250314081209", TimeSpec.Format.compact, "2025-03-14T00:12:09.000Z"),
        ("20250314081209413", .compact, "2025-03-14T00:12:09.413Z"),
        ("2025-03-14 08:12:09", .local, "2025-03-14T00:12:09.000Z"),
        ("2025-03-14T08:12:09+08:00", .rfc3339, "2025-03-14T00:12:09.000Z"),
        ("1741911129", .epochSeconds, "2025-03-14T00:12:09.000Z"),
        ("1741911129412", .epochMillis, "2025-03-14T00:12:09.412Z"),
        ("1741940529", .epochLocal, "2025-03-14T00:22:09.000Z"),
    ])
    func times(_ text: String, _ format: TimeSpec.Format, _ expected: String) throws {
        let spec = TimeSpec(path: try #require(FieldPath("t")), format: format)
        let context = MappingContext(item: .object(["t": .string(text)]))
        let (time, raw) = try #require(try spec.evaluate(context, zone: Self.shanghai))
        #expect(time.rfc3339 == expected)
        #expect(raw == text)
    }

    @Test("mapping: plate normalised, lookup, template dedup key, reply echoes the vendor id")
    func mapping() throws {
        let profile = try Self.profile(Self.minimal)
        let body = #"{"Plate":{"Text":"川 a·12345","Color":1},"Time":"20250314081209","Id":"r\"7"}"#
        let outcome = profile.process(ProfileRequest(body: Array(body.utf8), contentType: "application/json"), device: ProfileDevice(id: "d", timeZone: Self.shanghai))
        let events = try outcome.events.get()
        #expect(events.count == 1)
        #expect(events.first?.subject == Subject(type: .plate, value: "川A12345", color: "blue"))
        #expect(events.first?.dedupKey == "r\"7")
        #expect(events.first?.occurredAt?.rfc3339 == "2025-03-14T00:12:09.000Z")
        // The echoed id is escaped for the JSON body.
        #expect(outcome.reply.body == #"{"ok":true,"id":"r\"7"}"#)
    }

    @Test("a no-plate marker makes the event vehicle.unplated without a subject")
    func unplated() throws {
        let profile = try Self.profile(Self.minimal)
        let outcome = profile.process(ProfileRequest(body: Array(#"{"Plate":{"Text":"无牌"}}"#.utf8), contentType: nil), device: ProfileDevice(id: "d", timeZone: .gmt))
        let events = try outcome.events.get()
        #expect(events.first?.kind == .vehicleUnplated)
        #expect(events.first?.subject == nil)
    }

    @Test("a payload that does not map gets a reason and still the error reply")
    func failureReply() throws {
        let profile = try Self.profile(Self.minimal)
        let outcome = profile.process(ProfileRequest(body: Array(#"{"Time": "#.utf8), contentType: nil), device: ProfileDevice(id: "d", timeZone: .gmt))
        guard case .failure(let error) = outcome.events else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.reason.contains("malformed JSON"))
        #expect(outcome.reply.body == #"{"ok":false}"#)
    }

    @Test("a time that cannot be read keeps the read: the device's text and the reason, no occurredAt")
    func unreadableTime() throws {
        let profile = try Self.profile(Self.minimal)
        for text in ["soon", "20250230100000", "20250314251200"] {
            let body = #"{"Plate":{"Text":"川F12345"},"Time":"\#(text)","Id":"7"}"#
            let outcome = profile.process(ProfileRequest(body: Array(body.utf8), contentType: nil), device: ProfileDevice(id: "d", timeZone: .gmt))
            let event = try #require(try outcome.events.get().first, "\(text)")
            #expect(event.occurredAt == nil)
            #expect(event.deviceTime == text)
            #expect(event.timeIssue?.contains("'\(text)' is not a valid compact time") == true, "\(event.timeIssue ?? "nil")")
            #expect(event.subject?.value == "川F12345")
            #expect(outcome.reply.body == #"{"ok":true,"id":"7"}"#)
        }
    }

    @Test("a profile that does not load names the file, the line and the key")
    func loadErrors() {
        let broken = Self.minimal
            .replacingOccurrences(of: "kind: {const: vehicle.detected}", with: "kind: {const: vehicle.detectd}")
            .replacingOccurrences(of: "lookup: colors", with: "lookup: colours")
        do {
            _ = try Self.profile(broken)
            Issue.record("expected a load error")
        } catch {
            let text = "\(error)"
            #expect(text.contains("/tmp/test-profile/profile.yaml:8:9:"))
            #expect(text.contains("event.kind: 'vehicle.detectd' is not an event kind"))
            #expect(text.contains("did you mean 'vehicle.detected'"))
            #expect(text.contains("event.plate_color.lookup: no table 'colours'"))
        }
    }

    @Test("unknown keys are refused with a hint")
    func unknownKey() {
        do {
            _ = try Self.profile(Self.minimal + "\nreplys: []\n")
            Issue.record("expected a load error")
        } catch {
            #expect("\(error)".contains("replys: unknown key — did you mean 'replies'?"))
        }
    }
}
