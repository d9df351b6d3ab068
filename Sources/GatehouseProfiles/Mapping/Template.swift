import GatehouseCore

/// Text with `${path}` placeholders (`${path|fallback}` when the field may be missing).
///
/// `${…}` rather than `{…}` so that JSON reply bodies can be written as they are.
public struct Template: Sendable, Equatable {
    /// A literal run or a placeholder.
    enum Piece: Sendable, Equatable {
        case literal(String)
        case field(FieldPath, fallback: String?)
    }

    let pieces: [Piece]
    public let source: String

    /// Nil with the reason when a placeholder is not a path or not closed.
    public static func parse(_ text: String) -> Result<Template, MappingError> {
        var pieces: [Piece] = []
        var rest = Substring(text)
        while let open = rest.range(of: "${") {
            if open.lowerBound > rest.startIndex { pieces.append(.literal(String(rest[..<open.lowerBound]))) }
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                return .failure(MappingError("unclosed placeholder in template '\(text)' (expected ${path})"))
            }
            let inner = rest[open.upperBound..<close]
            let parts = inner.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
            guard let path = FieldPath(String(parts[0]).trimmingCharacters(in: .whitespaces)) else {
                return .failure(MappingError("'\(inner)' in template '\(text)' is not a field path (expected e.g. ${Event.id})"))
            }
            pieces.append(.field(path, fallback: parts.count > 1 ? String(parts[1]) : nil))
            rest = rest[rest.index(after: close)...]
        }
        if !rest.isEmpty { pieces.append(.literal(String(rest))) }
        return .success(Template(pieces: pieces, source: text))
    }

    /// The fields the placeholders read.
    var fieldPaths: [FieldPath] {
        pieces.compactMap { if case .field(let path, _) = $0 { path } else { nil } }
    }

    /// The text with placeholders filled; nil when a field without fallback is missing.
    /// `escape` is applied to substituted values only (JSON string escaping for JSON replies).
    func render(_ context: MappingContext, escape: (String) -> String = { $0 }) -> String? {
        var out = ""
        for piece in pieces {
            switch piece {
            case .literal(let text): out += text
            case .field(let path, let fallback):
                if let value = context.text(path), !value.isEmpty {
                    out += escape(value)
                } else if let fallback {
                    out += fallback
                } else {
                    return nil
                }
            }
        }
        return out
    }

    /// Renders with every missing field replaced by its fallback or nothing; for replies,
    /// which must go out even when the payload could not be read.
    func renderLenient(_ context: MappingContext, escape: (String) -> String) -> String {
        var out = ""
        for piece in pieces {
            switch piece {
            case .literal(let text): out += text
            case .field(let path, let fallback):
                // A number beyond the double range is left out like a missing field (see `Profile.refuseBeyondRange`).
                if context.value(path)?.isBeyondDoubleRange != true, let value = context.text(path), !value.isEmpty {
                    out += escape(value)
                } else {
                    out += fallback ?? ""
                }
            }
        }
        return out
    }
}
