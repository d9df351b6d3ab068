import GatehouseCore

/// A test on a payload field, a device option or the mapped result, for `when:` clauses.
public struct Condition: Sendable, Equatable {
    /// What the condition reads.
    public enum Subject: Sendable, Equatable {
        case path(FieldPath)
        case option(String)
        /// A field of the first mapped event: `kind` or `result`.
        case event(String)
        /// Whether mapping failed (`error: true` picks the reply for quarantined payloads).
        case error
    }

    public var subject: Subject
    /// Any of these values (compared as text); nil tests presence only.
    public var equals: [String]?
    public var exists: Bool = true

    func holds(_ context: MappingContext, first event: MappedEvent?, failed: Bool) -> Bool {
        let value: String?
        switch subject {
        case .path(let path): value = context.text(path)
        case .option(let name): value = context.device?.options[name]
        case .event(let field):
            switch field {
            case "kind": value = event?.kind.rawValue
            case "result": value = event?.result?.rawValue
            default: value = nil
            }
        case .error: value = failed ? "true" : "false"
        }
        if let equals { return value.map(equals.contains) ?? false }
        return (value != nil && value != "") == exists
    }
}
