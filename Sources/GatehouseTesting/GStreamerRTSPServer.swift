import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A real RTSP server owned by one test: Debian's GStreamer RTSP server through
/// `scripts/rtsp-test-server.py`, serving a test pattern at `url` on a free loopback port, behind
/// Digest when given a user. Stopped and started again on the same port to test liveness.
/// `scripts/test` installs the packages.
public final class GStreamerRTSPServer: Sendable {
    public static let python = "/usr/bin/python3"
    /// Whether Debian's python3 can load the GStreamer RTSP server bindings.
    public static var available: Bool {
        let check = Process()
        check.executableURL = URL(fileURLWithPath: python)
        check.arguments = ["-c", "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"]
        check.standardOutput = FileHandle.nullDevice
        check.standardError = FileHandle.nullDevice
        guard (try? check.run()) != nil else { return false }
        check.waitUntilExit()
        return check.terminationStatus == 0
    }

    public let port: Int
    public var url: String { "rtsp://127.0.0.1:\(port)/test" }
    private let arguments: [String]
    private let process = Mutex<pid_t?>(nil)

    /// `script` is scripts/rtsp-test-server.py of the repository under test.
    public init(
        script: String = repositoryRoot.appendingPathComponent("scripts/rtsp-test-server.py").path, username: String? = nil, password: String? = nil
    ) throws {
        port = try LoopbackPort.free()
        var arguments = [script, "\(port)"]
        if let username, let password { arguments += [username, password] }
        self.arguments = arguments
    }

    /// Starts the server and waits (bounded) until it accepts connections.
    public func start() async throws {
        let pid = try MosquittoBroker.spawn(Self.python, arguments)
        process.withLock { $0 = pid }
        let port = port
        guard await eventually(timeout: .seconds(30), { MosquittoBroker.accepts(port: port) }) else {
            stop()
            throw MosquittoBroker.BrokerError(message: "the GStreamer RTSP server did not accept connections on \(port)")
        }
    }

    /// Stops the server (SIGKILL: a camera losing power says no goodbye).
    public func stop() {
        guard let pid = process.withLock({ p -> pid_t? in defer { p = nil }; return p }) else { return }
        end(pid: pid, signal: SIGKILL)
    }

    deinit { stop() }
}
