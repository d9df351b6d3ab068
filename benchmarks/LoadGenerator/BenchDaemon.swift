import Foundation

/// The daemon a benchmark starts against the simulators it plays: the config lines the camera
/// and GB/T 28181 benchmarks share, and the process with its log in the work directory.
enum BenchDaemon {
    /// `site:` … `devices:`: state and log under `work`, the ports given.
    static func configHead(work: String, ingestPort: Int, adminPort: Int) -> [String] {
        [
            "site: bench",
            "state_directory: \(work)/state",
            "disk_budget_bytes: 8GiB",
            "status_interval_seconds: 10",
            "log_level: notice",
            "ingest: {host: 127.0.0.1, port: \(ingestPort)}",
            "admin: {host: 127.0.0.1, port: \(adminPort)}",
            "devices:",
        ]
    }

    /// `sinks:` with the in-process central store on `port`.
    static func centralSink(port: Int) -> [String] {
        [
            "sinks:",
            "  - name: central",
            "    type: http",
            "    url: http://127.0.0.1:\(port)/events",
            "    gzip: false",
            "    batch_max_events: 2000",
            "    backoff_max_seconds: 0.2",
        ]
    }

    /// Writes `config` to `work/name` and starts `executable run` on it, stderr to `work/daemon.log`.
    static func start(_ executable: String, config: String, name: String, work: String) throws -> Process {
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let configPath = work + "/" + name
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["run", "--config", configPath]
        guard FileManager.default.createFile(atPath: work + "/daemon.log", contents: nil) else { throw BenchError("cannot create \(work)/daemon.log") }
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: work + "/daemon.log"))
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return process
    }
}
