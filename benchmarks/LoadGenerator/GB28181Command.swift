import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseSimulation
import Histogram
import Logging
import Synchronization

/// `gatehouse-bench gb28181`: plays many GB/T 28181 devices (each on its own UDP socket, as each
/// real device has its own address) and the central store in this process, starts the daemon as
/// its own process, registers every device, keeps them alive, then fires an open-loop alarm
/// storm. Measures the daemon's CPU and memory, keepalive request → 200 at the device, and
/// alarms acknowledged (the 200 is sent only after the commit) and delivered per second.
struct GB28181Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gb28181",
        abstract: "Register many GB/T 28181 devices, keep them alive, fire an alarm storm, measure the daemon."
    )

    @Option(help: "The gatehouse executable to start (a release build).")
    var daemon: String
    @Option(help: "Directory for the generated config, the daemon's state and its log.")
    var work: String
    @Option(help: "Simulated devices (IPCs), each with its own UDP socket.")
    var devices = 1000
    @Option(help: "Seconds between one device's keepalives.")
    var keepalive = 30.0
    @Option(help: "Alarms per second across all devices, fired on schedule (open loop).")
    var rate = 500.0
    @Option(help: "Seconds of keepalives alone.")
    var rest = 30.0
    @Option(help: "Seconds of alarm storm (keepalives go on).")
    var storm = 60.0
    @Option(help: "Registrations in flight at once.")
    var registerConcurrency = 50
    @Option(help: "The daemon's SIP port (UDP and TCP).")
    var sipPort = 25060
    @Option(help: "The daemon's ingest port (unused by the devices, required by the config).")
    var ingestPort = 28181
    @Option(help: "The daemon's admin port.")
    var adminPort = 29209
    @Option(help: "Also write the figures as JSON to this file.")
    var json: String?

    func validate() throws {
        guard devices > 0, devices <= 99_999 else { throw ValidationError("--devices \(devices) (expected 1 to 99999)") }
        guard rate > 0, keepalive >= 1, rest >= 1, storm >= 1 else { throw ValidationError("--rate, --keepalive, --rest and --storm must be positive") }
    }

    static func deviceID(_ index: Int) -> String { String(format: "340200000013200%05d", index) }

    func run() async throws {
        var logger = Logger(label: "gatehouse-bench.gb28181")
        logger.logLevel = .critical
        let receiver = CentralReceiver(keepBodies: true, logger: logger)
        let report = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await receiver.run() }
            let report = try await measure(receiver: receiver, logger: logger)
            group.cancelAll()
            return report
        }
        print(report.table())
        if let json { try JSONReport.write(report, to: json) }
        if report.alarmsDelivered < report.alarmsAcknowledged { throw BenchError("fewer alarms reached the central store than were acknowledged") }
    }

    private func measure(receiver: CentralReceiver, logger: Logger) async throws -> GB28181Report {
        let centralPort = try await receiver.waitUntilRunning()
        let process = try BenchDaemon.start(daemon, config: config(centralPort: centralPort), name: "gb28181.yaml", work: work)
        let pid = String(process.processIdentifier)
        defer { if process.isRunning { process.terminate() } }

        let fleet = (0..<devices).map { index -> GB28181Device in
            var options = GB28181Device.Options(deviceID: Self.deviceID(index), password: "gbBench123")
            options.gatewayPort = sipPort
            options.responseTimeoutSeconds = 5
            return GB28181Device(options: options, logger: logger)
        }
        // Register everything (the daemon must be listening first: retried until it answers).
        let clock = ContinuousClock()
        let launched = clock.now
        for device in fleet { try await device.start() }
        // `registerConcurrency` workers, worker w taking devices w, w + n, w + 2n …
        let workers = registerConcurrency
        let registered = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var done = 0
                    for index in stride(from: worker, to: fleet.count, by: workers) {
                        for _ in 0..<30 where clock.now - launched < .seconds(300) {
                            if await fleet[index].register() == 200 {
                                done += 1
                                break
                            }
                            try? await Task.sleep(for: .milliseconds(500))
                        }
                    }
                    return done
                }
            }
            return await group.reduce(0, +)
        }
        let registeredAfter = (clock.now - launched).seconds
        guard registered == fleet.count else {
            throw BenchError("only \(registered) of \(fleet.count) devices registered; see \(work)/daemon.log")
        }
        print("all \(fleet.count) devices registered after \(Format.fixed(registeredAfter)) s; keepalives every \(Format.fixed(keepalive, 0)) s")

        // Keepalives, spread evenly over the interval, for the rest and the storm.
        let keepalives = KeepaliveFigures()
        let total = rest + storm
        let interval = keepalive
        let keeping = Task {
            await withDiscardingTaskGroup { group in
                for (index, device) in fleet.enumerated() {
                    group.addTask {
                        let start = clock.now + .seconds(interval * Double(index) / Double(fleet.count))
                        var round = 0
                        while !Task.isCancelled {
                            let due = start + .seconds(interval * Double(round))
                            guard due - launched < .seconds(registeredAfter + total) else { return }
                            try? await clock.sleep(until: due)
                            let sent = clock.now
                            let status = await device.keepalive()
                            keepalives.record(status == 200 ? (clock.now - sent) : nil, storm: clock.now - launched > .seconds(registeredAfter + rest))
                            round += 1
                        }
                    }
                }
            }
        }
        let restFigures = try await CamerasCommand.sample(pid: pid, seconds: rest) {}
        print("rest: \(Format.fixed(restFigures.cpuPercent)) % of one core, rss max \(Format.fixed(restFigures.rssMaxMB)) MB")

        let alarms = AlarmFigures()
        let (rate, seconds) = (rate, storm)
        let stormFigures = try await CamerasCommand.sample(pid: pid, seconds: storm) {
            await Self.fire(fleet: fleet, rate: rate, seconds: seconds, into: alarms)
        }
        await keeping.value
        let fired = alarms.result()
        print("storm: fired \(fired.fired), \(Format.fixed(stormFigures.cpuPercent)) % of one core, rss max \(Format.fixed(stormFigures.rssMaxMB)) MB")
        // Wait for the acknowledged alarms at the central store.
        let drainStart = clock.now
        var delivered = 0
        while clock.now - drainStart < .seconds(60) {
            delivered = receiver.snapshot.bodies.values.filter { $0.contains("\"camera.motion\"") }.count
            if delivered >= fired.acknowledged { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        let rss = Double(try ProcFS.residentBytes(pid: pid)) / 1_048_576
        process.terminate()
        process.waitUntilExit()
        return GB28181Report(
            devices: devices, keepaliveSeconds: keepalive, registeredAfterSeconds: registeredAfter, rest: restFigures, storm: stormFigures,
            keepaliveAtRest: keepalives.summary(storm: false), keepaliveInStorm: keepalives.summary(storm: true),
            keepalivesUnanswered: keepalives.unanswered, alarmsFired: fired.fired, alarmsAcknowledged: fired.acknowledged,
            acknowledgedPerSecond: Double(fired.acknowledged) / max(fired.seconds, fired.lastAckSeconds), alarmAck: fired.latency, alarmsDelivered: delivered,
            generatorLagMaxMs: fired.lagMaxMs, rssAfterDrainMB: rss, daemonExitStatus: process.terminationStatus)
    }

    /// Fires `rate × seconds` alarms on schedule, alarm *i* from device i mod N with a fresh SN;
    /// each waits for its 200 in its own task, so a slow answer never delays the next alarm.
    private static func fire(fleet: [GB28181Device], rate: Double, seconds: Double, into figures: AlarmFigures) async {
        let clock = ContinuousClock()
        let total = Int(rate * seconds)
        let start = clock.now
        await withDiscardingTaskGroup { group in
            var next = 0
            while next < total {
                let due = Int(((clock.now - start).seconds * rate).rounded(.down)) + 1
                while next < min(due, total) {
                    figures.lag((clock.now - (start + .seconds(Double(next) / rate))).seconds)
                    let device = fleet[next % fleet.count]
                    group.addTask {
                        let sent = clock.now
                        let status = await device.alarm(method: 5, type: 2, time: Timestamp.now.rfc3339)
                        figures.record(status == 200 ? clock.now - sent : nil, sinceStart: (clock.now - start).seconds)
                    }
                    next += 1
                }
                try? await clock.sleep(until: start + .seconds(Double(next) / rate))
            }
            figures.finish(seconds: (clock.now - start).seconds)
        }
    }

    private func config(centralPort: Int) -> String {
        var lines = BenchDaemon.configHead(work: work, ingestPort: ingestPort, adminPort: adminPort)
        let options = "{listen_host: 127.0.0.1, listen_port: \(sipPort), keepalive_interval_seconds: \(Int(keepalive)), query_device_info: false}"
        for index in 0..<devices {
            let id = Self.deviceID(index)
            lines.append("  - {id: gb-\(index), driver: gb28181, type: camera, vendor: generic, serial: \"\(id)\", auth: {username: \"\(id)\", password: gbBench123, scheme: digest}, options: \(options)}")
        }
        lines += BenchDaemon.centralSink(port: centralPort)
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Keepalive request → 200 at the device, at rest and during the storm.
final class KeepaliveFigures: Sendable {
    private struct State {
        var rest = LatencySummary.makeHistogram()
        var storm = LatencySummary.makeHistogram()
        var unanswered = 0
    }
    private let state = Mutex(State())

    func record(_ latency: Duration?, storm: Bool) {
        state.withLock { s in
            guard let latency else { return s.unanswered += 1 }
            let micros = UInt64(max(latency.seconds * 1_000_000, 1))
            if storm { s.storm.record(micros) } else { s.rest.record(micros) }
        }
    }

    func summary(storm: Bool) -> LatencySummary { state.withLock { LatencySummary(microseconds: storm ? $0.storm : $0.rest) } }
    var unanswered: Int { state.withLock { $0.unanswered } }
}

/// Alarms fired, acknowledged (200 after the daemon's commit) and their request → 200 time.
final class AlarmFigures: Sendable {
    struct Result {
        var fired = 0
        var acknowledged = 0
        var seconds = 0.0
        var lagMaxMs = 0.0
        /// From the first alarm fired to the last one acknowledged.
        var lastAckSeconds = 0.0
        var latency: LatencySummary
    }
    private struct State {
        var fired = 0
        var acknowledged = 0
        var seconds = 0.0
        var lagMaxMs = 0.0
        var lastAckSeconds = 0.0
        var histogram = LatencySummary.makeHistogram()
    }
    private let state = Mutex(State())

    func lag(_ seconds: Double) { state.withLock { $0.fired += 1; $0.lagMaxMs = max($0.lagMaxMs, seconds * 1000) } }
    func record(_ latency: Duration?, sinceStart: Double) {
        guard let latency else { return }
        state.withLock { s in
            s.acknowledged += 1
            s.lastAckSeconds = max(s.lastAckSeconds, sinceStart)
            s.histogram.record(UInt64(max(latency.seconds * 1_000_000, 1)))
        }
    }
    func finish(seconds: Double) { state.withLock { $0.seconds = seconds } }
    func result() -> Result {
        state.withLock { Result(fired: $0.fired, acknowledged: $0.acknowledged, seconds: $0.seconds, lagMaxMs: $0.lagMaxMs, lastAckSeconds: $0.lastAckSeconds, latency: LatencySummary(microseconds: $0.histogram)) }
    }
}

struct GB28181Report: Codable {
    var devices: Int
    var keepaliveSeconds: Double
    var registeredAfterSeconds: Double
    var rest: PhaseFigures
    var storm: PhaseFigures
    var keepaliveAtRest: LatencySummary
    var keepaliveInStorm: LatencySummary
    var keepalivesUnanswered: Int
    var alarmsFired: Int
    var alarmsAcknowledged: Int
    var acknowledgedPerSecond: Double
    var alarmAck: LatencySummary
    var alarmsDelivered: Int
    var generatorLagMaxMs: Double
    var rssAfterDrainMB: Double
    var daemonExitStatus: Int32

    func table() -> String {
        func latency(_ l: LatencySummary) -> String {
            "p50 \(Format.fixed(l.p50)) ms  p99 \(Format.fixed(l.p99)) ms  max \(Format.fixed(l.max)) ms  (n=\(l.count))"
        }
        var table = TextTable("gatehouse-bench gb28181  \(devices) devices over UDP, keepalive every \(Format.fixed(keepaliveSeconds, 0)) s")
        table.add("registered after", "\(Format.fixed(registeredAfterSeconds)) s")
        table.add("rest", "\(Format.fixed(rest.cpuPercent)) % of one core, rss max \(Format.fixed(rest.rssMaxMB)) MB over \(Format.fixed(rest.seconds)) s")
        table.add("storm", "\(Format.fixed(storm.cpuPercent)) % of one core, rss max \(Format.fixed(storm.rssMaxMB)) MB over \(Format.fixed(storm.seconds)) s")
        table.add("keepalive → 200, rest", latency(keepaliveAtRest))
        table.add("keepalive → 200, storm", latency(keepaliveInStorm))
        table.add("keepalives unanswered", "\(keepalivesUnanswered)")
        table.add("alarms", "fired \(alarmsFired), acknowledged \(alarmsAcknowledged) (\(Format.fixed(acknowledgedPerSecond)) /s), delivered \(alarmsDelivered); generator lag max \(Format.fixed(generatorLagMaxMs)) ms")
        table.add("alarm → 200 (committed)", latency(alarmAck))
        table.add("rss after drain", "\(Format.fixed(rssAfterDrainMB)) MB")
        table.add("daemon exit", "\(daemonExitStatus)")
        return table.render()
    }
}
