import GatehouseCore

/// A path into a document: `AlarmInfoPlate.result.PlateResult.license`, `Events[0].Code`.
///
/// A key applied to an array reads its first element, because XML gives an object for one
/// element and an array for two: `pictureInfoList.pictureInfo.fileName` works either way.
/// Paths starting with `$` read the context instead: `$root.x` (the whole document while
/// mapping one item of `each`), `$device.id|serial|zone`, `$option.NAME`, `$header.NAME`,
/// `$images.count|bytes`.
public struct FieldPath: Sendable, Equatable, CustomStringConvertible {
    /// One step of a path.
    public enum Step: Sendable, Equatable {
        case key(String)
        case index(Int)
    }

    public var text: String
    public var steps: [Step]

    public var description: String { text }

    /// Nil when the text is not a path (empty segments, unclosed brackets, bad indices).
    public init?(_ text: String) {
        self.text = text
        var steps: [Step] = []
        for segment in text.split(separator: ".", omittingEmptySubsequences: false) {
            var rest = Substring(segment)
            let keyPart = rest.prefix { $0 != "[" }
            rest = rest.dropFirst(keyPart.count)
            if !keyPart.isEmpty { steps.append(.key(String(keyPart))) }
            while !rest.isEmpty {
                guard rest.first == "[", let close = rest.firstIndex(of: "]"),
                    let index = Int(rest[rest.index(after: rest.startIndex)..<close]), index >= 0
                else { return nil }
                steps.append(.index(index))
                rest = rest[rest.index(after: close)...]
            }
            if keyPart.isEmpty && segment.isEmpty { return nil }
        }
        guard !steps.isEmpty else { return nil }
        self.steps = steps
    }

    /// The value at this path, or nil when any step is missing.
    public func resolve(in value: JSONValue) -> JSONValue? {
        var current = value
        for step in steps {
            switch (step, current) {
            case (.key(let key), .object(let object)):
                guard let next = object[key] else { return nil }
                current = next
            case (.key(let key), .array(let items)):
                guard case .object(let object)? = items.first, let next = object[key] else { return nil }
                current = next
            case (.index(let index), .array(let items)):
                guard index < items.count else { return nil }
                current = items[index]
            case (.index(0), _):
                continue  // a single element stands for a list of one
            default:
                return nil
            }
        }
        return current
    }
}

extension JSONValue {
    /// The value as text for mapping: numbers without a needless fraction, nil for null;
    /// objects and arrays as compact JSON.
    public var mappingText: String? {
        switch self {
        case .null: return nil
        case .string(let text): return text
        case .bool(let value): return value ? "true" : "false"
        case .number, .exactNumber: return numberText
        case .array, .object: return jsonText
        }
    }
}
