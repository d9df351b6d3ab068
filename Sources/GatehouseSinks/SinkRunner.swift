import Foundation
import GatehouseCore
import GatehouseQueue
import Logging
import Metrics
import Synchronization

/// Drives one sink: reads its cursor's next batch (alarms first), sends it, and advances the
/// cursor only after the target acknowledged; owns retries, splitting of rejected batches,
/// quarantine of refused events and the sink's statistics.
///
/// The runner does not own the sink's lifetime: whoever made the sink calls `shutdown()` on it
/// after `run()` returned.
public final class SinkRunner: Sendable {
    /// Longest wait honoured from a target's `Retry-After`.
    static let maxRetryAfterSeconds = 300.0
    /// Backoff cap when the config gives none.
    static let defaultBackoffMaxSeconds = 10.0
    /// An idle runner re-reads the queue at least this often, in case a commit signal was missed.
    static let idleRecheckSeconds = 1.0

    public let name: String
    private let sink: any Sink
    private let config: SinkConfig
    private let queue: EventQueue
    private let logger: Logger
    /// Woken by new commits and by `stop()`.
    private let activity = WakeUpSignal()
    /// Woken only by `stop()`: new events must not cut a backoff short.
    private let stopWake = WakeUpSignal()
    private let stopRequested = Atomic<Bool>(false)
    private let statistics: Mutex<Statistics>
    private let deliveredCounter: Counter
    private let failureCounter: Counter
    /// Times backoffs and idle re-checks, stamps failures and deliveries; tests pass a `ManualClock`.
    private let clock: any TimerClock

    public init(sink: any Sink, config: SinkConfig, queue: EventQueue, logger: Logger, clock: any TimerClock) {
        self.name = sink.name
        self.clock = clock
        self.sink = sink
        self.config = config
        self.queue = queue
        var logger = logger
        logger[metadataKey: "sink.name"] = "\(sink.name)"
        self.logger = logger
        self.statistics = Mutex(Statistics(status: SinkStatus(name: sink.name, type: config.typeName)))
        self.deliveredCounter = Counter(label: "gatehouse_sink_delivered_events_total", dimensions: [("sink", sink.name)])
        self.failureCounter = Counter(label: "gatehouse_sink_failures_total", dimensions: [("sink", sink.name)])
    }

    /// A snapshot of the sink's health.
    public var status: SinkStatus {
        statistics.withLock { $0.snapshot(now: clock.now) }
    }

    /// Asks `run()` to finish the send (and acknowledgement) in flight, start nothing new and return.
    public func stop() {
        stopRequested.store(true, ordering: .sequentiallyConsistent)
        activity.signal()
        stopWake.signal()
    }

    /// Delivers until `stop()` is called or the task is cancelled.
    public func run() async {
        logger.notice("sink \(name): started", metadata: ["sink.type": "\(config.typeName)"])
        let commits = queue.signalCommits(to: activity)
        await deliverUntilStopped()
        queue.stopSignallingCommits(commits)
        setState("stopped")
        let lag = (try? await queue.lag(sink: name)).map { "\($0)" } ?? "unknown"
        logger.notice("sink \(name): stopped with \(lag) events left to deliver")
    }

    private var shouldStop: Bool {
        stopRequested.load(ordering: .sequentiallyConsistent) || Task.isCancelled
    }

    private var batchMaxEvents: Int { max(1, config.batchMaxEvents) }

    /// Sends one batch at a time, in queue order. A full batch means a backlog: the next one is
    /// read while it is on its way (the target would otherwise sit idle during the read). A batch
    /// that is not full is followed by a read after the send: a child task to overlap a read that
    /// finds a few events costs more thread hand-offs than the read itself. Acknowledgements are
    /// recorded strictly in order and only for delivered batches (normally in memory, the queue's
    /// committer writes them), so the cursor never passes an undelivered event. A failure discards
    /// the batch read ahead and reads again from the acknowledged cursor, so alarms that arrived
    /// meanwhile go first.
    private func deliverUntilStopped() async {
        /// Delivered, acknowledgement not yet recorded.
        var delivered: [StoredEvent] = []
        /// The batch read while the previous one was sent.
        var readAhead: [StoredEvent]?
        /// The highest seq per priority rank of every batch read but not yet acknowledged.
        var readPosition: [Int: Int64] = [:]
        while !shouldStop {
            let events: [StoredEvent]
            if let next = readAhead {
                readAhead = nil
                events = await lingered(next, after: readPosition)
            } else {
                do {
                    events = try queue.nextBatch(sink: name, maxEvents: batchMaxEvents, after: readPosition)
                } catch {
                    // Cancelled because the daemon is stopping: not a queue problem to report.
                    if error is CancellationError, shouldStop { break }
                    // What was delivered is still recorded first, in order.
                    _ = await acknowledgeDelivered(delivered)
                    delivered = []
                    readPosition = [:]
                    await backOff(after: nil, reason: "reading the queue failed: \(error)", fatal: false)
                    continue
                }
            }
            if events.isEmpty {
                // Nothing more to send: record the last delivery before going idle. A commit after
                // the read that found nothing has signalled `activity`, so the wait returns at once.
                if !delivered.isEmpty {
                    let recorded = await acknowledgeDelivered(delivered)
                    delivered = []
                    readPosition = [:]
                    if !recorded { continue }
                }
                setState("idle")
                await activity.wait(timeout: .seconds(Self.idleRecheckSeconds), clock: clock)
                continue
            }
            let position = events.reduce(into: readPosition) { $0[$1.priority.rank] = max($0[$1.priority.rank] ?? 0, $1.seq) }
            // The previous batch's delivery first: without it recorded, this one is not sent (it
            // is read and sent again after the backoff; the target drops repeated ids).
            let recorded = await acknowledgeDelivered(delivered)
            delivered = []
            guard recorded else {
                readPosition = [:]
                continue
            }
            setState("sending")
            let outcome: DeliveryResult
            let next: [StoredEvent]?
            if events.count >= batchMaxEvents || events.reduce(0, { $0 + $1.body.count }) >= EventQueue.batchMaxBytes {
                async let upcoming = readNext(after: position)
                outcome = await sink.send(SinkBatch(sink: name, events: events))
                next = await upcoming
            } else {
                outcome = await sink.send(SinkBatch(sink: name, events: events))
                next = outcome == .delivered ? readNext(after: position) : nil
            }
            if outcome == .delivered {
                delivered = events
                readPosition = position
                readAhead = shouldStop ? nil : next
            } else {
                readPosition = [:]
                // After a failure the batch is read again rather than retried as is, so alarms that
                // arrived during an outage go first when the link returns.
                _ = await deliver(events, retryInPlace: false, firstOutcome: outcome)
            }
        }
        // stop(): the batch delivered last is recorded before run() returns.
        _ = await acknowledgeDelivered(delivered)
    }

    /// A batch read while the previous one was sent means events keep coming: when it is not
    /// full it waits `batch_linger_seconds` (cut short by `stop()`) and is read again, fuller, so
    /// a steady trickle does not cost a POST and a delivery record per commit. The first events
    /// after an idle spell are read by the main loop itself and go at once, and so does a batch
    /// holding an alarm: an alarm never waits for company.
    private func lingered(_ batch: [StoredEvent], after position: [Int: Int64]) async -> [StoredEvent] {
        let linger = config.batchLingerSeconds
        guard linger > 0, !batch.isEmpty, batch.count < batchMaxEvents, !batch.contains(where: { $0.priority == .alarm }) else {
            return batch
        }
        await stopWake.wait(timeout: .milliseconds(Int64(linger * 1000)), clock: clock)
        if shouldStop { return batch }
        return (try? queue.nextBatch(sink: name, maxEvents: batchMaxEvents, after: position)) ?? batch
    }

    /// The batch after `position`, or nil when reading failed or the runner is stopping; the
    /// main loop then reads again itself and reports a failure there.
    private func readNext(after position: [Int: Int64]) -> [StoredEvent]? {
        if shouldStop { return nil }
        return try? queue.nextBatch(sink: name, maxEvents: batchMaxEvents, after: position)
    }

    /// Records that `events` were delivered (true when there were none); after a failure, backs off
    /// and returns false.
    private func acknowledgeDelivered(_ events: [StoredEvent]) async -> Bool {
        guard !events.isEmpty else { return true }
        do {
            try await queue.acknowledge(sink: name, events)
            recordDelivery(of: events.count)
            return true
        } catch {
            // Delivered but not recorded: sending again is safe, the target drops repeated ids.
            // Cancelled while stopping is no failure worth a backoff or a warning.
            if error is CancellationError, shouldStop { return false }
            await backOff(after: nil, reason: "recording the delivery in the queue failed: \(error)", fatal: false)
            return false
        }
    }

    /// Delivers `events` in order: splits a rejected batch until the refused events are found and
    /// quarantined. With `retryInPlace` a failed attempt is retried with the same events; without,
    /// it returns after the backoff so the caller reads the queue again. `firstOutcome` is the
    /// outcome of a send the caller already made.
    /// Returns false when it gave up because the runner is stopping.
    private func deliver(_ events: [StoredEvent], retryInPlace: Bool, firstOutcome: DeliveryResult? = nil) async -> Bool {
        var sent = firstOutcome
        while true {
            let outcome: DeliveryResult
            if let first = sent {
                outcome = first
                sent = nil
            } else {
                if shouldStop { return false }
                setState("sending")
                outcome = await sink.send(SinkBatch(sink: name, events: events))
            }
            let failure: (after: Double?, reason: String, fatal: Bool)
            switch outcome {
            case .delivered:
                if await acknowledgeDelivered(events) { return true }
                // Not recorded; it backed off already.
                if !retryInPlace { return true }
                continue
            case .retryable(let after, let reason):
                failure = (after, reason, false)
            case .fatal(let reason):
                failure = (nil, reason, true)
            case .rejected(let reason) where events.count == 1:
                if await quarantine(events[0], reason: reason) { return true }
                failure = (nil, "quarantining a rejected event failed", false)
            case .rejected(let reason):
                logger.notice(
                    "sink \(name): batch of \(events.count) events rejected (\(reason)); splitting it to find the refused events")
                let middle = events.count / 2
                guard await deliver(Array(events[..<middle]), retryInPlace: true) else { return false }
                return await deliver(Array(events[middle...]), retryInPlace: true)
            }
            await backOff(after: failure.after, reason: failure.reason, fatal: failure.fatal)
            if !retryInPlace { return true }
        }
    }

    /// Keeps an event the target refused in quarantine, then moves the cursor past it, so one
    /// poisoned event never blocks the queue.
    private func quarantine(_ event: StoredEvent, reason: String) async -> Bool {
        let identity = try? JSONDecoder().decode(EventIdentity.self, from: event.body)
        let record = QuarantineRecord(
            deviceID: identity?.device?.id, driver: "sink:\(name)", reason: "rejected by sink \(name): \(reason)",
            payload: event.body)
        do {
            try await queue.quarantine(record)
            try await queue.acknowledge(sink: name, [event])
        } catch {
            logger.error(
                "sink \(name): could not quarantine a rejected event: \(error)",
                metadata: ["event.id": "\(identity?.id ?? "-")"])
            return false
        }
        statistics.withLock { $0.status.rejectedEvents += 1 }
        logger.warning(
            "sink \(name): event rejected and quarantined: \(reason)", metadata: ["event.id": "\(identity?.id ?? "-")"])
        return true
    }

    private func recordDelivery(of count: Int) {
        let recovered = statistics.withLock { s -> Int in
            let failures = s.status.consecutiveFailures
            s.recordDelivery(count: count, at: clock.now)
            return failures
        }
        deliveredCounter.increment(by: count)
        if recovered > 0 {
            logger.notice("sink \(name): delivering again after \(recovered) failure\(recovered == 1 ? "" : "s")")
        }
    }

    /// Waits before the next attempt: exponential from `backoffInitialSeconds` to the cap, with
    /// jitter, or the target's own `Retry-After`; the cap for a fatal error. Cut short by `stop()`.
    private func backOff(after: Double?, reason: String, fatal: Bool) async {
        let now = clock.now
        let (failures, reasonChanged) = statistics.withLock { s -> (Int, Bool) in
            let changed = s.status.lastError != reason
            s.status.consecutiveFailures += 1
            s.status.lastError = reason
            s.status.lastErrorAt = now
            s.status.state = "backing-off"
            return (s.status.consecutiveFailures, changed)
        }
        failureCounter.increment()
        let delay = Self.backoffDelay(
            failures: failures, initial: config.backoffInitialSeconds, cap: config.backoffMaxSeconds, after: after,
            fatal: fatal)
        let seconds = String(format: delay < 1 ? "%.2f" : "%.1f", delay)
        let message: Logger.Message = "sink \(name): backing off \(seconds) s after \(reason)"
        let metadata: Logger.Metadata = ["sink.failures": "\(failures)"]
        // Only the first failure and a change of reason are worth an operator's attention;
        // repeating the same line every few seconds of an outage is noise.
        if failures == 1 || reasonChanged {
            logger.log(level: fatal ? .error : .warning, message, metadata: metadata)
        } else {
            logger.debug(message, metadata: metadata)
        }
        await stopWake.wait(timeout: .seconds(delay), clock: clock)
    }

    /// The wait before attempt `failures + 1`.
    static func backoffDelay(failures: Int, initial: Double, cap: Double, after: Double?, fatal: Bool) -> Double {
        let cap = cap > 0 ? cap : defaultBackoffMaxSeconds
        let initial = min(cap, initial > 0 ? initial : 0.1)
        if fatal { return cap }
        if let after { return min(maxRetryAfterSeconds, max(initial, after)) }
        let exponential = min(cap, initial * pow(2, Double(min(max(failures - 1, 0), 40))))
        // Jitter spreads the retries of many gateways that lost the same central store at once.
        return max(initial, exponential * Double.random(in: 0.8...1.0))
    }

    private func setState(_ state: String) {
        statistics.withLock { $0.status.state = state }
    }
}

/// The only fields a runner reads from an event's JSON: for quarantine records and log lines.
private struct EventIdentity: Decodable {
    struct Device: Decodable { var id: String? }
    var id: String?
    var device: Device?
}

/// Counters behind `SinkRunner.status`, with per-second buckets for the one-minute rate.
private struct Statistics {
    var status: SinkStatus
    var buckets: [(second: Int64, count: Int64)] = []

    mutating func recordDelivery(count: Int, at now: Timestamp) {
        status.deliveredEvents += Int64(count)
        status.deliveredBatches += 1
        status.lastDeliveryAt = now
        status.consecutiveFailures = 0
        // The target accepts again: an old error would send the operator looking for a problem that is gone.
        status.lastError = nil
        status.lastErrorAt = nil
        let second = now.milliseconds / 1000
        if let last = buckets.last, last.second == second {
            buckets[buckets.count - 1].count += Int64(count)
        } else {
            buckets.append((second, Int64(count)))
        }
        prune(now: now)
    }

    mutating func prune(now: Timestamp) {
        let oldest = now.milliseconds / 1000 - 59
        if let keep = buckets.firstIndex(where: { $0.second >= oldest }) {
            buckets.removeFirst(keep)
        } else {
            buckets.removeAll()
        }
    }

    func snapshot(now: Timestamp) -> SinkStatus {
        let oldest = now.milliseconds / 1000 - 59
        var status = status
        status.eventsPerMinute = Double(buckets.reduce(Int64(0)) { $1.second >= oldest ? $0 + $1.count : $0 })
        return status
    }
}
