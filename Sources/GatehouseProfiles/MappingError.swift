/// Why a payload could not be mapped by a profile: the text is the quarantine reason and
/// names the field, the value and what would be valid.
public struct MappingError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
