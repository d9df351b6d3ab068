import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseSimulation
import Histogram
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `gatehouse-bench cameras`: plays ONVIF, Hikvision and Dahua cameras and the central store in
/// this process, starts the daemon as its own process against them, holds every subscription
/// and stream at rest, then fires an open-loop alarm storm and measures the daemon's CPU and
/// memory and each alarm's delay to commit and to the central store. See docs/benchmarks.md.
struct CamerasCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cameras",
        abstract: "Hold many camera subscriptions/streams, fire an alarm storm, measure the daemon."
    )

    @Option(help: "The gatehouse executable to start (a release build).")
    var daemon: String

    @Option(help: "Directory for the generated config, the daemon's state and its log.")
    var work: String

    @Option(help: "ONVIF PullPoint cameras.")
    var onvif = 100
    @Option(help: "Hikvision cameras whose alertStream is held.")
    var hikvision = 100
    @Option(help: "Dahua cameras whose attach stream is held.")
    var dahua = 100

    @Option(help: "Alarms per second across all cameras, fired on schedule (open loop).")
    var rate = 500.0
    @Option(help: "Seconds at rest (everything held, no alarms).")
    var rest = 30.0
    @Option(help: "Seconds of alarm storm.")
    var storm = 30.0
    @Option(help: "Seconds to wait for every fired alarm to reach the central store after the storm.")
    var drainTimeout = 60.0

    @Option(help: "The daemon's ingest port (unused by the cameras, required by the config).")
    var ingestPort = 28180
    @Option(help: "The daemon's admin port.")
    var adminPort = 29208

    @Option(help: "Also write the figures as JSON to this file.")
    var json: String?

    @Flag(help: "Add a local file sink and time each alarm's line there: an upper bound of its delay to commit (CommitProbe).")
    var commitProbe = false

    func validate() throws {
        guard onvif >= 0, hikvision >= 0, dahua >= 0, onvif + hikvision + dahua > 0 else {
            throw ValidationError("--onvif/--hikvision/--dahua must be 0 or more, at least one camera in all")
        }
        guard rate > 0 else { throw ValidationError("--rate \(rate) (expected more than 0)") }
        guard rest >= 1, storm >= 1 else { throw ValidationError("--rest and --storm must be at least 1 second") }
    }

    func run() async throws {
        var logger = Logger(label: "gatehouse-bench.cameras")
        logger.logLevel = .critical  // 300 simulators would otherwise log every request
        let fleet = CameraFleet(onvif: onvif, hikvision: hikvision, dahua: dahua, logger: logger)
        let receiver = CentralReceiver(keepBodies: true, logger: logger)
        let report = try await withThrowingTaskGroup(of: Void.self) { group in
            fleet.start(in: &group)
            group.addTask { try await receiver.run() }
            let report = try await measure(fleet: fleet, receiver: receiver)
            await fleet.shutdown()
            group.cancelAll()
            return report
        }
        print(report.table())
        if let json { try JSONReport.write(report, to: json) }
        if !report.delivery.complete { throw BenchError("not every fired alarm reached the central store (see 'delivery')") }
    }

    private func measure(fleet: CameraFleet, receiver: CentralReceiver) async throws -> CamerasReport {
        let ports = try await fleet.ports()
        let centralPort = try await receiver.waitUntilRunning()
        let probe = commitProbe ? CommitProbe(path: work + "/commit-probe/events.ndjson") : nil
        if let probe { try? FileManager.default.removeItem(atPath: probe.path) }
        let tail = probe.map { probe in Task { await probe.run() } }
        defer { tail?.cancel() }
        let process = try BenchDaemon.start(
            daemon, config: config(fleet: fleet, ports: ports, centralPort: centralPort, probe: probe), name: "cameras.yaml", work: work)
        let pid = String(process.processIdentifier)
        defer { if process.isRunning { process.terminate() } }

        // Every subscription and stream held before the rest phase starts.
        // Resident memory is sampled from the launch on: the connect wave is the peak to watch.
        let clock = ContinuousClock()
        let launched = clock.now
        var connectRSS: [Double] = []
        while fleet.held() < fleet.count {
            guard process.isRunning else { throw BenchError("the daemon exited during start-up; see \(work)/daemon.log") }
            guard clock.now - launched < .seconds(180) else {
                throw BenchError("only \(fleet.held()) of \(fleet.count) cameras held after 180 s; see \(work)/daemon.log")
            }
            if let bytes = try? ProcFS.residentBytes(pid: pid) { connectRSS.append(Double(bytes) / 1_048_576) }
            try await Task.sleep(for: .milliseconds(50))
        }
        let heldAfter = (clock.now - launched).seconds
        print("connect: rss max \(Format.fixed(connectRSS.max() ?? 0)) MB while the cameras connected")
        print("all \(fleet.count) cameras held after \(Format.fixed(heldAfter)) s; resting \(Format.fixed(rest, 0)) s")
        let baseline = receiver.progress.totalReceived

        let restFigures = try await Self.sample(pid: pid, seconds: rest) { }
        print("rest: \(Format.fixed(restFigures.cpuPercent)) % of one core, rss max \(Format.fixed(restFigures.rssMaxMB)) MB")

        print("storm: \(Format.fixed(rate, 0)) alarms/s for \(Format.fixed(storm, 0)) s")
        let counts = StormFigures()
        let (rate, seconds) = (rate, storm)
        let stormFigures = try await Self.sample(pid: pid, seconds: storm) {
            await Self.fire(fleet: fleet, rate: rate, seconds: seconds, into: counts)
        }
        let fired = counts.result()
        print("storm: fired \(fired.fired), \(Format.fixed(stormFigures.cpuPercent)) % of one core, rss max \(Format.fixed(stormFigures.rssMaxMB)) MB")

        // Wait for the alarms to reach the central store, then for nothing more to come. Only the
        // storm's alarms count: on a busy box the cameras' device.online events are still being
        // forwarded after the hold (alarms go first) and would end the wait before the last alarms.
        let drainStart = clock.now
        var last = -1
        while clock.now - drainStart < .seconds(drainTimeout) {
            let received = receiver.progress.totalReceived
            if received - baseline >= fired.fired, received == last,
                receiver.snapshot.bodies.values.reduce(0, { $0 + ($1.contains(Delivery.stormKindText) ? 1 : 0) }) >= fired.fired
            {
                break
            }
            last = received
            try await Task.sleep(for: .milliseconds(500))
        }
        let afterRSS = Double(try ProcFS.residentBytes(pid: pid)) / 1_048_576
        process.terminate()
        process.waitUntilExit()
        tail?.cancel()
        let delivery = Delivery(snapshot: receiver.snapshot, fleet: fleet, fired: fired, committed: probe?.arrivals())
        return CamerasReport(
            cameras: .init(onvif: onvif, hikvision: hikvision, dahua: dahua), heldAfterSeconds: heldAfter,
            connectRSSMaxMB: connectRSS.max() ?? 0, rest: restFigures, storm: stormFigures, alarms: fired, delivery: delivery,
            rssAfterDrainMB: afterRSS, daemonExitStatus: process.terminationStatus)
    }

    /// CPU share of one core and resident memory of `pid` while `work` runs (or, with nothing to
    /// do, for `seconds`): CPU from `/proc/<pid>/stat` at both ends, memory sampled every 250 ms.
    static func sample(pid: String, seconds: Double, while work: @escaping @Sendable () async -> Void) async throws -> PhaseFigures {
        let clock = ContinuousClock()
        let started = clock.now
        let cpuStart = try ProcFS.cpuSeconds(pid: pid)
        var rss: [Double] = []
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await work() }
            while clock.now - started < .seconds(seconds) {
                rss.append(Double(try ProcFS.residentBytes(pid: pid)) / 1_048_576)
                try await Task.sleep(for: .milliseconds(250))
            }
            try await group.waitForAll()
        }
        let elapsed = (clock.now - started).seconds
        let cpu = try ProcFS.cpuSeconds(pid: pid) - cpuStart
        return PhaseFigures(
            seconds: elapsed, cpuPercent: cpu / elapsed * 100,
            rssMaxMB: rss.max() ?? 0, rssMinMB: rss.min() ?? 0)
    }

    /// Fires `rate × storm` alarms on schedule: alarm *i* is due at start + i/rate and goes to
    /// camera i mod N, each camera alternating start and stop. Nothing waits for the daemon.
    /// The camera's time stamp on each alarm is the instant it was sent, to the millisecond.
    private static func fire(fleet: CameraFleet, rate: Double, seconds: Double, into figures: StormFigures) async {
        let clock = ContinuousClock()
        let total = Int(rate * seconds)
        let start = clock.now
        var next = 0
        while next < total {
            let now = clock.now
            let due = Int(((now - start).seconds * rate).rounded(.down)) + 1
            while next < min(due, total) {
                let lag = (clock.now - (start + .seconds(Double(next) / rate))).seconds
                let camera = next % fleet.count
                let active = (next / fleet.count) % 2 == 0
                fleet.fire(camera: camera, active: active, at: Date())
                figures.record(active: active, lagSeconds: lag)
                next += 1
            }
            // Sleep to the next alarm's due time (the sleep's own overshoot shows up as lag).
            try? await clock.sleep(until: start + .seconds(Double(next) / rate))
        }
        figures.finish(seconds: (clock.now - start).seconds)
    }

    private func config(fleet: CameraFleet, ports: [Int], centralPort: Int, probe: CommitProbe?) -> String {
        var lines = BenchDaemon.configHead(work: work, ingestPort: ingestPort, adminPort: adminPort)
        for (index, port) in ports.enumerated() {
            lines.append("  - " + fleet.deviceLine(index: index, port: port))
        }
        lines += BenchDaemon.centralSink(port: centralPort)
        lines += probe?.sinkConfig ?? []
        return lines.joined(separator: "\n") + "\n"
    }
}

/// The simulated cameras, in one list: ONVIF first, then Hikvision, then Dahua.
final class CameraFleet: Sendable {
    enum Camera: Sendable {
        case onvif(ONVIFCamera)
        case hikvision(HikvisionCamera)
        case dahua(DahuaCamera)
    }

    let cameras: [Camera]
    var count: Int { cameras.count }

    init(onvif: Int, hikvision: Int, dahua: Int, logger: Logger) {
        cameras = (0..<onvif).map { _ in .onvif(ONVIFCamera(logger: logger)) }
            + (0..<hikvision).map { _ in .hikvision(HikvisionCamera(logger: logger)) }
            + (0..<dahua).map { _ in .dahua(DahuaCamera(logger: logger)) }
    }

    func start(in group: inout ThrowingTaskGroup<Void, any Error>) {
        for camera in cameras {
            switch camera {
            case .onvif(let c): group.addTask { try await c.run() }
            case .hikvision(let c): group.addTask { try await c.run() }
            case .dahua(let c): group.addTask { try await c.run() }
            }
        }
    }

    func ports() async throws -> [Int] {
        var ports: [Int] = []
        for camera in cameras {
            switch camera {
            case .onvif(let c): ports.append(try await c.waitUntilRunning())
            case .hikvision(let c): ports.append(try await c.waitUntilRunning())
            case .dahua(let c): ports.append(try await c.waitUntilRunning())
            }
        }
        return ports
    }

    func shutdown() async {
        for camera in cameras {
            switch camera {
            case .onvif: break
            case .hikvision(let c): await c.shutdown()
            case .dahua(let c): await c.shutdown()
            }
        }
    }

    /// The daemon's device id for camera `index`, as in the generated config.
    func deviceID(_ index: Int) -> String {
        switch cameras[index] {
        case .onvif: "onvif-\(index)"
        case .hikvision: "hik-\(index)"
        case .dahua: "dahua-\(index)"
        }
    }

    func deviceLine(index: Int, port: Int) -> String {
        let id = deviceID(index)
        return switch cameras[index] {
        case .onvif(let c):
            "{id: \(id), driver: onvif, type: camera, address: \"127.0.0.1:\(port)\", auth: {username: \(c.username), password: \"Demo#2025\", scheme: digest}}"
        case .hikvision(let c):
            "{id: \(id), driver: hikvision-camera, type: camera, address: \"127.0.0.1:\(port)\", auth: {username: \(c.username), password: \(c.password), scheme: digest}, options: {mode: stream}}"
        case .dahua(let c):
            "{id: \(id), driver: dahua, type: camera, address: \"127.0.0.1:\(port)\", auth: {username: \(c.username), password: \(c.password), scheme: digest}}"
        }
    }

    /// Cameras whose subscription or stream the daemon holds now.
    func held() -> Int {
        cameras.reduce(0) { sum, camera in
            let held =
                switch camera {
                case .onvif(let c): c.liveSubscriptions > 0
                case .hikvision(let c): c.openStreams > 0
                case .dahua(let c): c.openStreams > 0
                }
            return sum + (held ? 1 : 0)
        }
    }

    /// One alarm start or stop, stamped with `sent` to the millisecond in the camera's own format.
    func fire(camera index: Int, active: Bool, at sent: Date) {
        let stamp = Timestamp(sent)
        switch cameras[index] {
        case .onvif(let c):
            c.fire(topic: "tns1:RuleEngine/TamperDetector/Tamper", data: [("IsTamper", active ? "true" : "false")], utcText: stamp.rfc3339)
        case .hikvision(let c):
            c.fire(HikvisionCamera.Alert(eventType: "tamperdetection", active: active, dateTime: stamp.rfc3339))
        case .dahua(let c):
            let seconds = stamp.milliseconds / 1000, millis = stamp.milliseconds % 1000
            c.fire([DahuaCamera.Event(code: "VideoBlind", action: active ? "Start" : "Stop", data: "{\"RealUTC\":\(seconds),\"UTCMS\":\(millis)}")])
        }
    }
}

/// Counts and generator lag of the storm, filled by the firing loop.
final class StormFigures: Sendable {
    private let state = Mutex(Alarms())

    func record(active: Bool, lagSeconds: Double) {
        state.withLock { s in
            s.fired += 1
            if active { s.starts += 1 } else { s.stops += 1 }
            s.lagMaxMs = max(s.lagMaxMs, lagSeconds * 1000)
        }
    }

    func finish(seconds: Double) { state.withLock { $0.seconds = seconds } }
    func result() -> Alarms { state.withLock { $0 } }
}

/// What the storm fired.
struct Alarms: Codable, Sendable {
    var fired = 0
    var starts = 0
    var stops = 0
    var seconds = 0.0
    /// The latest any alarm went out after its due time (the generator's own lateness).
    var lagMaxMs = 0.0
    var achievedRate: Double { seconds > 0 ? Double(fired) / seconds : 0 }
}

struct PhaseFigures: Codable {
    var seconds: Double
    var cpuPercent: Double
    var rssMaxMB: Double
    var rssMinMB: Double
}

/// What reached the central store: the storm's alarm events, checked against what was fired,
/// and their delays.
struct Delivery: Codable {
    var alarmEvents = 0
    var starts = 0
    var stops = 0
    /// Events of the storm's cameras whose `occurredAt` is not the gateway's clock (must be 0:
    /// otherwise the device time was not read and the delay is meaningless).
    var gatewayTimed = 0
    var duplicates = 0
    var complete = false
    /// `receivedAt − occurredAt`: from the camera sending the alarm to the daemon stamping it at
    /// ingest, just before the group commit.
    var sendToIngest: LatencySummary
    /// Arrival at the central store − `occurredAt`: includes the commit, the sink's batching and the POST.
    var sendToCentral: LatencySummary
    /// Arrival in the local file sink − `occurredAt` (`--commit-probe`): the commit, plus the
    /// sink's wake-up, read and write; nil without the probe.
    var sendToCommit: LatencySummary?
    /// Storm alarms the probe did not see (must be 0 for `sendToCommit` to cover them all).
    var commitUnseen: Int?
    var sendToIngestByDriver: [String: LatencySummary]
    /// `sendToCommit` per driver (`--commit-probe`; absent in older reports).
    var sendToCommitByDriver: [String: LatencySummary]?
    var sendToCentralByDriver: [String: LatencySummary]

    /// Every camera fires a tamper alarm (an alarm-priority kind, so no sink batch holds it back).
    static let stormKind = "camera.tamper"
    static let stormKindText = "\"\(stormKind)\""

    init(snapshot: CentralReceiver.Snapshot, fleet: CameraFleet, fired: Alarms, committed: [String: Date]?) {
        let decoder = JSONDecoder()
        var ingest = LatencySummary.makeHistogram(), central = LatencySummary.makeHistogram(), commit = LatencySummary.makeHistogram()
        var unseen = 0
        var byDriver: [String: Histogram<UInt64>] = [:], centralByDriver: [String: Histogram<UInt64>] = [:]
        var commitByDriver: [String: Histogram<UInt64>] = [:]
        let storm = Set([Self.stormKind])
        for (id, body) in snapshot.bodies {
            guard let event = try? decoder.decode(Event.self, from: Data(body.utf8)), storm.contains(event.kind.rawValue),
                let state = event.state
            else { continue }
            alarmEvents += 1
            if state == .start { starts += 1 } else { stops += 1 }
            if event.timeSource == .gateway { gatewayTimed += 1 }
            let toIngest = max(event.receivedAt.milliseconds - event.occurredAt.milliseconds, 0)
            ingest.record(UInt64(toIngest) * 1000)
            let driver = event.device.id.split(separator: "-").first.map(String.init) ?? "?"
            byDriver[driver, default: LatencySummary.makeHistogram()].record(UInt64(toIngest) * 1000)
            if let committed {
                if let arrived = committed[id] {
                    let micros = UInt64(max(arrived.timeIntervalSince1970 * 1_000_000 - Double(event.occurredAt.milliseconds) * 1000, 0))
                    commit.record(micros)
                    commitByDriver[driver, default: LatencySummary.makeHistogram()].record(micros)
                } else {
                    unseen += 1
                }
            }
            if let arrived = snapshot.firstArrivedAt[id] {
                let micros = max(arrived.timeIntervalSince1970 * 1_000_000 - Double(event.occurredAt.milliseconds) * 1000, 0)
                central.record(UInt64(micros))
                centralByDriver[driver, default: LatencySummary.makeHistogram()].record(UInt64(micros))
            }
        }
        duplicates = snapshot.duplicateCount
        sendToIngest = LatencySummary(microseconds: ingest)
        sendToCentral = LatencySummary(microseconds: central)
        sendToCommit = committed.map { _ in LatencySummary(microseconds: commit) }
        commitUnseen = committed.map { _ in unseen }
        sendToIngestByDriver = byDriver.mapValues { LatencySummary(microseconds: $0) }
        sendToCommitByDriver = committed.map { _ in commitByDriver.mapValues { LatencySummary(microseconds: $0) } }
        sendToCentralByDriver = centralByDriver.mapValues { LatencySummary(microseconds: $0) }
        complete = alarmEvents == fired.fired && starts == fired.starts && stops == fired.stops && gatewayTimed == 0
    }
}

struct CamerasReport: Codable {
    struct Cameras: Codable { var onvif, hikvision, dahua: Int }
    var cameras: Cameras
    var heldAfterSeconds: Double
    /// Resident memory while the cameras connect (from the launch until all are held, every 50 ms).
    var connectRSSMaxMB: Double
    var rest: PhaseFigures
    var storm: PhaseFigures
    var alarms: Alarms
    var delivery: Delivery
    var rssAfterDrainMB: Double
    var daemonExitStatus: Int32

    func table() -> String {
        func latency(_ l: LatencySummary) -> String {
            "p50 \(Format.fixed(l.p50)) ms  p99 \(Format.fixed(l.p99)) ms  p99.9 \(Format.fixed(l.p999)) ms  max \(Format.fixed(l.max)) ms  (n=\(l.count))"
        }
        var table = TextTable("gatehouse-bench cameras  \(cameras.onvif) onvif + \(cameras.hikvision) hikvision + \(cameras.dahua) dahua")
        table.add("held after", "\(Format.fixed(heldAfterSeconds)) s, rss max \(Format.fixed(connectRSSMaxMB)) MB while connecting")
        table.add("rest", "\(Format.fixed(rest.cpuPercent)) % of one core, rss max \(Format.fixed(rest.rssMaxMB)) MB over \(Format.fixed(rest.seconds)) s")
        table.add("storm", "\(Format.fixed(storm.cpuPercent)) % of one core, rss max \(Format.fixed(storm.rssMaxMB)) MB over \(Format.fixed(storm.seconds)) s")
        table.add("fired", "\(alarms.fired) (\(alarms.starts) starts, \(alarms.stops) stops) at \(Format.fixed(alarms.achievedRate)) /s, generator lag max \(Format.fixed(alarms.lagMaxMs)) ms")
        table.add("delivered", "\(delivery.alarmEvents) (\(delivery.starts) starts, \(delivery.stops) stops), duplicates \(delivery.duplicates), gateway-timed \(delivery.gatewayTimed)\(delivery.complete ? "" : "  INCOMPLETE")")
        table.add("send → ingest", latency(delivery.sendToIngest))
        for (driver, l) in delivery.sendToIngestByDriver.sorted(by: { $0.key < $1.key }) { table.add("  \(driver)", latency(l)) }
        if let commit = delivery.sendToCommit {
            table.add("send → commit", latency(commit) + " (local file sink, upper bound; unseen \(delivery.commitUnseen ?? 0))")
            for (driver, l) in (delivery.sendToCommitByDriver ?? [:]).sorted(by: { $0.key < $1.key }) { table.add("  \(driver)", latency(l)) }
        }
        table.add("send → central", latency(delivery.sendToCentral))
        for (driver, l) in delivery.sendToCentralByDriver.sorted(by: { $0.key < $1.key }) { table.add("  \(driver)", latency(l)) }
        table.add("rss after drain", "\(Format.fixed(rssAfterDrainMB)) MB")
        table.add("daemon exit", "\(daemonExitStatus)")
        return table.render()
    }
}
