import AsyncHTTPClient
import Foundation
import GatehouseCore
import GatehouseQueue
import Logging
import NIOCore
import Synchronization

/// One camera's attach stream: connect with Digest (or Basic), read events until the stream
/// ends or stalls, reconnect with jittered exponential backoff — all waits and the stall
/// decision on the driver's injected clock. A refused password stops fast: the device is
/// reported down with the reason and the next try waits `authRetrySeconds`, so a camera that
/// locks accounts after failures does not lock the gateway out.
final class DahuaAttachClient: Sendable {
    let settings: DahuaSettings
    let context: DeviceContext
    let client: HTTPClient
    let alarms: DahuaAlarms
    let mapper: DahuaEventMapper
    /// The driver's beat, shared by all its streams.
    let ticker: StreamTicker
    /// What the watchdog measures silence from.
    private let phase: Mutex<Phase>

    /// Where a connection is. Only the camera's silence counts: not our wait for a turn to
    /// connect, nor our own commit of what it sent (a slow disk). The handshake (connection and
    /// Digest challenge) gets at least `handshakeSeconds`: on a loaded box one took longer than
    /// three 1 s heartbeats, and each try cut short cost the camera a refused login.
    private enum Phase {
        case waitingForTurn
        case handshake(since: Timestamp)
        case reading(since: Timestamp)
        case handling
    }

    static let handshakeSeconds: Int64 = 30

    init(settings: DahuaSettings, context: DeviceContext, client: HTTPClient, alarms: DahuaAlarms, mapper: DahuaEventMapper, ticker: StreamTicker) {
        self.settings = settings
        self.context = context
        self.client = client
        self.alarms = alarms
        self.mapper = mapper
        self.ticker = ticker
        self.phase = Mutex(.waitingForTurn)
    }

    var logger: Logger { context.logger }
    var baseURL: String { settings.baseURL ?? "" }

    /// The attach request's path and query, as sent and as Digest signs it. The brackets are
    /// percent-encoded so that the request the HTTP client sends and the Digest `uri` are the
    /// same text (with literal brackets no stream opened in the tests); firmware accepts both.
    var path: String {
        let codes = settings.codes.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) ?? "All"
        return "/cgi-bin/eventManager.cgi?action=attach&codes=%5B\(codes)%5D&heartbeat=\(settings.heartbeatSeconds)"
    }

    /// Reconnects forever; returns when cancelled.
    func run() async {
        var failures = 0
        while !Task.isCancelled {
            let wait: Duration
            do {
                let delivered = try await attachOnce()
                // A stream that delivered something and then ended is a fresh start for the backoff.
                failures = delivered ? 0 : failures + 1
                await context.down(reason: "attach stream ended (\(baseURL)); reconnecting")
                wait = backoff(failures)
            } catch is CancellationError {
                return
            } catch let refused as DahuaAuthRefused {
                failures = 0
                logger.warning("dahua \(baseURL): \(refused)")
                await context.down(reason: refused.description)
                wait = .milliseconds(Int64(settings.authRetrySeconds * 1000))
            } catch {
                failures += 1
                let reason = "\(error)"
                logger.warning("dahua \(baseURL): \(reason)")
                await context.down(reason: "attach stream: \(reason)")
                wait = backoff(failures)
            }
            do {
                try await context.clock.sleep(for: wait)
            } catch {
                return
            }
        }
    }

    /// Jittered exponential: 1 s, 2 s, 4 s … up to the cap, each scaled by 0.5–1.
    func backoff(_ failures: Int) -> Duration {
        let exponential = min(settings.reconnectMaxSeconds, pow(2, Double(max(0, failures - 1))))
        return .milliseconds(Int64(exponential * Double.random(in: 0.5...1) * 1000))
    }

    /// One connection: returns when the stream ends (true when it delivered anything), throws
    /// on refusal, a stall or an error. The reader is a child task; this task is its watchdog,
    /// on the driver's beat rather than in a task of its own per stream.
    func attachOnce() async throws -> Bool {
        phase.withLock { $0 = .waitingForTurn }
        return try await ticker.withTicks(clock: context.clock) { ticks in
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    defer { ticks.end() }
                    return try await self.read()
                }
                var checked = context.clock.now
                for await _ in ticks.beats {
                    let now = context.clock.now
                    // The beat is the driver's; this stream is checked once per heartbeat interval.
                    guard now.milliseconds - checked.milliseconds >= Int64(settings.heartbeatSeconds) * 1000 else { continue }
                    checked = now
                    try await watch(now: now)
                }
                // The reader ended the beats: its result, or its error.
                return try await group.next() ?? false
            }
        }
    }

    /// Stall detection and quiet stops: no byte for `stallHeartbeats` heartbeat intervals
    /// ends the connection (throwing cancels the reader).
    func watch(now: Timestamp) async throws {
        let stall = Int64(settings.heartbeatSeconds * settings.stallHeartbeats * 1000)
        let quiet = alarms.expire(device: context.config.id, now: now).map(\.draft)
        if !quiet.isEmpty { await submit(quiet, quarantine: []) }
        switch phase.withLock({ $0 }) {
        case .waitingForTurn, .handling:
            return
        case .handshake(let since):
            let waited = now.milliseconds - since.milliseconds
            if waited >= max(stall, Self.handshakeSeconds * 1000) {
                throw DahuaStreamError(description: "no answer to the attach request for \(waited / 1000) s; reconnecting")
            }
        case .reading(let since):
            let silent = now.milliseconds - since.milliseconds
            if silent >= stall {
                throw DahuaStreamError(description: "no data, not even a heartbeat, for \(silent / 1000) s (heartbeat=\(settings.heartbeatSeconds)); reconnecting")
            }
        }
    }

    /// Connects (answering one Digest challenge) and reads the stream to its end.
    func read() async throws -> Bool {
        // The device's turn among those connecting (`connect_concurrency`) lasts until the stream is open or refused.
        guard let turn = await context.connectTurn() else { throw CancellationError() }
        defer { turn.end() }
        phase.withLock { $0 = .handshake(since: context.clock.now) }
        var challenge: HikvisionDigestClient.Challenge?
        var staleRetried = false
        while true {
            var request = HTTPClientRequest(url: baseURL + path)
            request.method = .GET
            if let authorization = authorization(challenge) { request.headers.add(name: "Authorization", value: authorization) }
            let response = try await client.execute(request, timeout: .seconds(3600))
            if response.status == .unauthorized {
                let headers = response.headers["WWW-Authenticate"]
                let header = headers.first { $0.lowercased().hasPrefix("digest") } ?? headers.first ?? ""
                _ = try? await response.body.collect(upTo: 64 << 10)
                let fresh = HikvisionDigestClient.challenge(header)
                // The first 401 is the challenge; one more is allowed for a stale nonce. Any other
                // refusal of credentials we sent is a wrong password: stop, do not hammer the camera.
                let stale = challenge != nil && !staleRetried && header.lowercased().contains("stale=true")
                guard settings.useDigest, let fresh, challenge == nil || stale else {
                    throw DahuaAuthRefused(
                        description: "\(baseURL) refused user '\(settings.username ?? "")' (401 on the attach stream\(fresh == nil && settings.useDigest ? ", no Digest challenge" : "")): wrong username or password; next try in \(Int(settings.authRetrySeconds)) s, cameras lock users after repeated failures")
                }
                staleRetried = staleRetried || stale
                challenge = fresh
                continue
            }
            guard response.status == .ok else {
                let body = (try? await response.body.collect(upTo: 4096)).map { String(buffer: $0) } ?? ""
                throw DahuaStreamError(description: "\(baseURL)\(path) answered \(response.status.code) (expected 200): \(body.prefix(200))")
            }
            turn.end()
            return try await consume(response.body)
        }
    }

    private func authorization(_ challenge: HikvisionDigestClient.Challenge?) -> String? {
        guard let username = settings.username, let password = settings.password else { return nil }
        guard settings.useDigest else { return HikvisionDigestClient.basic(username: username, password: password) }
        guard let challenge else { return nil }
        return HikvisionDigestClient.authorization(
            challenge, method: "GET", uri: path, username: username, password: password, cnonce: HikvisionDigestClient.newCnonce(), nc: 1)
    }

    /// Feeds the body to the parser; commits each read's events and quarantined bytes together.
    private func consume(_ body: HTTPClientResponse.Body) async throws -> Bool {
        var parser = DahuaStreamParser(maxRecordBytes: settings.maxRecordBytes)
        var delivered = false
        var garbageInARow = 0
        phase.withLock { $0 = .handling }
        await context.seen()
        phase.withLock { $0 = .reading(since: context.clock.now) }
        for try await chunk in body {
            phase.withLock { $0 = .handling }
            let items = parser.feed(chunk.readableBytesView)
            garbageInARow = try await handle(items, garbageInARow: garbageInARow)
            if !items.isEmpty { delivered = true }
            phase.withLock { $0 = .reading(since: context.clock.now) }
        }
        _ = try await handle(parser.finish(), garbageInARow: 0)
        return delivered
    }

    /// Maps and commits items; returns how many malformed items came in a row since the last good
    /// one, and gives up on a stream that is only garbage (it reconnects with backoff).
    private func handle(_ items: [DahuaStreamItem], garbageInARow: Int) async throws -> Int {
        guard !items.isEmpty else { return garbageInARow }
        var drafts: [EventDraft] = []
        var kept: [QuarantineRecord] = []
        var badRun = garbageInARow
        var alive = false
        let now = context.clock.now
        for item in items {
            switch item {
            case .heartbeat:
                alive = true
                badRun = 0
            case .event(let event):
                alive = true
                badRun = 0
                let mapped = Result { () throws(PayloadError) in
                    try alarms.withTracker(device: context.config) { tracker throws(PayloadError) in
                        try mapper.drafts(for: event, tracker: &tracker, now: now)
                    }
                }
                // The console's device page shows the last message; the drafts say which values are personal.
                context.keepLastPayload(event.raw, contentType: "text/plain", mapped: try? mapped.get())
                switch mapped {
                case .success(let made): drafts += made
                case .failure(let error): kept.append(quarantine(event.raw, reason: "\(event.code): \(error)"))
                }
            case .malformed(let bytes, let reason):
                badRun += 1
                kept.append(quarantine(bytes, reason: reason))
            }
        }
        if alive { await context.seen() }
        if !drafts.isEmpty || !kept.isEmpty { await submit(drafts, quarantine: kept) }
        if badRun >= Self.garbageLimit {
            throw DahuaStreamError(description: "\(badRun) unreadable parts in a row: not a Dahua event stream? (kept in quarantine); reconnecting")
        }
        return badRun
    }

    /// Unreadable parts in a row after which the connection is dropped and made again later.
    static let garbageLimit = 16

    private func quarantine(_ bytes: [UInt8], reason: String) -> QuarantineRecord {
        QuarantineRecord(
            deviceID: context.config.id, driver: context.config.driver, route: "/cgi-bin/eventManager.cgi", contentType: "text/plain",
            remote: baseURL, reason: reason, payload: Data(bytes))
    }

    /// A stream has no one to refuse to: what the queue will not take is logged and counted by it.
    private func submit(_ drafts: [EventDraft], quarantine: [QuarantineRecord]) async {
        do {
            let outcomes = try await context.submit(drafts, quarantine: quarantine)
            if let refused = outcomes.first(where: { !$0.isAccepted }) {
                logger.error("dahua \(baseURL): the queue refused events from the stream (\(refused)); the camera cannot resend them")
            }
        } catch {
            logger.error("dahua \(baseURL): could not queue \(drafts.count) events from the stream: \(error)")
        }
    }
}

/// The camera refused the configured credentials.
struct DahuaAuthRefused: Error, CustomStringConvertible {
    let description: String
}

struct DahuaStreamError: Error, CustomStringConvertible {
    let description: String
}

/// Each device's `AlarmTracker`, shared by its stream, its pushes and its quiet-stop timer.
final class DahuaAlarms: Sendable {
    private let trackers = Mutex<[String: AlarmTracker]>([:])

    init() {}

    func withTracker<Value: Sendable>(
        device: DeviceConfig, _ body: (inout AlarmTracker) throws(PayloadError) -> Value
    ) throws(PayloadError) -> Value {
        let quiet = DahuaSettings.quiet(device)
        return try trackers.withLock { (all: inout [String: AlarmTracker]) throws(PayloadError) -> Value in
            var tracker = all[device.id] ?? AlarmTracker(deviceID: device.id, settings: .init(quiet: quiet))
            defer { all[device.id] = tracker }
            return try body(&tracker)
        }
    }

    func expire(device: String, now: Timestamp) -> [AlarmTransition] {
        trackers.withLock { $0[device]?.expire(now: now) ?? [] }
    }
}
