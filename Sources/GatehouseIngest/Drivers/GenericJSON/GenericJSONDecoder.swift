import Foundation
import GatehouseCore

/// Reads the generic JSON ingest format: one event object or an array of them, written by
/// integrations that can produce the normalized event themselves (docs/ingest-api.md).
///
/// Validation is by hand over `JSONValue` rather than `Decodable` so that every error names
/// the field, the value and what would be valid, and unknown fields are refused, not ignored.
public enum GenericJSONDecoder {
    public static let maxEventsPerRequest = 1000
    static let fields: Set<String> = [
        "kind", "occurredAt", "point", "direction", "subject", "result", "priority", "attributes", "dedupKey",
    ]
    static let subjectFields: Set<String> = ["type", "value", "color"]

    public static func decode(_ body: [UInt8], zone: TimeZone) throws(PayloadError) -> [EventDraft] {
        guard String(validating: body, as: UTF8.self) != nil else {
            throw PayloadError("body is not valid UTF-8 (expected JSON in UTF-8)")
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(body)
        } catch {
            throw PayloadError("malformed JSON: \(error)")
        }
        switch value {
        case .object:
            return [try draft(value, path: "", zone: zone)]
        case .array(let items):
            guard !items.isEmpty else { throw PayloadError("empty array (expected at least one event)") }
            guard items.count <= maxEventsPerRequest else {
                throw PayloadError("\(items.count) events in one request (at most \(maxEventsPerRequest))")
            }
            return try items.enumerated().map { index, item throws(PayloadError) in try draft(item, path: "[\(index)]", zone: zone) }
        default:
            throw PayloadError("expected a JSON object or an array of objects")
        }
    }

    static func draft(_ value: JSONValue, path: String, zone: TimeZone) throws(PayloadError) -> EventDraft {
        guard case .object(let object) = value else { throw PayloadError("\(label(path)): expected an object") }
        if let unknown = object.keys.filter({ !fields.contains($0) }).sorted().first {
            throw PayloadError("\(label(path, unknown)): unknown field (valid fields: \(fields.sorted().joined(separator: ", ")))")
        }
        guard let kindText = try string(object["kind"], path, "kind") else {
            throw PayloadError("\(label(path, "kind")): missing (expected one of the event kinds, e.g. access.granted)")
        }
        guard let kind = EventKind(rawValue: kindText) else {
            throw PayloadError("\(label(path, "kind")): '\(kindText)' is not an event kind (see docs/event-schema.md)")
        }
        var draft = EventDraft(kind: kind)
        switch object["occurredAt"] {
        case nil, .null?:
            break
        case .string(let text)?:
            draft.deviceTime = text
            // A time without a zone is the device's wall clock, read in its configured zone.
            guard let time = DeviceTimeParser.parse(text, zone: zone) else {
                throw PayloadError("\(label(path, "occurredAt")): '\(text)' is not a time (expected RFC 3339 like 2026-11-24T08:00:00+08:00, or local time 2026-11-24 08:00:00, between 1970 and 2199)")
            }
            draft.occurredAt = time
        case let number? where number.numberText != nil:
            let text = number.compactText
            guard let seconds = Double(text), seconds.isFinite, let time = DeviceTimeParser.fromEpoch(seconds) else {
                throw PayloadError("\(label(path, "occurredAt")): \(text) is not a time between 1970 and 2199 (expected epoch seconds or milliseconds)")
            }
            draft.occurredAt = time
            draft.deviceTime = text
        default:
            throw PayloadError("\(label(path, "occurredAt")): expected a string or a number of seconds since 1970")
        }
        draft.point = try string(object["point"], path, "point")
        draft.direction = try choice(object["direction"], path, "direction")
        draft.result = try choice(object["result"], path, "result")
        draft.priority = try choice(object["priority"], path, "priority")
        draft.dedupKey = try string(object["dedupKey"], path, "dedupKey")
        if let key = draft.dedupKey, key.utf8.count > 200 {
            throw PayloadError("\(label(path, "dedupKey")): \(key.utf8.count) bytes is too long (at most 200)")
        }
        switch object["attributes"] {
        case nil, .null?: break
        case .object(let attributes)?: draft.attributes = attributes
        default: throw PayloadError("\(label(path, "attributes")): expected an object")
        }
        switch object["subject"] {
        case nil, .null?:
            break
        case .object(let subject)?:
            let subjectPath = path.isEmpty ? "subject" : "\(path).subject"
            if let unknown = subject.keys.filter({ !subjectFields.contains($0) }).sorted().first {
                throw PayloadError("\(label(subjectPath, unknown)): unknown field (valid fields: color, type, value)")
            }
            guard let type: SubjectType = try choice(subject["type"], subjectPath, "type") else {
                throw PayloadError("\(label(subjectPath, "type")): missing (expected one of \(SubjectType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            var value = try string(subject["value"], subjectPath, "value")
            if type == .plate { value = value.map(PlateNumber.normalize) }
            draft.subject = Subject(type: type, value: value, color: try string(subject["color"], subjectPath, "color"))
        default:
            throw PayloadError("\(label(path, "subject")): expected an object like {\"type\": \"card\", \"value\": \"123\"}")
        }
        return draft
    }

    static func string(_ value: JSONValue?, _ path: String, _ field: String) throws(PayloadError) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?: return text
        case let other?: throw PayloadError("\(label(path, field)): expected a string, found \(other.typeName)")
        }
    }

    static func choice<T: RawRepresentable & CaseIterable>(_ value: JSONValue?, _ path: String, _ field: String) throws(PayloadError) -> T?
    where T.RawValue == String {
        guard let text = try string(value, path, field) else { return nil }
        guard let parsed = T(rawValue: text) else {
            throw PayloadError("\(label(path, field)): '\(text)' is not valid (expected one of \(T.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return parsed
    }

    static func label(_ path: String, _ field: String? = nil) -> String {
        let full = [path, field].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ".")
        return "field '\(full.isEmpty ? "(root)" : full.replacingOccurrences(of: ".[", with: "["))'"
    }

}

extension JSONValue {
    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number, .exactNumber: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    var compactText: String {
        if let text = numberText { return text }
        if case .string(let s) = self { return s }
        return "\(self)"
    }
}
