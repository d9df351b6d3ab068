#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin  // builds there; the /proc figures exist only on Linux
#endif

/// Reads the few Linux `/proc` figures the benchmarks report: resident memory, CPU time and bytes written.
enum ProcFS {
    /// `VmRSS` from `/proc/<pid>/status`, in bytes. `pid` is a number or `self`.
    static func residentBytes(pid: String) throws -> Int64 {
        try field("VmRSS", in: "/proc/\(pid)/status") * 1024  // the file says kB
    }

    /// `write_bytes` from `/proc/<pid>/io`: bytes this process caused to be sent to storage.
    static func writeBytes(pid: String) throws -> Int64 {
        try field("write_bytes", in: "/proc/\(pid)/io")
    }

    /// User plus system CPU time the process has used, in seconds (`utime` + `stime` of `/proc/<pid>/stat`).
    static func cpuSeconds(pid: String) throws -> Double {
        let text = try readFile("/proc/\(pid)/stat")
        // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
        guard let close = text.lastIndex(of: ")") else { throw BenchError("unreadable /proc/\(pid)/stat") }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state), so utime (14) and stime (15) are fields[11] and fields[12].
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else {
            throw BenchError("no utime/stime in /proc/\(pid)/stat")
        }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The first number after `name:` in a `key: value` file.
    private static func field(_ name: String, in path: String) throws -> Int64 {
        let text = try readFile(path)
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            let number = line.dropFirst(name.count + 1).drop(while: { $0 == " " || $0 == "\t" }).prefix(while: \.isNumber)
            if let value = Int64(number) { return value }
        }
        throw BenchError("no '\(name)' in \(path)")
    }

    /// Reads with plain `read(2)`: `/proc` files report size 0, which defeats size-based readers.
    private static func readFile(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw BenchError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw BenchError("cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
