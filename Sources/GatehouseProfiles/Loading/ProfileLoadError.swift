import GatehouseCore

/// Why a profile did not load: every problem with its file, line and key.
public struct ProfileLoadError: Error, Sendable, CustomStringConvertible {
    public var profile: String
    public var diagnostics: [ConfigDiagnostic]

    public init(profile: String, diagnostics: [ConfigDiagnostic]) {
        self.profile = profile
        self.diagnostics = diagnostics
    }

    public var description: String {
        "profile \(profile) did not load (\(diagnostics.count) error\(diagnostics.count == 1 ? "" : "s")):\n"
            + diagnostics.map { "  \($0)" }.joined(separator: "\n")
    }
}
