import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// `gatehouse-bench http`: offers a steady event rate to the gateway and reports what it
/// committed and how long each commit took, measured from when the request was due.
struct HTTPLoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "Open-loop HTTP load against POST /v1/devices/<id>/events (--rate 0: closed loop)."
    )

    @Option(help: "Base URL of the gateway's ingest listener; loopback only (127.0.0.1, ::1, localhost).")
    var url: String

    @Option(help: "Device ids are <prefix>0 … <prefix>(devices-1), used in turn.")
    var devicePrefix = "sim-"

    @Option(help: "How many device ids to cycle through.")
    var devices = 50

    @Option(help: "Bearer token sent with every request.")
    var token: String

    @Option(help: "Requests per second over all connections; 0 = closed loop at maximum throughput.")
    var rate: Double = 1000

    @Option(help: "Seconds of load.")
    var duration: Double = 30

    @Option(help: "Keep-alive connections.")
    var connections = 64

    @Option(help: "Events per request; above 1 the body is a JSON array.")
    var batch = 1

    @Option(help: "Percent of events that are alarm.panic instead of access.granted.")
    var alarmPercent: Double = 1

    @Option(help: "Seconds to wait for outstanding replies after the last request was due.")
    var drainTimeout: Double = 10

    @Option(help: "Closed loop only: stop after this many events (fills a backlog of a known size).")
    var maxEvents: Int?

    @Option(help: "Also write the figures as JSON to this file.")
    var json: String?

    @Option(help: "Send vendor payloads to /v1/push/{profile}/{device}: zhenshi-lpr (JSON) or hikvision-anpr (multipart XML + picture).")
    var profile: String?

    @Option(help: "With --profile hikvision-anpr: bytes of the picture in each request.")
    var imageBytes: Int = 50_000

    @Option(help: "Pad each generic event with attributes.note to this many bytes (0: no padding, about 230 bytes).")
    var eventBytes: Int = 0

    func validate() throws {
        _ = try LoopbackURL(url)
        guard rate >= 0, rate.isFinite else { throw ValidationError("--rate \(rate) (expected 0 or more)") }
        guard duration > 0 else { throw ValidationError("--duration \(duration) (expected more than 0)") }
        guard drainTimeout >= 0 else { throw ValidationError("--drain-timeout \(drainTimeout) (expected 0 or more)") }
        guard (1...10_000).contains(connections) else { throw ValidationError("--connections \(connections) (expected 1…10000)") }
        guard devices >= 1 else { throw ValidationError("--devices \(devices) (expected 1 or more)") }
        guard batch >= 1 else { throw ValidationError("--batch \(batch) (expected 1 or more)") }
        if let maxEvents, maxEvents < 1 || rate != 0 { throw ValidationError("--max-events \(maxEvents) (expected 1 or more, with --rate 0)") }
        if let profile, ProfileBodyBuilder.Brand(rawValue: profile) == nil {
            throw ValidationError("--profile \(profile) (expected \(ProfileBodyBuilder.Brand.allCases.map(\.rawValue).joined(separator: " or ")))")
        }
        guard (4...(16 << 20)).contains(imageBytes) else { throw ValidationError("--image-bytes \(imageBytes) (expected 4…16777216)") }
        guard (0...(1 << 20)).contains(eventBytes) else { throw ValidationError("--event-bytes \(eventBytes) (expected 0…1048576)") }
        if eventBytes > 0, profile != nil { throw ValidationError("--event-bytes pads generic events; it does not apply with --profile") }
        guard (0...100).contains(alarmPercent) else { throw ValidationError("--alarm-percent \(alarmPercent) (expected 0…100)") }
    }

    func run() async throws {
        let target = try LoopbackURL(url)
        let plan = LoadPlan(
            host: target.host, port: target.port, basePath: target.basePath,
            devicePrefix: devicePrefix, devices: devices, token: token,
            rate: rate, duration: .nanoseconds(Int64(duration * 1e9)), connections: connections,
            batch: batch, alarmPercent: alarmPercent, drainTimeout: .nanoseconds(Int64(drainTimeout * 1e9)),
            maxRequests: maxEvents.map { ($0 + batch - 1) / batch },
            profile: profile, imageBytes: imageBytes, eventBytes: eventBytes
        )
        // One thread: the generator shares the machine with the daemon it measures.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let outcome: Result<LoadResult, any Error>
        do {
            outcome = .success(try await LoadRunner(plan: plan, eventLoop: group.next()).run())
        } catch {
            outcome = .failure(error)
        }
        try await group.shutdownGracefully()
        let report = HTTPLoadReport(url: url, plan: plan, result: try outcome.get())
        print(report.table())
        if let json { try JSONReport.write(report, to: json) }
    }
}

/// An `http://` URL whose host is the loopback interface; anything else is refused, so the
/// generator cannot be pointed at someone else's machine.
struct LoopbackURL {
    var host: String
    var port: Int
    var basePath: String

    static let allowedHosts: Set<String> = ["127.0.0.1", "::1", "localhost"]

    init(_ text: String) throws {
        guard let url = URL(string: text), url.scheme?.lowercased() == "http", let rawHost = url.host else {
            throw ValidationError("--url '\(text)' (expected http://127.0.0.1:PORT)")
        }
        let host = rawHost.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        guard Self.allowedHosts.contains(host) else {
            throw ValidationError("--url host '\(host)' is not loopback (expected 127.0.0.1, ::1 or localhost)")
        }
        self.host = host
        self.port = url.port ?? 80
        self.basePath = url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path
    }
}

/// The figures of one `http` run, as printed and as written with `--json`.
struct HTTPLoadReport: Codable {
    /// Outcome counts; `requests` is their sum.
    struct Counts: Codable {
        var requests: Int
        var succeeded: Int
        var refused503: Int
        var httpErrors: Int
        var connectionErrors: Int
        var unfinished: Int
        var connectFailures: Int
    }

    var url: String
    var mode: String
    var requestedRequestsPerSecond: Double
    var requestedEventsPerSecond: Double
    var durationSeconds: Double
    var connections: Int
    var batch: Int
    var elapsedSeconds: Double
    var achievedRequestsPerSecond: Double
    var achievedEventsPerSecond: Double
    var counts: Counts
    /// Latency of the 200 replies, from the scheduled send time.
    var latencyMs: LatencySummary
    var maxScheduleLagMs: Double
    var errorSamples: [String]

    init(url: String, plan: LoadPlan, result: LoadResult) {
        self.url = url
        mode = plan.isClosedLoop ? "closed-loop" : "open-loop"
        requestedRequestsPerSecond = plan.rate
        requestedEventsPerSecond = plan.rate * Double(plan.batch)
        durationSeconds = Double(plan.duration.nanoseconds) / 1e9
        connections = plan.connections
        batch = plan.batch
        elapsedSeconds = Double(result.elapsed.nanoseconds) / 1e9
        let seconds = max(elapsedSeconds, 1e-9)
        achievedRequestsPerSecond = Double(result.succeeded) / seconds
        achievedEventsPerSecond = Double(result.succeeded * plan.batch) / seconds
        counts = Counts(
            requests: result.requests, succeeded: result.succeeded, refused503: result.refused,
            httpErrors: result.httpErrors, connectionErrors: result.connectionErrors,
            unfinished: result.unfinished, connectFailures: result.connectFailures
        )
        latencyMs = LatencySummary(microseconds: result.latency)
        maxScheduleLagMs = Double(result.maxScheduleLag.nanoseconds) / 1e6
        errorSamples = result.errorSamples
    }

    func table() -> String {
        var table = TextTable("gatehouse-bench http  \(url)  (\(mode))")
        let requested = mode == "closed-loop"
            ? "as fast as replies come"
            : "\(Format.fixed(requestedEventsPerSecond)) events/s (\(Format.fixed(requestedRequestsPerSecond)) req/s)"
        table.add("requested", "\(requested), \(Format.fixed(durationSeconds)) s, \(connections) connections, batch \(batch)")
        table.add("achieved (200)", "\(Format.fixed(achievedEventsPerSecond)) events/s, \(Format.fixed(achievedRequestsPerSecond)) req/s over \(Format.fixed(elapsedSeconds, 2)) s")
        table.add("requests", "\(counts.requests)")
        table.add("  200 ok", "\(counts.succeeded)")
        table.add("  503 refused", "\(counts.refused503)")
        table.add("  other status", "\(counts.httpErrors)")
        table.add("  connection lost", "\(counts.connectionErrors)")
        table.add("  unanswered", "\(counts.unfinished)  (at the drain deadline; latency below excludes them)")
        if counts.connectFailures > 0 { table.add("reconnect failures", "\(counts.connectFailures)") }
        if latencyMs.count == 0 {
            table.add("latency ms (200)", "n/a: no 200 replies")
        } else {
            table.add("latency ms (200)", "p50 \(ms(latencyMs.p50))  p90 \(ms(latencyMs.p90))  p99 \(ms(latencyMs.p99))  p99.9 \(ms(latencyMs.p999))  max \(ms(latencyMs.max))")
        }
        if mode == "open-loop" { table.add("generator lag", "\(ms(maxScheduleLagMs)) ms max (timer lateness; included in latency)") }
        for (index, sample) in errorSamples.enumerated() { table.add("error \(index + 1)", sample) }
        return table.render()
    }

    private func ms(_ value: Double) -> String { Format.fixed(value, value < 10 ? 2 : 1) }
}
