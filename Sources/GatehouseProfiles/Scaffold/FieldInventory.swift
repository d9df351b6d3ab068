import Foundation
import GatehouseCore

/// One captured payload, as kept in quarantine, for `gatehouse adapters scaffold`.
public struct CapturedPayload: Sendable {
    public var body: [UInt8]
    public var contentType: String?
    public var route: String?
    public var receivedAt: String?
    public var quarantineID: Int64?

    public init(body: [UInt8], contentType: String?, route: String? = nil, receivedAt: String? = nil, quarantineID: Int64? = nil) {
        self.body = body
        self.contentType = contentType
        self.route = route
        self.receivedAt = receivedAt
        self.quarantineID = quarantineID
    }
}

/// What a field of an undocumented payload probably is. Only ever a guess for a person to check.
public enum FieldRole: String, Sendable, Equatable, CaseIterable {
    case plate
    case time
    case lane
    case direction
    case recordID = "record-id"
    case deviceSerial = "device-serial"
}

/// A field path seen in the captured payloads, the values it had, and a guess at its role.
public struct InventoryField: Sendable, Equatable {
    public var path: String
    /// Up to `FieldInventory.valuesKept` distinct values, in the order first seen.
    public var values: [String] = []
    public var distinctCount = 0
    /// In how many payloads the field was present.
    public var presentIn = 0
    public var role: FieldRole?
    /// For `.time`: the profile time format the values look like (rfc3339, local, epoch-seconds, epoch-millis).
    public var timeFormat: String?
    /// Why the guess was made, for the README and the `# GUESS:` comment.
    public var why: String?
}

/// The fields of a set of captured payloads and the guesses made from them.
public struct FieldInventory: Sendable {
    public static let valuesKept = 5

    public var fields: [InventoryField]
    /// The body format the payloads decoded as (the most common one).
    public var format: BodySpec.Format
    public var charset: TextDecoding.Charset
    /// Payloads that did not decode, with the reason, by index.
    public var failures: [Int: String]
    public var payloadCount: Int
    /// Every distinct value seen per path (`values` keeps only a few), for redaction.
    public var distinctValues: [String: Set<String>] = [:]

    /// The first field guessed to have `role`, if any.
    public func first(_ role: FieldRole) -> InventoryField? { fields.first { $0.role == role } }

    public static func build(_ payloads: [CapturedPayload]) -> FieldInventory {
        var order: [String] = []
        var seen: [String: (values: [String], distinct: Set<String>, present: Int)] = [:]
        var formats: [BodySpec.Format: Int] = [:]
        var charset = TextDecoding.Charset.utf8
        var failures: [Int: String] = [:]
        for (index, payload) in payloads.enumerated() {
            guard let (document, used) = decode(payload) else {
                failures[index] = decodeFailure(payload)
                continue
            }
            if used != .utf8 { charset = used }
            formats[document.format, default: 0] += 1
            var leaves: [(String, String)] = []
            flatten(document.root, path: "", into: &leaves)
            var inThis = Set<String>()
            for (path, value) in leaves {
                if seen[path] == nil {
                    order.append(path)
                    seen[path] = ([], [], 0)
                }
                if inThis.insert(path).inserted { seen[path]?.present += 1 }
                if seen[path]?.distinct.insert(value).inserted == true, (seen[path]?.values.count ?? 0) < valuesKept {
                    seen[path]?.values.append(value)
                }
            }
        }
        let decoded = payloads.count - failures.count
        let fields = order.compactMap { path -> InventoryField? in
            guard let entry = seen[path] else { return nil }
            var field = InventoryField(path: path, values: entry.values, distinctCount: entry.distinct.count, presentIn: entry.present)
            FieldGuesser.guess(&field, allValues: entry.distinct, payloads: decoded)
            return field
        }
        let format = formats.max { $0.value < $1.value || ($0.value == $1.value && $0.key.rawValue > $1.key.rawValue) }?.key ?? .json
        return FieldInventory(
            fields: fields, format: format, charset: charset, failures: failures, payloadCount: payloads.count,
            distinctValues: seen.mapValues(\.distinct))
    }

    static func decode(_ payload: CapturedPayload) -> (PayloadDocument, TextDecoding.Charset)? {
        for charset in [TextDecoding.Charset.utf8, .gb18030] {
            var spec = BodySpec()
            spec.charset = charset
            spec.trustDeclaredCharset = charset == .utf8
            if let document = try? BodyDecoder.decode(payload.body, contentType: payload.contentType, spec: spec) { return (document, charset) }
        }
        return nil
    }

    static func decodeFailure(_ payload: CapturedPayload) -> String {
        do {
            _ = try BodyDecoder.decode(payload.body, contentType: payload.contentType, spec: BodySpec())
            return "did not decode"
        } catch {
            return error.reason
        }
    }

    /// Leaf values by path, in the engine's path syntax (`a.b[0].c`, XML attributes `@x`).
    static func flatten(_ value: JSONValue, path: String, into leaves: inout [(String, String)], depth: Int = 0) {
        guard depth < 32 else { return }
        switch value {
        case .object(let object):
            for key in object.keys.sorted() {
                guard let child = object[key] else { continue }
                flatten(child, path: path.isEmpty ? key : "\(path).\(key)", into: &leaves, depth: depth + 1)
            }
        case .array(let list):
            // The first element stands for the list: records are read as `list[0].field`.
            if let first = list.first { flatten(first, path: "\(path)[0]", into: &leaves, depth: depth + 1) }
        case .null:
            leaves.append((path, "null"))
        default:
            leaves.append((path, value.mappingText ?? ""))
        }
    }
}
