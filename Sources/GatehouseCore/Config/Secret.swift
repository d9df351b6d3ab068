import Foundation

/// A password, token or key read from config, a file, the environment or a systemd credential; never printed.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let value: String
    /// Where it came from (`env GATEHOUSE_TOKEN`, `file /etc/…`, `credential NAME`, `inline`), safe to log.
    public let origin: String

    public init(value: String, origin: String) {
        self.value = value
        self.origin = origin
    }

    public var description: String { "<secret from \(origin)>" }
    public var debugDescription: String { description }
}
