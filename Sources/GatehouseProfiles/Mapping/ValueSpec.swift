import GatehouseCore

/// How one output field gets its value: from a path (or the first present of several), a
/// constant or a template; then transforms, a lookup table and a default.
public struct ValueSpec: Sendable, Equatable {
    /// Where the value comes from.
    public enum Source: Sendable, Equatable {
        case paths([FieldPath])
        case constant(String)
        case template(Template)
    }

    public var source: Source
    public var transforms: [Transform] = []
    /// A table name from the profile's `tables:`.
    public var lookup: String?
    public var defaultValue: String?

    public init(source: Source) { self.source = source }

    /// The value; nil when absent and without default. A value the lookup table does not
    /// know falls back to the table's `default` entry, then to this spec's default.
    func evaluate(_ context: MappingContext, tables: [String: LookupTable]) -> String? {
        var value: String?
        switch source {
        case .paths(let paths):
            value = paths.lazy.compactMap { context.text($0) }.first { !$0.isEmpty }
        case .constant(let text): value = text
        case .template(let template): value = template.render(context)
        }
        for transform in transforms {
            value = value.flatMap(transform.apply)
        }
        if let name = lookup, let table = tables[name] {
            value = value.flatMap { table.entries[$0] ?? table.entries[$0.lowercased()] } ?? table.fallback
        }
        return value ?? defaultValue
    }

    /// The fields this value reads.
    var fieldPaths: [FieldPath] {
        switch source {
        case .paths(let paths): paths
        case .constant: []
        case .template(let template): template.fieldPaths
        }
    }

    /// The raw value before transforms and lookup, for error messages.
    func raw(_ context: MappingContext) -> String? {
        if case .paths(let paths) = source { return paths.lazy.compactMap { context.text($0) }.first }
        return nil
    }
}

/// A profile's table of vendor codes: `{"1": blue, "2": yellow, default: unknown}`.
public struct LookupTable: Sendable, Equatable {
    public var entries: [String: String]
    /// Used for codes the table does not list; nil leaves the value absent.
    public var fallback: String?
}
