import Foundation

/// A helper program run from a test without holding a thread while it runs.
///
/// swift-testing runs every test on Swift's cooperative pool, which has one thread per core
/// (two in CI). A blocking wait there (`waitUntilExit`, a `usleep` loop, a pipe read to its end)
/// holds one of those threads for as long as the child takes, and two of them stall every other
/// test of the run: on a loaded machine for tens of seconds, so that unrelated time bounds ran
/// out (a daemon "did not report its listeners" that it had reported in one second). Here the
/// wait is a `Task.sleep` poll, and output goes to files, so a child is never blocked on a pipe
/// nobody reads.
public enum ChildProcess {
    public struct Output: Sendable, CustomStringConvertible {
        /// The exit status; -1 when the program ran past its time bound and was killed.
        public let status: Int32
        public let stdout: String
        public let stderr: String

        public var description: String { "status \(status)\n--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)" }
    }

    /// Runs `executable` to its end (killed after `timeout`); `input` is its standard input.
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, directory: String? = nil,
        input: Data? = nil, timeout: Duration = .seconds(60)
    ) async throws -> Output {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-child-\(UUID().uuidString)").path
        let paths = (in: scratch + ".in", out: scratch + ".out", err: scratch + ".err")
        defer { for path in [paths.in, paths.out, paths.err] { try? FileManager.default.removeItem(atPath: path) } }
        FileManager.default.createFile(atPath: paths.in, contents: input ?? Data())
        for path in [paths.out, paths.err] { FileManager.default.createFile(atPath: path, contents: nil) }
        let handles = (
            in: try FileHandle(forReadingFrom: URL(fileURLWithPath: paths.in)),
            out: try FileHandle(forWritingTo: URL(fileURLWithPath: paths.out)),
            err: try FileHandle(forWritingTo: URL(fileURLWithPath: paths.err))
        )
        defer { for handle in [handles.in, handles.out, handles.err] { try? handle.close() } }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.standardInput = handles.in
        process.standardOutput = handles.out
        process.standardError = handles.err
        try process.run()
        let exited = await waitForExit(process, timeout: timeout)
        if !exited {
            process.terminate()
            if !(await waitForExit(process, timeout: .seconds(5))) { kill(process.processIdentifier, SIGKILL) }
        }
        let read = { (path: String) in (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        return Output(status: exited ? process.terminationStatus : -1, stdout: read(paths.out), stderr: read(paths.err))
    }

    /// Polls until `process` has exited; false when `timeout` passed first.
    public static func waitForExit(_ process: Process, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { return false }
            do { try await Task.sleep(for: .milliseconds(10)) } catch { return !process.isRunning }
        }
        return true
    }
}
