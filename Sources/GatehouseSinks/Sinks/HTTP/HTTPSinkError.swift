/// Why an HTTP sink could not be built from its configuration, naming the offending file or value.
public struct HTTPSinkError: Error, Sendable, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = description }
}
