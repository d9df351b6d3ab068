import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A loopback port for a test server that is handed its port rather than binding port 0
/// (mosquitto, nats-server, the UHPPOTE listener a controller is told to push to).
public enum LoopbackPort {
    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    /// A TCP (`SOCK_STREAM`) or UDP (`SOCK_DGRAM`) port nothing uses now: bound to 0, read back, released.
    public static func free(_ type: Int32 = Int32(SOCK_STREAM.rawValue)) throws -> Int {
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { throw Unavailable(description: "no socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw Unavailable(description: "no free port on 127.0.0.1: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// A raw TCP connection to `port` on 127.0.0.1, for tests that must control every byte
    /// (slow bodies, `Expect: 100-continue`, chunked bodies); the caller closes it.
    public static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Unavailable(description: "no socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw Unavailable(description: "cannot connect to 127.0.0.1:\(port): errno \(errno)")
        }
        return fd
    }
}
