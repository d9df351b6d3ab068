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

    /// A TCP (`SOCK_STREAM`) or UDP (`SOCK_DGRAM`) port nothing uses now, released for its server.
    ///
    /// Picked below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`, 32768–60999 by
    /// default) when there is room: a port from that range, released, can become the source port
    /// of any outgoing connection before its server binds it, and mosquitto once failed to start
    /// with "Address already in use" beside a loaded suite. Otherwise the kernel's pick of port 0.
    public static func free(_ type: Int32 = Int32(SOCK_STREAM.rawValue)) throws -> Int {
        let low = ephemeralLow()
        if low > 12_000 {
            for _ in 0..<200 {
                let candidate = Int.random(in: 10_000..<low)
                if try bind(candidate, type) == candidate { return candidate }
            }
        }
        guard let port = try bind(0, type) else { throw Unavailable(description: "no free port on 127.0.0.1: errno \(errno)") }
        return port
    }

    /// The first port of the ephemeral range; 0 when it cannot be read.
    static func ephemeralLow() -> Int {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        return text.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 0
    }

    /// Binds `port` (0: any) on 127.0.0.1 and releases it; the port bound, nil when it was taken.
    private static func bind(_ port: Int, _ type: Int32) throws -> Int? {
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { throw Unavailable(description: "no socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
                Glibc.bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        return bound ? Int(UInt16(bigEndian: address.sin_port)) : nil
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
