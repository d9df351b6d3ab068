import Foundation
import Testing

@testable import GatehouseCore
import GatehouseTesting

/// Keeps docs/event.schema.json and docs/event-schema.md honest against the Swift types and
/// what `EventCoding` actually writes.
@Suite("Event schema")
struct EventSchemaTests {
    // MARK: (a) enums

    @Test("schema enums are exactly the Swift enums")
    func enumsMatchSwift() throws {
        let schema = try Self.schema()
        let kind = try Self.enumValues(schema, "kind")
        #expect(kind == Set(EventKind.allCases.map(\.rawValue)))
        #expect(try Self.enumValues(schema, "device", "type") == Set(DeviceType.allCases.map(\.rawValue)))
        #expect(try Self.enumValues(schema, "priority") == Set(Priority.allCases.map(\.rawValue)))
        #expect(try Self.enumValues(schema, "direction") == Set(Direction.allCases.map(\.rawValue)))
        #expect(try Self.enumValues(schema, "result") == Set(AccessResult.allCases.map(\.rawValue)))
        #expect(try Self.enumValues(schema, "state") == Set(AlarmState.allCases.map(\.rawValue)))
        #expect(try Self.enumValues(schema, "alarm", "stopReason") == Set(AlarmStopReason.allCases.map(\.rawValue)))
        #expect(try Self.enumValues(schema, "subject", "type") == Set(SubjectType.allCases.map(\.rawValue)))
        #expect(try Self.enumValues(schema, "subject", "treatment") == Set(Self.allTreatments.map(\.rawValue)))
        #expect(try Self.property(schema, "schema")["const"] as? String == Event.schemaV1)
    }

    /// `SubjectTreatment` is not `CaseIterable`; the exhaustive switch stops compiling when a case is added.
    static let allTreatments: [SubjectTreatment] = {
        let all: [SubjectTreatment] = [.clear, .masked, .hashed, .dropped]
        for treatment in all {
            switch treatment {
            case .clear, .masked, .hashed, .dropped: break
            }
        }
        return all
    }()

    @Test("schema properties and required lists are the Swift stored properties")
    func propertiesMatchSwift() throws {
        let schema = try Self.schema()
        let sample = Self.minimalEvent(kind: .accessGranted, now: Self.t0)
        let cases: [(Any, [String: Any])] = [
            (sample, schema),
            (sample.device, try Self.property(schema, "device")),
            (sample.source, try Self.property(schema, "source")),
            (Subject(type: .plate, value: nil), try Self.property(schema, "subject")),
            (AlarmRef(id: "", incident: ""), try Self.property(schema, "alarm")),
        ]
        for (value, objectSchema) in cases {
            let (all, required) = Self.storedProperties(value)
            let properties = try #require(objectSchema["properties"] as? [String: Any])
            #expect(Set(properties.keys) == all, "properties of \(type(of: value))")
            #expect(Set(objectSchema["required"] as? [String] ?? []) == required, "required of \(type(of: value))")
            #expect(objectSchema["additionalProperties"] as? Bool == false, "\(type(of: value)) is closed")
            for (name, property) in properties {
                let description = (property as? [String: Any])?["description"] as? String ?? ""
                #expect(!description.isEmpty, "\(type(of: value)).\(name) has no description")
            }
        }
        // attributes are open: any JSON object.
        let attributes = try Self.property(schema, "attributes")
        #expect(attributes["type"] as? String == "object")
        #expect(attributes["additionalProperties"] == nil)
    }

    // MARK: (b) encoded keys

    @Test("every encoded key is in the schema and every required key is encoded")
    func encodedKeysMatchSchema() throws {
        let schema = try Self.schema()
        for event in Self.samples() {
            let object = try Self.jsonObject(EventCoding.encode(event))
            Self.checkKeys(object, against: schema, path: "\(event.kind.rawValue)")
        }
    }

    @Test("optional fields are left out, not written as null")
    func noNulls() throws {
        let event = Self.minimalEvent(kind: .deviceOnline, now: Self.t0)
        let text = String(decoding: try EventCoding.encode(event), as: UTF8.self)
        #expect(!text.contains("null"))
        let object = try Self.jsonObject(EventCoding.encode(event))
        #expect(Set(object.keys) == ["id", "schema", "kind", "occurredAt", "receivedAt", "site", "device", "priority", "source"])
    }

    // MARK: (c) round trip

    @Test("decode(encode(event)) == event, and the bytes are stable")
    func roundTrip() throws {
        for event in Self.samples() {
            let data = try EventCoding.encode(event)
            let decoded = try EventCoding.decode(data)
            #expect(decoded == event, "\(String(decoding: data, as: UTF8.self))")
            #expect(try EventCoding.encode(decoded) == data)
        }
    }

    @Test("the encoding written straight out is the text of the event's JSON value tree")
    func directEncodingMatchesTheTree() throws {
        for event in Self.samples() + [Self.fullVehicleEntry(), Self.minimalEvent(kind: .deviceOnline, now: Self.t0)] {
            let direct = String(decoding: try EventCoding.encode(event), as: UTF8.self)
            #expect(direct == event.jsonValue.jsonText)
        }
    }

    @Test("the encoding is compact, sorted and does not escape slashes")
    func canonicalForm() throws {
        let event = Self.fullVehicleEntry()
        let text = String(decoding: try EventCoding.encode(event), as: UTF8.self)
        #expect(text.hasPrefix(#"{"attributes":{"#))
        #expect(text.contains(#""picture":"http://10.0.0.21/pic/1.jpg""#))
        #expect(text.contains(#""occurredAt":"2026-11-24T00:00:00.123Z""#))
        #expect(text.contains(#""count":3,"#))  // whole numbers without a fraction
        #expect(text.contains(#""confidence":0.97"#))
        #expect(!text.contains("\n"))
    }

    // MARK: (d) validation with python3's jsonschema

    @Test("encoded events validate against the schema; broken ones do not")
    func validatesWithJSONSchema() async throws {
        guard await Self.pythonHasJSONSchema() else {
            Issue.record("python3 with the jsonschema package is not available; schema validation skipped (pip install jsonschema)")
            return
        }
        var valid: [Any] = []
        for event in Self.samples() {
            valid.append(try Self.jsonObject(EventCoding.encode(event)))
        }
        let results = try await Self.validate(valid)
        #expect(results.count == valid.count)
        for (index, errors) in results.enumerated() {
            #expect(errors.isEmpty, "sample \(index): \(errors)")
        }

        let base = try Self.jsonObject(EventCoding.encode(Self.fullVehicleEntry()))
        var broken: [(String, [String: Any])] = []
        func mutate(_ why: String, _ change: (inout [String: Any]) -> Void) {
            var copy = base
            change(&copy)
            broken.append((why, copy))
        }
        func mutateNested(_ why: String, _ key: String, _ change: (inout [String: Any]) -> Void) {
            mutate(why) { object in
                var nested = object[key] as! [String: Any]
                change(&nested)
                object[key] = nested
            }
        }
        mutate("unknown top-level key") { $0["extra"] = 1 }
        mutate("unknown kind") { $0["kind"] = "vehicle.flying" }
        mutate("other schema") { $0["schema"] = "gatehouse.event/2" }
        mutate("UUIDv4 id") { $0["id"] = "9b2f1c4e-3d5a-4f6b-8c7d-0e1f2a3b4c5d" }
        mutate("uppercase id") { $0["id"] = ($0["id"] as! String).uppercased() }
        mutate("time without milliseconds") { $0["occurredAt"] = "2026-11-24T00:00:00Z" }
        mutate("time with an offset") { $0["receivedAt"] = "2026-11-24T08:00:00.000+08:00" }
        mutate("local time") { $0["occurredAt"] = "2026-11-24 08:00:00" }
        mutate("missing source") { $0["source"] = nil }
        mutate("missing priority") { $0["priority"] = nil }
        mutate("null subject") { $0["subject"] = NSNull() }
        mutate("unknown priority") { $0["priority"] = "urgent" }
        mutate("unknown direction") { $0["direction"] = "both" }
        mutate("attributes not an object") { $0["attributes"] = [1, 2] }
        mutateNested("unknown device key", "device") { $0["serial"] = "X1" }
        mutateNested("unknown device type", "device") { $0["type"] = "toaster" }
        mutateNested("device without vendor", "device") { $0["vendor"] = nil }
        mutateNested("unknown source key", "source") { $0["payloadDigest"] = "abc" }
        mutateNested("source without driver", "source") { $0["driver"] = nil }
        mutateNested("unknown subject type", "subject") { $0["type"] = "iris" }
        mutateNested("unknown treatment", "subject") { $0["treatment"] = "encrypted" }
        mutateNested("unknown subject key", "subject") { $0["name"] = "Zhang San" }

        let brokenResults = try await Self.validate(broken.map(\.1))
        #expect(brokenResults.count == broken.count)
        for ((why, _), errors) in zip(broken, brokenResults) {
            #expect(!errors.isEmpty, "accepted although: \(why)")
        }
    }

    // MARK: docs/event-schema.md

    @Test("the examples in docs/event-schema.md decode and validate")
    func documentedExamples() async throws {
        let examples = try Self.jsonBlocks(in: Self.repoRoot.appending(path: "docs/event-schema.md"))
        #expect(examples.count == 3)
        var objects: [Any] = []
        var kinds: [EventKind] = []
        for example in examples {
            let event = try EventCoding.decode(Data(example.utf8))
            kinds.append(event.kind)
            #expect(event.id.milliseconds == event.receivedAt.milliseconds, "the id of \(event.kind) carries its receivedAt")
            // What the documentation shows is what the encoder writes (up to whitespace).
            let documented = NSDictionary(dictionary: try Self.jsonObject(Data(example.utf8)))
            let encoded = NSDictionary(dictionary: try Self.jsonObject(EventCoding.encode(event)))
            #expect(documented == encoded, "example \(event.kind.rawValue)")
            objects.append(documented)
        }
        #expect(kinds == [.vehicleEntry, .accessDenied, .deviceClockSkew])
        if await Self.pythonHasJSONSchema() {
            for errors in try await Self.validate(objects) {
                #expect(errors.isEmpty, "\(errors)")
            }
        }
    }

    @Test("docs/event-schema.md lists every kind with its default priority")
    func documentedKinds() throws {
        let text = try String(contentsOf: Self.repoRoot.appending(path: "docs/event-schema.md"), encoding: .utf8)
        let lines = text.split(separator: "\n")
        for kind in EventKind.allCases {
            let rows = lines.filter { $0.hasPrefix("| `\(kind.rawValue)` |") }
            #expect(rows.count == 1, "\(kind.rawValue) has \(rows.count) rows in the kind tables")
            guard let row = rows.first else { continue }
            let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(cells.last == kind.defaultPriority.rawValue, "default priority of \(kind.rawValue)")
        }
    }

    // MARK: samples

    static let t0 = Timestamp(milliseconds: 1_795_478_400_123)  // 2026-11-24T00:00:00.123Z

    static func minimalEvent(kind: EventKind, now: Timestamp, type: DeviceType = .other) -> Event {
        Event(
            id: EventIDGenerator().next(now: now), kind: kind, occurredAt: now, receivedAt: now,
            site: "sunny-garden", device: DeviceRef(id: "dev-1", vendor: "acme", type: type),
            source: Source(driver: "generic-json"))
    }

    static func fullVehicleEntry() -> Event {
        Event(
            id: EventIDGenerator().next(now: t0.adding(seconds: 0.295)), kind: .vehicleEntry, occurredAt: t0,
            receivedAt: t0.adding(seconds: 0.295), site: "sunny-garden",
            device: DeviceRef(id: "lane-north-in", vendor: "hikvision", model: "DS-TCG225", type: .lprCamera),
            point: "north-gate-lane-1", direction: .in,
            subject: Subject(type: .plate, value: "川F1***5", treatment: .masked, color: "blue"),
            result: .granted,
            attributes: [
                "confidence": .number(0.97), "count": .number(3), "negative": .number(-12), "big": .number(1e20),
                "tiny": .number(1.5e-7), "flag": .bool(true), "off": .bool(false), "none": .null,
                "picture": .string("http://10.0.0.21/pic/1.jpg"), "text": .string("北门 \"入口\"\n\t\u{1F697}"),
                "list": .array([.number(1), .string("two"), .null, .object(["k": .bool(false)])]),
                "nested": .object(["deeper": .object(["deepest": .array([])])]), "empty": .object([:]),
            ],
            source: Source(
                driver: "generic-json", profile: "hikvision-isapi-anpr", dedupKey: "lane-north-in/9f3a21",
                deviceTime: "2026-11-24 08:00:00.123"))
    }

    static func samples() -> [Event] {
        var events = EventKind.allCases.enumerated().map { index, kind in
            minimalEvent(
                kind: kind, now: t0.adding(seconds: Double(index)),
                type: DeviceType.allCases[index % DeviceType.allCases.count])
        }
        events.append(fullVehicleEntry())
        var denied = minimalEvent(kind: .accessDenied, now: t0, type: .doorController)
        denied.point = "door-1"
        denied.direction = .out
        denied.result = .denied
        denied.subject = Subject(
            type: .card, value: "hmac-sha256:5933bc5e8e471060b3799499b66cd115279799485a3a15334d840bc4d5441aab",
            treatment: .hashed)
        denied.attributes = ["reasonCode": .number(6)]
        denied.source = Source(driver: "uhppote", dedupKey: "423187757:12345", deviceTime: "2026-11-24 21:15:07")
        events.append(denied)
        var dropped = minimalEvent(kind: .accessGranted, now: t0, type: .accessTerminal)
        dropped.subject = Subject(type: .qr, value: nil, treatment: .dropped)
        dropped.priority = .alarm  // a source may override the kind's default
        events.append(dropped)
        // An alarm's start and its stop (docs/specs/0003-camera-alarms.md).
        var start = minimalEvent(kind: .cameraIntrusion, now: t0, type: .camera)
        start.point = "1"
        start.state = .start
        start.alarm = AlarmRef(id: "0123456789abcdef", incident: "0123456789abcdef", initial: true)
        events.append(start)
        var stop = minimalEvent(kind: .cameraIntrusion, now: t0.adding(seconds: 12), type: .camera)
        stop.point = "1"
        stop.state = .stop
        stop.alarm = AlarmRef(id: "0123456789abcdef", incident: "fedcba9876543210", startedAt: t0, stopReason: .quiet)
        events.append(stop)
        var nobody = minimalEvent(kind: .doorExitRequest, now: t0)
        nobody.subject = Subject(type: .none, value: nil)
        events.append(nobody)
        // Edge times: the epoch, before it, and the last millisecond the format can hold.
        events.append(minimalEvent(kind: .deviceRebooted, now: Timestamp(milliseconds: 0)))
        var past = minimalEvent(kind: .deviceLogGap, now: t0)
        past.occurredAt = Timestamp(milliseconds: -1)
        events.append(past)
        events.append(minimalEvent(kind: .deviceOffline, now: Timestamp(milliseconds: 253_402_300_799_999)))
        return events
    }

    // MARK: helpers

    static let repoRoot = repositoryRoot

    static func schema() throws -> [String: Any] {
        try jsonObject(Data(contentsOf: repoRoot.appending(path: "docs/event.schema.json")))
    }

    static func jsonObject(_ data: Data) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// The schema of a property, following nested `properties` along `path`.
    static func property(_ schema: [String: Any], _ path: String...) throws -> [String: Any] {
        var current = schema
        for name in path {
            let properties = try #require(current["properties"] as? [String: Any], "no properties above \(name)")
            current = try #require(properties[name] as? [String: Any], "no property \(name)")
        }
        return current
    }

    static func enumValues(_ schema: [String: Any], _ path: String...) throws -> Set<String> {
        var current = schema
        for name in path {
            current = try property(current, name)
        }
        let values = try #require(current["enum"] as? [String], "\(path) has no enum")
        #expect(Set(values).count == values.count, "\(path) enum has duplicates")
        return Set(values)
    }

    /// Stored property names of a value, and those that are not optional.
    static func storedProperties(_ value: Any) -> (all: Set<String>, required: Set<String>) {
        var all = Set<String>()
        var required = Set<String>()
        for child in Mirror(reflecting: value).children {
            guard let label = child.label else { continue }
            all.insert(label)
            if Mirror(reflecting: child.value).displayStyle != .optional { required.insert(label) }
        }
        return (all, required)
    }

    /// Checks an encoded object against the closed objects of the schema, recursively.
    static func checkKeys(_ object: [String: Any], against schema: [String: Any], path: String) {
        guard let properties = schema["properties"] as? [String: Any] else { return }
        for required in schema["required"] as? [String] ?? [] {
            #expect(object[required] != nil, "\(path): required key \(required) missing")
        }
        for (key, value) in object {
            guard let propertySchema = properties[key] as? [String: Any] else {
                Issue.record("\(path): key \(key) is not in the schema")
                continue
            }
            #expect(!(value is NSNull), "\(path).\(key) is null")
            if let nested = value as? [String: Any] {
                checkKeys(nested, against: propertySchema, path: "\(path).\(key)")
            }
        }
    }

    static func jsonBlocks(in file: URL) throws -> [String] {
        let text = try String(contentsOf: file, encoding: .utf8)
        var blocks: [String] = []
        var current: [Substring]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line.trimmingCharacters(in: .whitespaces) == "```json" {
                current = []
            } else if current != nil, line.trimmingCharacters(in: .whitespaces) == "```" {
                blocks.append(current!.joined(separator: "\n"))
                current = nil
            } else {
                current?.append(line)
            }
        }
        return blocks
    }

    static func pythonHasJSONSchema() async -> Bool {
        (try? await ChildProcess.run("/usr/bin/env", ["python3", "-c", "import jsonschema"]).status) == 0
    }

    /// Validates each instance with python3's jsonschema (draft 2020-12, with format checks);
    /// returns each instance's error messages.
    static func validate(_ instances: [Any]) async throws -> [[String]] {
        let file = FileManager.default.temporaryDirectory.appending(path: "gatehouse-schema-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: instances).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let script = """
            import json, sys
            from jsonschema import Draft202012Validator
            schema = json.load(open(sys.argv[1], encoding="utf-8"))
            Draft202012Validator.check_schema(schema)
            validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
            instances = json.load(open(sys.argv[2], encoding="utf-8"))
            print(json.dumps([[e.message for e in validator.iter_errors(i)] for i in instances]))
            """
        let schemaPath = repoRoot.appending(path: "docs/event.schema.json").path
        let result = try await ChildProcess.run("/usr/bin/env", ["python3", "-c", script, schemaPath, file.path])
        try #require(result.status == 0, "python3 failed: \(result.stderr)")
        return try #require(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String]])
    }
}
