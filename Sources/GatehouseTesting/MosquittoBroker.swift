import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A real Eclipse Mosquitto broker (Debian's `mosquitto`) on 127.0.0.1, owned by one test:
/// started on a free port with its own persistence directory, stopped or killed and started
/// again on the same port to test reconnects. `scripts/test` installs the package.
public final class MosquittoBroker: Sendable {
    public static let binary = "/usr/sbin/mosquitto"
    public static var available: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    /// The plain listener (test publishers and subscribers use it).
    public let port: Int
    /// The TLS listener, when `tls` was given.
    public let tlsPort: Int?
    public let directory: String
    private let process = Mutex<pid_t?>(nil)
    /// Name → password; written to the password file by the first `start()`.
    private let users: [String: String]

    /// A second listener, over TLS, with the broker's certificate and the CA it trusts for client certificates.
    public struct TLS: Sendable {
        public var caFile: String
        public var certFile: String
        public var keyFile: String
        /// Refuse clients without a certificate signed by `caFile`.
        public var requireClientCertificate: Bool

        public init(caFile: String, certFile: String, keyFile: String, requireClientCertificate: Bool = false) {
            self.caFile = caFile
            self.certFile = certFile
            self.keyFile = keyFile
            self.requireClientCertificate = requireClientCertificate
        }

        /// The server side of `certificates`.
        public init(_ certificates: TestCertificates, requireClientCertificate: Bool = false) {
            self.init(
                caFile: certificates.ca, certFile: certificates.serverCert, keyFile: certificates.serverKey,
                requireClientCertificate: requireClientCertificate)
        }
    }

    /// `users` (name → password) switches anonymous access off (on both listeners); `tls` adds a
    /// TLS listener on `tlsPort` beside the plain one.
    public init(users: [String: String] = [:], tls: TLS? = nil) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-mosquitto-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        port = try LoopbackPort.free()
        tlsPort = try tls.map { _ in try LoopbackPort.free() }
        var lines = [
            // Kept as root when run as root (CI): the broker must read and write its temporary directory.
            "user root", "listener \(port) 127.0.0.1", "persistence true", "persistence_location \(directory)/",
            "log_dest file \(directory)/mosquitto.log", "log_type all", "allow_anonymous \(users.isEmpty)",
            "max_queued_messages 1000000",
        ]
        self.users = users
        if !users.isEmpty { lines.append("password_file \(directory)/passwords") }
        if let tls, let tlsPort {
            // Last: the settings after a `listener` line belong to that listener.
            lines += [
                "listener \(tlsPort) 127.0.0.1", "cafile \(tls.caFile)", "certfile \(tls.certFile)", "keyfile \(tls.keyFile)",
                "require_certificate \(tls.requireClientCertificate)",
            ]
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: "\(directory)/mosquitto.conf", atomically: true, encoding: .utf8)
    }

    /// Starts the broker and waits (bounded) until it accepts connections.
    public func start() async throws {
        if !users.isEmpty, !FileManager.default.fileExists(atPath: "\(directory)/passwords") {
            for (index, (user, password)) in users.sorted(by: { $0.key < $1.key }).enumerated() {
                let made = try await ChildProcess.run(
                    "/usr/bin/mosquitto_passwd", (index == 0 ? ["-c"] : []) + ["-b", "\(directory)/passwords", user, password])
                guard made.status == 0 else { throw BrokerError(message: "mosquitto_passwd failed: \(made)") }
            }
        }
        let pid = try Self.spawn(Self.binary, ["-c", "\(directory)/mosquitto.conf"])
        process.withLock { $0 = pid }
        let ports = [port] + (tlsPort.map { [$0] } ?? [])
        guard await eventually(timeout: .seconds(20), { ports.allSatisfy { Self.accepts(port: $0) } }) else {
            throw BrokerError(message: "mosquitto did not accept connections on \(ports); log: \(log)")
        }
    }

    /// Stops the broker: SIGTERM (it saves its sessions) or SIGKILL (a crash).
    public func stop(kill: Bool = false) {
        guard let pid = process.withLock({ p -> pid_t? in defer { p = nil }; return p }) else { return }
        end(pid: pid, signal: kill ? SIGKILL : SIGTERM)
    }

    /// posix_spawn with an empty signal mask and stdout/stderr to /dev/null. Not Foundation's
    /// `Process`: its child inherits the spawning thread's mask, and a test process may have SIGTERM
    /// blocked (signal handling of the daemon's services), so mosquitto never saw a SIGTERM, was
    /// killed after the grace period and lost the sessions it would have saved.
    static func spawn(_ path: String, _ arguments: [String]) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var files = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&files)
        defer { posix_spawn_file_actions_destroy(&files) }
        posix_spawn_file_actions_addopen(&files, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&files, 2, "/dev/null", O_WRONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &files, &attributes, argv, environ)
        guard rc == 0 else { throw BrokerError(message: "cannot start \(path): \(String(cString: strerror(rc)))") }
        return pid
    }

    public var log: String { (try? String(contentsOfFile: "\(directory)/mosquitto.log", encoding: .utf8)) ?? "" }

    deinit {
        stop(kill: true)
        try? FileManager.default.removeItem(atPath: directory)
    }

    struct BrokerError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// Sends `signal` and waits (bounded) until the child is gone, then SIGKILL if it is not.
/// Not `Process.waitUntilExit`: on Linux it was seen waiting forever for a child that had exited.
func end(_ process: Process, signal: Int32) {
    end(pid: process.processIdentifier, signal: signal)
}

/// Sends `signal` to `pid` and waits (bounded) until it is gone, then SIGKILL if it is not.
func end(pid: pid_t, signal: Int32) {
    kill(pid, signal)
    for _ in 0..<1000 {
        // 0: still running; pid: reaped here; -1 (ECHILD): Foundation reaped it already.
        if waitpid(pid, nil, WNOHANG) != 0 { return }
        usleep(10_000)
    }
    kill(pid, SIGKILL)
    _ = waitpid(pid, nil, 0)
}

/// `mosquitto_sub` as a test's consumer: a persistent QoS 1 session on `topic`, each message
/// written as `topic|user properties|payload`, one per line.
public final class MosquittoSubscriber: Sendable {
    private let process = Mutex<Process?>(nil)
    private let output: String
    private let arguments: [String]

    public init(port: Int, topic: String = "gatehouse/#", clientID: String = "gatehouse-test-consumer") {
        output = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-sub-\(UUID().uuidString).txt").path
        arguments = [
            "-h", "127.0.0.1", "-p", "\(port)", "-V", "mqttv5", "-q", "1", "-c", "-i", clientID, "-t", topic,
            "-F", "%t|%P|%p\\n",
        ]
    }

    /// Starts (or restarts) the consumer; its session (and what the broker kept for it) continues.
    public func start() throws {
        let sub = Process()
        sub.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_sub")
        sub.arguments = arguments
        if !FileManager.default.fileExists(atPath: output) { FileManager.default.createFile(atPath: output, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        handle.seekToEndOfFile()
        sub.standardOutput = handle
        sub.standardError = FileHandle.nullDevice
        try sub.run()
        process.withLock { $0 = sub }
    }

    public func stop() {
        guard let sub = process.withLock({ p -> Process? in defer { p = nil }; return p }) else { return }
        // SIGKILL: a consumer's clean goodbye is not under test.
        end(sub, signal: SIGKILL)
    }

    /// Every message received so far: (topic, user properties, payload).
    public var messages: [(topic: String, properties: String, payload: String)] {
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { return nil }
            return (String(parts[0]), String(parts[1]), String(parts[2]))
        }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: output)
    }
}
