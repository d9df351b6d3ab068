import AsyncHTTPClient
import Foundation
import GatehouseCore
import GatehouseDaemon
import GatehouseIngest
import GatehouseSimulation
import Synchronization

/// The scripted part of `gatehouse demo`, played on top of the steady traffic: a retried and a
/// reused record, a payload that cannot be mapped, a device that goes silent and comes back, and
/// an outage of the centre during which an alarm is raised.
///
/// Each phase starts when the previous one was seen to happen (in the daemon's status or at the
/// centre), not at a fixed wall-clock time, so a busy machine makes the story slower, never wrong.
/// Only the phases' own lengths (how long the device stays silent, how long the centre is away)
/// are timed, and they scale with `--duration`.
final class DemoStory: Sendable {
    /// The phases' lengths for one run.
    struct Plan: Sendable {
        /// Runs shorter than this show steady traffic, the event, the quarantine and dedup only.
        static let minimumSeconds = 15.0

        /// Whether the device and outage phases fit the run.
        var full: Bool
        /// The story device's `offline_after_seconds`.
        var offlineAfterSeconds: Double
        /// How long the story device stays silent after the gateway reported it down.
        var downSeconds: Double
        /// How long the centre refuses everything.
        var outageSeconds: Double

        /// Scaled to a run of `duration` seconds; an unbounded run plays it at the pace of a minute.
        /// The story device must stay up between two of its events at `eventsPerSecond` shared
        /// by the fleet, so a low rate lengthens its `offline_after_seconds`.
        init(duration: Double?, eventsPerSecond: Double) {
            let length = duration ?? 60
            let interval = Double(DemoConfig.devices.count) / max(eventsPerSecond, 0.01)
            full = length >= Self.minimumSeconds
            offlineAfterSeconds = max(min(10, max(3, (length * 0.12).rounded())), (interval * 3).rounded(.up))
            downSeconds = min(10, max(2, (length * 0.1).rounded()))
            outageSeconds = min(15, max(3, (length * 0.15).rounded()))
        }
    }

    /// What the story saw happen, for the closing summary.
    struct Record: Sendable {
        var event: String?
        var quarantine: (id: String, reason: String)?
        var retry: (id: String, duplicate: Bool, collisionID: String?)?
        var silencedAt: Date?
        var downAt: Date?
        var downReason: String?
        var upAt: Date?
        var outageFrom: Date?
        var outageUntil: Date?
        var panicID: String?
        /// Priorities of the events that waited out the outage, in the order the centre got them.
        var backlog: [Priority] = []
        var latestStatus: StatusReport?
        var missing: [String] = []
        var finished = false
    }

    let plan: Plan
    let fleet: DeviceFleet
    let pusher: DevicePusher
    let receiver: CentralReceiver
    let adminURL: String
    /// Part of the story's record ids, so a second run on the same queue is a new story, not a retry.
    let runTag: String
    private let state = Mutex(Record())

    init(plan: Plan, fleet: DeviceFleet, pusher: DevicePusher, receiver: CentralReceiver, adminPort: Int, runTag: String) {
        self.plan = plan
        self.runTag = runTag
        self.fleet = fleet
        self.pusher = pusher
        self.receiver = receiver
        self.adminURL = "http://127.0.0.1:\(adminPort)/status"
    }

    var record: Record { state.withLock { $0 } }

    /// Plays the story, then keeps the latest status for the summary until cancelled.
    func run() async {
        await play()
        state.withLock { $0.finished = true }
        say("story: done; the summary follows when the demo stops")
        while !Task.isCancelled {
            _ = await status()
            try? await Task.sleep(for: .seconds(2))
        }
    }

    /// Waits until the story has finished or `timeout` passed.
    func waitUntilFinished(timeout: Duration) async {
        _ = await eventually(timeout) { self.state.withLock { $0.finished } }
    }

    /// Waits until every sink has delivered everything queued, or `timeout` passed; the status
    /// read last is kept for the summary either way.
    func waitUntilDelivered(timeout: Duration) async {
        _ = await eventually(timeout) {
            guard let report = await self.status() else { return false }
            return report.sinks.allSatisfy { $0.lag == 0 }
        }
    }

    private func play() async {
        let count = DemoConfig.devices.count
        if await eventually(.seconds(30), { await self.status()?.devicesUp == count }) {
            say("story: all \(count) devices up")
        } else {
            note("not all devices were up within 30 s")
        }
        await showOneEvent()
        await sendUnmappablePayload()
        await retryAndReuseRecord()
        guard !Task.isCancelled else { return }
        if plan.full {
            await unplugDevice()
            guard !Task.isCancelled else { return }
            await centreOutage()
        } else {
            say("story: this run is too short for a device going down and an outage of the centre (they need --duration \(Int(Plan.minimumSeconds)) or more)")
        }
    }

    // MARK: - Phases

    /// Prints a vehicle event as the centre received it, the demo's privacy policy applied.
    private func showOneEvent() async {
        let text = await poll(.seconds(30)) { self.receiver.snapshot.bodies.values.first { $0.contains(#""type":"plate""#) } }
        guard let text, let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)),
            let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else {
            note("the centre received no vehicle event within 30 s")
            return
        }
        let shown = String(decoding: pretty, as: UTF8.self)
        state.withLock { $0.event = shown }
        say("story: one event as the centre received it (plates masked and cards hashed by the demo's privacy policy):\n\(shown)")
    }

    /// A bridge with a typo in the kind: refused with the reason, the payload kept in quarantine.
    private func sendUnmappablePayload() async {
        let device = "door-block-2"
        let body = #"{"kind":"access.grantd","point":"door-2","subject":{"type":"card","value":"0098765432"}}"#
        let reply = await pusher.push(deviceID: device, token: DemoConfig.token(for: device), body: Array(body.utf8))
        guard reply.status == 422,
            let object = try? JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any],
            let id = object["quarantineId"] as? String, let reason = object["message"] as? String
        else {
            note("the unmappable payload was answered \(reply.status) \(reply.error ?? reply.body), not quarantined")
            return
        }
        // What `gatehouse quarantine list` shows: the reason with anything that looks like a value blanked.
        let redacted = ValueRedactor.redactText(reason)
        state.withLock { $0.quarantine = (id, redacted) }
        say("story: \(device) sent a payload with a typo in its kind: answered 422, kept in quarantine as entry \(id): \(redacted)")
    }

    /// A retry of a record the gateway already has, then the same record id reused for another
    /// event (a controller whose counter restarted): stored once, then stored as a collision.
    private func retryAndReuseRecord() async {
        let device = "door-block-2"
        let token = DemoConfig.token(for: device)
        let key = "rec-\(runTag)"
        let first = Array(#"{"dedupKey":"\#(key)","kind":"door.opened","occurredAt":"2026-11-30 08:00:00","point":"door-2"}"#.utf8)
        let other = Array(#"{"dedupKey":"\#(key)","kind":"door.closed","occurredAt":"2026-11-30 08:00:09","point":"door-2"}"#.utf8)
        let stored = await pusher.push(deviceID: device, token: token, body: first)
        let retried = await pusher.push(deviceID: device, token: token, body: first)
        let reused = await pusher.push(deviceID: device, token: token, body: other)
        guard let id = stored.ids.first, let again = retried.ids.first, let reusedID = reused.ids.first,
            reused.body.contains(#""status":"stored""#)
        else {
            note("the retried record was answered \(stored.status) / \(retried.status) / \(reused.status)")
            return
        }
        let duplicate = again == id && retried.body.contains(#""status":"duplicate""#)
        state.withLock { $0.retry = (id, duplicate, reusedID != id ? reusedID : nil) }
        say("story: \(device) re-sent record \(key): \(duplicate ? "stored once, answered with the same id \(id)" : "answered \(again), not as a duplicate")")
        say("story: \(device) reused \(key) for another event (its counter restarted): stored as \(reusedID), counted as a dedup collision")
    }

    /// The story device stops sending until the gateway reports it down, stays away a little,
    /// then sends again until the gateway reports it up.
    private func unplugDevice() async {
        let device = DemoConfig.storyDevice
        let silencedAt = Date()
        fleet.silence(device)
        state.withLock { $0.silencedAt = silencedAt }
        say("story: \(device) stops sending (its offline_after_seconds is \(Int(plan.offlineAfterSeconds)))")
        let down = await poll(.seconds(plan.offlineAfterSeconds + 60)) { () async -> StatusReport? in
            let report = await self.status()
            let isDown = report?.devices.contains { $0.id == device && $0.state == .down && $0.since.date >= silencedAt.addingTimeInterval(-1) }
            return isDown == true ? report : nil
        }
        if let down, let health = down.devices.first(where: { $0.id == device }) {
            state.withLock {
                $0.downAt = health.since.date
                $0.downReason = health.reason
            }
            say("story: the gateway reports \(device) down (device.offline); its status line now reads:\n  \(down.summaryLine)")
        } else {
            note("\(device) was not reported down within \(Int(plan.offlineAfterSeconds) + 60) s")
        }
        try? await Task.sleep(for: .seconds(plan.downSeconds))
        fleet.resume(device)
        say("story: \(device) sends again")
        if let up = await poll(.seconds(60), { await self.status()?.devices.first { $0.id == device && $0.state == .up } }) {
            state.withLock { $0.upAt = up.since.date }
            say("story: the gateway reports \(device) up again (device.online)")
        } else {
            note("\(device) was not reported up again within 60 s")
        }
    }

    /// The centre refuses everything for a while; an alarm is raised meanwhile. When it is back,
    /// the events that waited on disk reach it alarms first.
    private func centreOutage() async {
        let before = receiver.progress.totalReceived
        let from = Date()
        receiver.setMode(.unavailable)
        state.withLock { $0.outageFrom = from }
        say("story: the centre goes down for \(Int(plan.outageSeconds)) s (it answers 503): events wait in the queue on disk")
        let panel = "alarm-panel-1"
        let panic = Array(#"{"attributes":{"zone":3},"dedupKey":"panic-\#(runTag)","kind":"alarm.panic"}"#.utf8)
        let reply = await pusher.push(deviceID: panel, token: DemoConfig.token(for: panel), body: panic)
        if let id = reply.ids.first {
            state.withLock { $0.panicID = id }
            say("story: \(panel) raises a panic alarm during the outage: stored as \(id)")
        } else {
            note("the panic alarm was answered \(reply.status) \(reply.error ?? reply.body)")
        }
        try? await Task.sleep(for: .seconds(plan.outageSeconds))
        let waiting = await status()?.sinks.first { $0.status.name == "central" }?.lag ?? 0
        let until = Date()
        receiver.setMode(.accept)
        state.withLock { $0.outageUntil = until }
        say("story: the centre is back; \(waiting) events waited for it")
        // Bounded: the sink retries after the centre's Retry-After of 1 s.
        let drained = await eventually(.seconds(60)) { self.receiver.progress.totalReceived - before >= waiting }
        if !drained { note("the centre did not receive the \(waiting) waiting events within 60 s") }
        let backlog = Self.backlog(receiver.snapshot, after: before, received: Timestamp(from)..<Timestamp(until))
        state.withLock { $0.backlog = backlog }
        say("story: the centre received them in this order of priority: \(Self.runs(backlog))")
    }

    // MARK: - Helpers

    /// Priorities, in arrival order, of the events the gateway received while the centre was
    /// down and the centre got after `after` arrivals: the backlog, without newer traffic, and
    /// without a batch that was already on its way when the centre went down (on a loaded
    /// machine one arrived first and made the order look wrong).
    static func backlog(_ snapshot: CentralReceiver.Snapshot, after: Int, received: Range<Timestamp>) -> [Priority] {
        let decoder = JSONDecoder()
        return snapshot.arrivalOrder.dropFirst(after).compactMap { id in
            guard let text = snapshot.bodies[id], let event = try? decoder.decode(Event.self, from: Data(text.utf8)),
                received.contains(event.receivedAt)
            else { return nil }
            return event.priority
        }
    }

    /// `alarm 12, then access 80, then telemetry 9`.
    static func runs(_ priorities: [Priority]) -> String {
        var runs: [(Priority, Int)] = []
        for priority in priorities {
            if let last = runs.last, last.0 == priority {
                runs[runs.count - 1].1 += 1
            } else {
                runs.append((priority, 1))
            }
        }
        return runs.isEmpty ? "nothing" : runs.map { "\($0.0.rawValue) \($0.1)" }.joined(separator: ", then ")
    }

    /// Whether every alarm came before every other event.
    static func alarmsFirst(_ priorities: [Priority]) -> Bool {
        guard let firstOther = priorities.firstIndex(where: { $0 != .alarm }) else { return true }
        return !priorities[firstOther...].contains(.alarm)
    }

    /// The daemon's status from its admin listener, as `gatehouse status --json` reads it.
    @discardableResult
    func status() async -> StatusReport? {
        do {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: adminURL), timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 16 << 20)
            guard response.status == .ok else { return nil }
            let report = try JSONDecoder().decode(StatusReport.self, from: Data(body.readableBytesView))
            state.withLock { $0.latestStatus = report }
            return report
        } catch {
            return nil
        }
    }

    private func note(_ text: String) {
        state.withLock { $0.missing.append(text) }
        say("story: \(text)")
    }

    /// Polls `condition` every 200 ms until it holds (true) or `timeout` passed (false).
    private func eventually(_ timeout: Duration, _ condition: @Sendable () async -> Bool) async -> Bool {
        await poll(timeout) { await condition() ? true : nil } ?? false
    }

    /// Polls `probe` every 200 ms until it finds something, or nil when `timeout` passed first.
    private func poll<T: Sendable>(_ timeout: Duration, _ probe: @Sendable () async -> T?) async -> T? {
        let deadline = ContinuousClock.now + timeout
        while !Task.isCancelled {
            if let found = await probe() { return found }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }
}

/// Prints a line to standard output at once: the demo's story interleaves with the log on stderr.
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
