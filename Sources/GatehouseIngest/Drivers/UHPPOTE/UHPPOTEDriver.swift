import Foundation
import GatehouseCore
import GatehouseQueue
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// UHPPOTE / WeiGeng (微耕) 64-byte UDP access controllers: reads each controller's event log
/// by index, with the last index read stored in the same transaction as the events it produced,
/// takes pushed status packets as a hint to read now, and watches the controller's clock.
/// See Drivers/UHPPOTE/README.md.
public struct UHPPOTEDriver: Driver {
    public let name = "uhppote"
    public let runsPerDevice = true
    /// Datagrams refused by every controller of this driver, by reason.
    public let rejections: UHPPOTERejections
    let listeners: UHPPOTEListeners

    public init() {
        let rejections = UHPPOTERejections()
        self.rejections = rejections
        listeners = UHPPOTEListeners(rejections: rejections)
    }

    public func mountRoutes(on router: RouterGroup<IngestRequestContext>, context: DriverContext) {}

    public var options: DriverOptionSet { DriverOptionSet(UHPPOTESettings.declarations) }

    public func validate(device: DeviceConfig) -> [String] {
        switch UHPPOTESettings.parse(device) {
        case .success: []
        case .failure(let error): error.problems
        }
    }

    /// Reads one kept 64-byte get-event reply (quarantine replay).
    public func decode(_ payload: RawPayload, device: DeviceConfig) throws(PayloadError) -> [EventDraft] {
        let serial = device.serial.flatMap(UInt32.init) ?? 0
        do {
            let (_, response) = try UHPPOTEResponse.decode(payload.body, function: .getEvent, serial: serial)
            guard case .event(let record) = response, let draft = UHPPOTEEventCodes.draft(for: record, serial: serial, zone: device.timeZone) else {
                return []
            }
            return [draft]
        } catch {
            throw PayloadError(error.description)
        }
    }

    public func run(device: DeviceConfig, context: DriverContext) async throws {
        let settings = try UHPPOTESettings.parse(device).get()
        let context = context.device(device)
        let logger = context.logger
        let target = try SocketAddress(ipAddress: settings.host, port: settings.port)
        let bindHost = settings.host.hasPrefix("127.") ? "127.0.0.1" : "0.0.0.0"
        let subscription = try await settings.listenPort.asyncMap {
            try await listeners.subscribe(host: settings.listenHost, port: $0, serial: settings.serial, logger: logger)
        }
        do {
            try await UHPPOTEClient.with(bindHost: bindHost, rejections: rejections, logger: logger) { client in
                let poller = UHPPOTEPoller(settings: settings, client: client, target: target, context: context)
                try await poller.run(wake: subscription?.wake ?? WakeUpSignal())
            }
        } catch {
            if let subscription { await listeners.unsubscribe(subscription) }
            throw error
        }
        if let subscription { await listeners.unsubscribe(subscription) }
    }
}

extension Optional {
    fileprivate func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}

/// The per-controller loop: status, clock, log; then sleep until the poll interval passes or a push wakes it.
final class UHPPOTEPoller: Sendable {
    let settings: UHPPOTESettings
    let client: UHPPOTEClient
    let target: SocketAddress
    let context: DeviceContext
    var device: DeviceConfig { context.config }
    var driver: String { context.config.driver }
    var logger: Logger { context.logger }
    private let state = Mutex<State>(State())

    private struct State {
        /// The last log index committed with its events; nil before the first read.
        var cursor: UInt32?
        var missedReplies = 0
        var lastClockCheck: ContinuousClock.Instant?
        var lastSkewReport: Timestamp?
        /// When a set-time the controller did not confirm was sent.
        var lastUnconfirmedSet: Timestamp?
        var listenerConfigured = false
    }

    init(settings: UHPPOTESettings, client: UHPPOTEClient, target: SocketAddress, context: DeviceContext) {
        self.settings = settings
        self.client = client
        self.target = target
        self.context = context
    }

    var cursor: UInt32? { state.withLock { $0.cursor } }

    func run(wake: WakeUpSignal) async throws {
        let stored = try await context.cursor()
        state.withLock { $0.cursor = stored.flatMap(UInt32.init) }
        logger.info("uhppote controller \(settings.serial) at \(target): resuming after log index \(stored ?? "none")")
        while !Task.isCancelled {
            await cycle()
            await wake.wait(timeout: .milliseconds(Int(settings.pollIntervalSeconds * 1000)), clock: context.clock)
        }
    }

    /// One round: liveness and the newest index (get-status), the clock, then the log.
    func cycle() async {
        do {
            try await configureListener()
            guard case .status(let status) = try await ask(.getStatus) else { return }
            try await checkClock()
            try await readLog(upTo: status.event.index)
        } catch is CancellationError {
        } catch let error as UHPPOTENoReply {
            logger.debug("\(error)")
        } catch {
            logger.warning("uhppote controller \(settings.serial): \(error)")
        }
    }

    // MARK: - Requests and health

    /// One request with the configured timeout and retries; counts missed replies and reports
    /// the controller down after `offline_after_missed_replies`, up again when it answers.
    func ask(_ request: UHPPOTERequest, accept: (UHPPOTEResponse) -> Bool = { _ in true }) async throws -> UHPPOTEResponse {
        try await exchange(request, accept: accept).response
    }

    /// `ask`, keeping the reply's bytes.
    func exchange(_ request: UHPPOTERequest, accept: (UHPPOTEResponse) -> Bool = { _ in true }) async throws -> UHPPOTEClient.Reply {
        do {
            let reply = try await client.exchange(
                request, serial: settings.serial, to: target, timeout: .milliseconds(settings.timeoutMilliseconds),
                retries: settings.retries, accept: accept)
            state.withLock { $0.missedReplies = 0 }
            await context.seen()
            return reply
        } catch let error as UHPPOTENoReply {
            let missed = state.withLock { s -> Int in
                s.missedReplies += error.attempts
                return s.missedReplies
            }
            if missed >= settings.offlineAfterMissedReplies {
                await context.down(reason: "no reply to \(missed) requests")
            }
            throw error
        } catch let error as UHPPOTEBadReply {
            // It answered, just not legibly: alive, and back online if it was down.
            state.withLock { $0.missedReplies = 0 }
            await context.seen()
            throw error
        }
    }

    private func configureListener() async throws {
        guard let wanted = settings.setListener, !state.withLock({ $0.listenerConfigured }) else { return }
        let desired = UHPPOTEListenerAddress(address: wanted.host, port: wanted.port)
        if case .listener(let current) = try await ask(.getListener), current.address == desired.address, current.port == desired.port {
            state.withLock { $0.listenerConfigured = true }
            return
        }
        guard case .setListener(ok: true) = try await ask(.setListener(desired)) else {
            logger.warning("uhppote controller \(settings.serial) refused set-listener \(wanted.host):\(wanted.port)")
            return
        }
        logger.notice("uhppote controller \(settings.serial) now pushes to \(wanted.host):\(wanted.port)")
        state.withLock { $0.listenerConfigured = true }
    }

    // MARK: - Clock

    /// Reads the controller clock at most once per poll interval; reports skew past the threshold,
    /// or a clock that does not read as a time at all (rate limited), and with `set_time` sets it.
    /// A set counts as `corrected` only when the controller's reply echoes the time sent; one it
    /// ignored is tried again after `clock_skew.report_interval_seconds`, not on every poll.
    func checkClock() async throws {
        let due = state.withLock { s -> Bool in
            let now = context.clock.instant
            if let last = s.lastClockCheck, now - last < .milliseconds(Int(settings.pollIntervalSeconds * 1000)) { return false }
            s.lastClockCheck = now
            return true
        }
        guard due else { return }
        let reading: UHPPOTEDateTime?
        let unreadable: String?
        do {
            guard case .time(let time) = try await ask(.getTime) else { return }
            reading = time
            unreadable = time == nil ? "not set (all zeros)" : nil
        } catch let bad as UHPPOTEBadReply {
            reading = nil
            unreadable = "0x" + bad.bytes[UHPPOTELayout.dateTime..<UHPPOTELayout.dateTime + 7].map(hex).joined()
        }
        let now = context.clock.now
        let configured = context.clockSkewSettings
        let threshold = settings.clockSkewThresholdSeconds ?? configured.thresholdSeconds
        let skew = reading?.timestamp(in: device.timeZone).map { Double(now.milliseconds - $0.milliseconds) / 1000 }
        // The controller counts whole seconds: less than 2 s is its resolution, not skew.
        if let skew, abs(skew) < 2 { return }
        let corrected = settings.setTime ? try await setClock(now: now, interval: configured.reportIntervalSeconds) : false
        guard skew.map({ abs($0) >= threshold }) ?? true else { return }
        let report = state.withLock { s -> Bool in
            if let last = s.lastSkewReport, now.seconds - last.seconds < configured.reportIntervalSeconds, !corrected { return false }
            s.lastSkewReport = now
            return true
        }
        guard report else { return }
        let deviceClock = reading?.description ?? unreadable ?? "?"
        var attributes: [String: JSONValue] = [
            "thresholdSeconds": .number(threshold), "deviceClock": .string(deviceClock), "source": .string("get-time"),
            "corrected": .bool(corrected),
        ]
        if let skew {
            attributes["skewSeconds"] = .number(skew)
            logger.warning("uhppote controller \(settings.serial) clock is off by \(Int(skew)) s (reads \(deviceClock))\(corrected ? "; corrected" : "")")
        } else {
            attributes["unreadableClock"] = .bool(true)
            logger.warning("uhppote controller \(settings.serial) clock does not read as a time (\(deviceClock))\(corrected ? "; corrected" : "")")
        }
        _ = try await context.submit([EventDraft(kind: .deviceClockSkew, attributes: attributes)], receivedAt: now)
    }

    /// Sets the controller clock to `now` unless a set it ignored was tried within `interval`
    /// seconds; true when the reply echoes the time sent (to the second it resolves).
    private func setClock(now: Timestamp, interval: Double) async throws -> Bool {
        let due = state.withLock { s -> Bool in
            if let last = s.lastUnconfirmedSet, now.seconds - last.seconds < interval { return false }
            return true
        }
        guard due else { return false }
        let sent = UHPPOTEDateTime(now, zone: device.timeZone)
        var echoed: UHPPOTEDateTime?
        do {
            if case .setTime(let time) = try await ask(.setTime(sent)) { echoed = time }
        } catch is UHPPOTEBadReply {}
        let confirmed = echoed.flatMap { $0.timestamp(in: device.timeZone) }.map { abs($0.milliseconds - now.milliseconds) < 2000 } ?? false
        state.withLock { $0.lastUnconfirmedSet = confirmed ? nil : now }
        if confirmed {
            logger.notice("uhppote controller \(settings.serial) clock set to \(sent)")
        } else {
            logger.warning("uhppote controller \(settings.serial) did not confirm set-time \(sent) (replied \(echoed?.description ?? "nothing readable")); next try in \(Int(interval)) s")
        }
        return confirmed
    }

    // MARK: - The event log

    /// Reads every record after the cursor up to `latest`, committing them in batches with the
    /// cursor. A slot the ring buffer overwrote before we read it becomes one `device.log-gap`.
    func readLog(upTo latest: UInt32) async throws {
        guard latest > 0 else { return }
        var next: UInt32
        if let cursor {
            if latest == cursor { return }
            if latest < cursor {
                // The controller's log restarted below our cursor (cleared, or a replaced board).
                logger.warning("uhppote controller \(settings.serial): newest log index \(latest) is below the stored cursor \(cursor); reading its log from the oldest record")
                guard let first = try await firstAvailable(1, latest) else { return }
                next = first
            } else {
                next = cursor + 1
            }
        } else {
            // First contact: take what the controller still holds, without calling older overwrites a gap.
            guard let first = try await firstAvailable(1, latest) else { return }
            next = first
        }
        var drafts: [EventDraft] = []
        var readThrough: UInt32?
        while next <= latest, !Task.isCancelled {
            let record: UHPPOTEEventRecord
            let frame: [UInt8]
            do {
                (record, frame) = try await fetchReply(next)
            } catch let bad as UHPPOTEBadReply {
                // Keep the unreadable record and move past it in the same transaction as the
                // records before it, so one bad slot can neither stall the log nor be lost.
                let kept = QuarantineRecord(
                    deviceID: device.id, driver: driver, route: "get-event \(next)", contentType: "application/x-uhppote-frame",
                    remote: "\(target)", reason: "log index \(next): \(bad.error.description)", payload: Data(bad.bytes))
                try await commit(drafts, quarantine: [kept], through: next)
                drafts = []
                readThrough = nil
                next += 1
                continue
            }
            switch record.type {
            case UHPPOTEEventRecord.Kind.none:
                // "Not yet": the status index ran ahead of what get-event serves. Next round.
                next = latest + 1
                continue
            case UHPPOTEEventRecord.Kind.overwritten:
                let first = try await firstAvailable(next, latest) ?? latest + 1
                drafts.append(gapDraft(from: next, to: first - 1))
                readThrough = first - 1
                next = first
            default:
                let draft = UHPPOTEEventCodes.draft(for: record, serial: settings.serial, zone: device.timeZone)
                if let draft { drafts.append(draft) }
                context.keepLastPayload(
                    Array(UHPPOTEEventCodes.consoleText(frame: frame, record: record).utf8), contentType: UHPPOTEEventCodes.consoleContentType,
                    mapped: draft.map { [$0] })
                readThrough = next
                next += 1
            }
            if drafts.count >= settings.batchSize, let through = readThrough {
                try await commit(drafts, through: through)
                drafts = []
                readThrough = nil
            }
        }
        if let through = readThrough { try await commit(drafts, through: through) }
    }

    private func fetch(_ index: UInt32) async throws -> UHPPOTEEventRecord {
        try await fetchReply(index).record
    }

    private func fetchReply(_ index: UInt32) async throws -> (record: UHPPOTEEventRecord, frame: [UInt8]) {
        // A late reply for another index is not this record.
        let reply = try await exchange(.getEvent(index: index)) { response in
            guard case .event(let r) = response else { return false }
            return r.index == index || r.type == UHPPOTEEventRecord.Kind.none || r.type == UHPPOTEEventRecord.Kind.overwritten
        }
        guard case .event(let record) = reply.response else { throw UHPPOTENoReply(function: .getEvent, attempts: 0, target: "\(target)") }
        return (record, reply.bytes)
    }

    /// The lowest index in `low...high` the ring buffer still holds (binary search: held slots
    /// are contiguous up to the newest), or nil when none is.
    private func firstAvailable(_ low: UInt32, _ high: UInt32) async throws -> UInt32? {
        var lo = low
        var hi = high
        var found: UInt32?
        while lo <= hi {
            let mid = lo + (hi - lo) / 2
            if try await fetch(mid).type == UHPPOTEEventRecord.Kind.overwritten {
                lo = mid + 1
            } else {
                found = mid
                if mid == 0 { break }
                hi = mid - 1
            }
        }
        return found
    }

    private func gapDraft(from: UInt32, to: UInt32) -> EventDraft {
        let count = Int(to) - Int(from) + 1
        logger.warning("uhppote controller \(settings.serial) overwrote \(count) records before they were read (indexes \(from)–\(to))")
        return EventDraft(
            kind: .deviceLogGap,
            attributes: [
                "count": .number(Double(count)), "firstIndex": .number(Double(from)), "lastIndex": .number(Double(to)),
                "serial": .string(String(settings.serial)),
            ],
            dedupKey: "\(settings.serial):gap:\(from)-\(to)")
    }

    /// Commits `drafts` and the cursor `through` in one transaction; a refusal (disk budget) leaves
    /// the cursor where it was, so the records are read again later.
    private func commit(_ drafts: [EventDraft], quarantine: [QuarantineRecord] = [], through index: UInt32) async throws {
        let outcomes = try await context.submit(drafts, quarantine: quarantine, cursor: String(index))
        if let refused = outcomes.first(where: { !$0.isAccepted }) {
            throw UHPPOTECommitRefused(index: index, outcome: "\(refused)")
        }
        state.withLock { $0.cursor = index }
    }
}

/// The queue refused records; the cursor stays and they are read again next round.
struct UHPPOTECommitRefused: Error, CustomStringConvertible {
    let index: UInt32
    let outcome: String
    var description: String { "queue refused records up to log index \(index) (\(outcome)); will read them again" }
}
