#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file-system failure of the file sink, naming the operation, the file and the system's reason.
struct FileSinkError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }

    /// From the current `errno`, e.g. "write /var/lib/gatehouse/outbox/events.ndjson: No space left on device".
    static func posix(_ operation: String, _ path: String) -> FileSinkError {
        FileSinkError("\(operation) \(path): \(String(cString: strerror(errno)))")
    }
}
