import Foundation

/// A password, token or key read from config, a file or the environment; never printed.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let value: String
    /// Where it came from (`env GATEHOUSE_TOKEN`, `file /etc/…`, `inline`), safe to log.
    public let origin: String

    public init(value: String, origin: String) {
        self.value = value
        self.origin = origin
    }

    public var description: String { "<secret from \(origin)>" }
    public var debugDescription: String { description }
}
