import Foundation
import Synchronization

/// The built `gatehouse` binary run as a child process, as systemd would run it.
public final class DaemonProcess: Sendable {
    public let process: Process
    public let configPath: String
    private let output = Mutex("")

    /// `$GATEHOUSE_BIN`, or `.build/debug/gatehouse` in the nearest package above this file
    /// (the checkout this target was built from), so any test target finds the same binary.
    public static var binary: String {
        if let path = ProcessInfo.processInfo.environment["GATEHOUSE_BIN"] { return path }
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent(".build/debug/gatehouse").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        return "gatehouse"
    }

    /// Runs `gatehouse ARGS` to completion (killed after `timeout` seconds); returns exit status,
    /// stdout and stderr. Awaited, never blocking a thread the other tests need (ChildProcess).
    public static func runTool(
        _ arguments: [String], environment: [String: String] = [:], timeout: Double = 120
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        let output = try await ChildProcess.run(
            binary, arguments, environment: ProcessInfo.processInfo.environment.merging(environment) { _, new in new },
            timeout: .milliseconds(Int64(timeout * 1000)))
        return (output.status, output.stdout, output.stderr)
    }

    private init(process: Process, configPath: String) {
        self.process = process
        self.configPath = configPath
    }

    /// A test that failed before it stopped its daemon does not leave it running.
    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// Starts `gatehouse run --config PATH` and waits until both listeners report their ports.
    public static func start(configPath: String, environment: [String: String] = [:], timeout: Double = 90) async throws -> (DaemonProcess, ingest: Int, admin: Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["run", "--config", configPath]
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        let daemon = DaemonProcess(process: process, configPath: configPath)
        // Weak: the handler lives as long as the pipe, and must not keep the daemon (whose deinit
        // ends a forgotten process) alive.
        pipe.fileHandleForReading.readabilityHandler = { [weak daemon] handle in
            let data = handle.availableData
            guard let daemon, !data.isEmpty else {
                handle.readabilityHandler = nil
                return
            }
            daemon.output.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let ingest = daemon.port(of: "ingest"), let admin = daemon.port(of: "admin") {
                return (daemon, ingest, admin)
            }
            if !process.isRunning {
                throw DaemonError("daemon exited with \(process.terminationStatus) before listening:\n\(daemon.log)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        // The last poll may have come late (a loaded machine): look once more before giving up.
        if let ingest = daemon.port(of: "ingest"), let admin = daemon.port(of: "admin") { return (daemon, ingest, admin) }
        process.terminate()
        throw DaemonError("daemon did not report its listeners within \(timeout) s:\n\(daemon.log)")
    }

    public var log: String { output.withLock { $0 } }

    /// Polls the log until it contains `fragment` (bounded: a slow machine gets there later, not never).
    public func waitForLog(_ fragment: String, timeout: Double = 60) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !log.contains(fragment) {
            guard Date() < deadline, process.isRunning else { return log.contains(fragment) }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return true
    }

    public func port(of listener: String) -> Int? {
        let text = log
        guard let range = text.range(of: "\(listener) listener ready on ") else { return nil }
        let rest = text[range.upperBound...]
        guard let colon = rest.prefix(while: { $0 != "\n" && $0 != " " }).lastIndex(of: ":") else { return nil }
        return Int(rest[rest.index(after: colon)...].prefix(while: \.isNumber))
    }

    /// kill -9: no chance to flush or say goodbye. Returns once the process is gone.
    public func kill9() async {
        kill(process.processIdentifier, SIGKILL)
        _ = await ChildProcess.waitForExit(process, timeout: .seconds(60))
    }

    /// Sends `signal` and waits (bounded) for the exit status.
    public func stop(signal: Int32 = SIGTERM, timeout: Double = 90) async throws -> Int32 {
        kill(process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning {
            await kill9()
            throw DaemonError("daemon did not stop within \(timeout) s after signal \(signal):\n\(log)")
        }
        return process.terminationStatus
    }

    public func sendSignal(_ signal: Int32) { kill(process.processIdentifier, signal) }
}

public struct DaemonError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A scratch directory with a generated config for one test.
public struct TestSite: Sendable {
    public let directory: String
    public let receiverPort: Int
    public var devices = 4
    public var diskBudget = "64MiB"
    public var ingestPort = 0
    public var adminPort = 0
    public var statusInterval = "1"
    public var logLevel = "info"
    public var ingestExtra = ""
    public var sinkExtra = ""
    public var extra = ""
    /// More device entries, as YAML list items indented like the generated ones.
    public var extraDevices = ""

    public init(receiverPort: Int, name: String = #function) {
        self.receiverPort = receiverPort
        let safe = name.filter { $0.isLetter || $0.isNumber }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-e2e-\(safe)-\(UUID().uuidString.prefix(8))").path
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// A site in a scratch directory the test already made (e.g. one it reuses across restarts).
    public init(directory: String, receiverPort: Int) {
        self.directory = directory
        self.receiverPort = receiverPort
    }

    public static func token(_ index: Int) -> String { "token-\(index)" }
    public static func deviceID(_ index: Int) -> String { "dev-\(index)" }

    public var configPath: String { directory + "/gatehouse.yaml" }

    public func write() throws -> String {
        var devicesYAML = ""
        for i in 0..<devices {
            devicesYAML += """

                  - id: \(Self.deviceID(i))
                    driver: generic-json
                    type: door-controller
                    auth: {token: "\(Self.token(i))"}
                """
        }
        let yaml = """
            site: e2e
            state_directory: \(directory)/state
            disk_budget_bytes: \(diskBudget)
            status_interval_seconds: \(statusInterval)
            log_level: \(logLevel)
            ingest:
              host: 127.0.0.1
              port: \(ingestPort)
            \(ingestExtra)
            admin:
              host: 127.0.0.1
              port: \(adminPort)
            \(extra)
            devices:\(devicesYAML)
            \(extraDevices)
            sinks:
              - name: central
                type: http
                url: http://127.0.0.1:\(receiverPort)/ingest
                gzip: true
                hmac_secret: "e2e-hmac"
                batch_max_events: 500
                backoff_initial_seconds: 0.05
                backoff_max_seconds: 0.5
            \(sinkExtra)
            """
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        return configPath
    }

    public func remove() { try? FileManager.default.removeItem(atPath: directory) }
}
