import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `gatehouse-bench proc`: samples a running process's resident memory, disk writes and CPU time,
/// to run alongside `http` against the daemon (CPU and bytes per event are these totals ÷ events).
struct ProcCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proc",
        abstract: "Sample /proc/<pid> VmRSS, write_bytes and utime+stime at an interval."
    )

    @Option(help: "Process to watch (usually the gatehouse daemon).")
    var pid: Int32

    @Option(help: "Seconds between samples.")
    var interval: Double = 1

    @Option(help: "Seconds to sample for; stops earlier if the process exits.")
    var duration: Double = 30

    @Option(help: "Also write the figures as JSON to this file.")
    var json: String?

    @Option(help: "Stop early once this path exists (e.g. the receiver's --json at the end of a drain).")
    var untilExists: String?

    func validate() throws {
        guard pid > 0 else { throw ValidationError("--pid \(pid) (expected a process id)") }
        guard interval > 0 else { throw ValidationError("--interval \(interval) (expected more than 0)") }
        guard duration >= interval else { throw ValidationError("--duration \(duration) (expected at least --interval)") }
    }

    func run() async throws {
        let clock = ContinuousClock()
        let started = clock.now
        var samples = [try sample(at: .zero)]
        let steps = Int((duration / interval + 1e-9).rounded(.down))
        for step in 1...steps {
            // Sleep to fixed points from the start, so the sampling's own time does not drift in.
            try await clock.sleep(until: started + .nanoseconds(Int64(Double(step) * interval * 1e9)))
            // A process that exited ends the sampling; what was seen so far is still reported.
            guard let next = try? sample(at: clock.now - started), let last = samples.last else {
                print("process \(pid) is gone; stopping")
                break
            }
            defer { samples.append(next) }
            let rate = Double(next.writeBytes - last.writeBytes) / max(next.seconds - last.seconds, 1e-9)
            print("t=\(Format.fixed(next.seconds))s  rss \(Format.megabytes(Double(next.residentBytes)))  writes \(Format.megabytes(rate))/s")
            if let untilExists, access(untilExists, F_OK) == 0 { break }
        }
        let report = ProcReport(pid: pid, samples: samples)
        print(report.table())
        if let json { try JSONReport.write(report, to: json) }
    }

    private func sample(at elapsed: Duration) throws -> ProcSample {
        let id = String(pid)
        return ProcSample(
            seconds: elapsed.seconds,
            residentBytes: try ProcFS.residentBytes(pid: id),
            writeBytes: try ProcFS.writeBytes(pid: id),
            cpuSeconds: try ProcFS.cpuSeconds(pid: id)
        )
    }
}

/// One reading of a process's memory and cumulative disk writes.
struct ProcSample: Codable {
    var seconds: Double
    var residentBytes: Int64
    var writeBytes: Int64
    /// Cumulative user + system CPU time.
    var cpuSeconds: Double
}

/// The figures of one `proc` run, as printed and as written with `--json`.
struct ProcReport: Codable {
    var pid: Int32
    var seconds: Double
    var rssMinMB: Double
    var rssMaxMB: Double
    var rssLastMB: Double
    /// Average over the whole sampling.
    var writeBytesPerSecond: Double
    /// The busiest single interval.
    var writeBytesPerSecondMax: Double
    /// From the first sample to the last: divide by the events of the same window for a per-event figure.
    var writeBytesTotal: Int64
    var cpuSecondsTotal: Double
    var samples: [ProcSample]

    init(pid: Int32, samples: [ProcSample]) {
        func mb(_ bytes: Int64) -> Double { Double(bytes) / 1_048_576 }
        self.pid = pid
        self.samples = samples
        let rss = samples.map(\.residentBytes)
        rssMinMB = mb(rss.min() ?? 0)
        rssMaxMB = mb(rss.max() ?? 0)
        rssLastMB = mb(rss.last ?? 0)
        let first = samples.first, last = samples.last
        seconds = (last?.seconds ?? 0) - (first?.seconds ?? 0)
        writeBytesPerSecond = seconds > 0 ? Double((last?.writeBytes ?? 0) - (first?.writeBytes ?? 0)) / seconds : 0
        writeBytesTotal = (last?.writeBytes ?? 0) - (first?.writeBytes ?? 0)
        cpuSecondsTotal = (last?.cpuSeconds ?? 0) - (first?.cpuSeconds ?? 0)
        writeBytesPerSecondMax = zip(samples, samples.dropFirst())
            .map { Double($1.writeBytes - $0.writeBytes) / max($1.seconds - $0.seconds, 1e-9) }
            .max() ?? 0
    }

    func table() -> String {
        var table = TextTable("gatehouse-bench proc  pid \(pid)  (\(samples.count) samples over \(Format.fixed(seconds)) s)")
        table.add("rss MB", "min \(Format.fixed(rssMinMB))  max \(Format.fixed(rssMaxMB))  last \(Format.fixed(rssLastMB))")
        table.add("disk writes", "\(Format.megabytes(writeBytesPerSecond))/s average, \(Format.megabytes(writeBytesPerSecondMax))/s busiest interval, \(writeBytesTotal) bytes in all")
        table.add("cpu", "\(Format.fixed(cpuSecondsTotal, 2)) s user+system (\(Format.fixed(cpuSecondsTotal / max(seconds, 1e-9) * 100)) % of one core)")
        return table.render()
    }
}
