import Foundation

/// Any JSON value, for vendor attributes that are kept as they came.
public enum JSONValue: Codable, Sendable, Equatable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    /// A number a double cannot hold exactly (an id above 2^53, more significant digits than a
    /// double keeps, a magnitude beyond its range), kept as the text the sender wrote so that it
    /// is stored, keyed and written back exactly as sent.
    case exactNumber(String)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            // Whole numbers are written without a fraction so that ids and codes stay readable.
            if value.rounded() == value, abs(value) < 1e15 {
                try container.encode(Int64(value))
            } else {
                try container.encode(value)
            }
        case .exactNumber(let text):
            // Foundation's encoder cannot write number text verbatim; `EventCoding` writes the
            // queue's bytes with `jsonText`, which does. Decimal keeps 38 digits, text the rest.
            if let decimal = Decimal(string: text), decimal.description == text { try container.encode(decimal) } else { try container.encode(text) }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

extension JSONValue {
    /// A number as JSON text: whole numbers without a fraction (ids and codes stay readable),
    /// exact numbers as sent; nil for every other kind.
    public var numberText: String? {
        switch self {
        case .number(let n) where n.rounded() == n && abs(n) < 1e15: String(Int64(n))
        case .number(let n): n.isFinite ? "\(n)" : nil
        case .exactNumber(let text): text
        default: nil
        }
    }

    /// Whether this is a number beyond the range of a double (e.g. `1e400`): kept as sent in
    /// attributes, but refused where it would become a key or a reply, which cannot hold it
    /// as a number the device and the centre agree on.
    public var isBeyondDoubleRange: Bool {
        if case .exactNumber(let text) = self { return !(Double(text)?.isFinite ?? false) }
        if case .number(let n) = self { return !n.isFinite }
        return false
    }

    /// The text of a string value; nil for every other kind (a number is not silently a string).
    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }
}
