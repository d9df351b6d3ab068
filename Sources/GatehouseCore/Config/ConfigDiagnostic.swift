/// One problem in a config file: where it is, which key, what is wrong and what would be valid.
public struct ConfigDiagnostic: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    /// Dotted path of the key, e.g. `devices[2].time_zone`.
    public var key: String
    public var message: String

    public init(file: String, line: Int, column: Int, key: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        self.message = message
    }

    public var description: String { "\(file):\(line):\(column): \(key.isEmpty ? "(top level)" : key): \(message)" }
}

/// Every problem found in a config file; start-up and `check-config` print them all at once.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [ConfigDiagnostic]
    /// The config as far as it could be read, when every device entry was: enough for the
    /// drivers' checks to add their problems to these.
    public var partial: GatehouseConfig?

    public init(_ diagnostics: [ConfigDiagnostic]) { self.diagnostics = diagnostics }

    public var description: String {
        let count = diagnostics.count
        return "\(count) configuration error\(count == 1 ? "" : "s"):\n"
            + diagnostics.map { "  \($0)" }.joined(separator: "\n")
    }
}
