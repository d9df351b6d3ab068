import Foundation
import GatehouseCore
import GatehouseQueue
import Logging
import Synchronization

/// Turns drivers' drafts into events and commits them: ids, receive time, site, lane config,
/// privacy policy and clock-skew checks happen here, once, for every driver.
public final class IngestPipeline: Sendable {
    public let queue: EventQueue
    public let devices: DeviceDirectory
    let logger: Logger
    private let ids = EventIDGenerator()
    private let state: Mutex<State>

    struct State {
        var site: String
        var privacy: PrivacyPolicy
        var skewSettings: ClockSkewSettings
        var skew: [String: ClockSkewMonitor] = [:]
    }

    public init(config: GatehouseConfig, queue: EventQueue, devices: DeviceDirectory, logger: Logger) {
        self.queue = queue
        self.devices = devices
        self.logger = logger
        state = Mutex(State(site: config.site, privacy: config.privacy, skewSettings: config.clockSkew))
    }

    /// The configured clock-skew threshold and report interval, for drivers that read device clocks themselves.
    public var clockSkewSettings: ClockSkewSettings { state.withLock { $0.skewSettings } }

    /// Each device's clock offset as the skew check estimates it (gateway minus device, seconds),
    /// for devices whose events carry a device time.
    public func clockOffsets() -> [String: Double] {
        state.withLock { $0.skew.compactMapValues(\.estimateSeconds) }
    }

    /// A device's last raw payload under the privacy policy in force, for the console's device page.
    public func lastPayload(of deviceID: String) -> LastPayload.Shown? {
        guard let payload = devices.lastPayload(deviceID) else { return nil }
        return payload.shown(under: state.withLock { $0.privacy })
    }

    /// Takes the parts of a reloaded config that apply to ingest.
    public func update(config: GatehouseConfig) {
        state.withLock {
            $0.site = config.site
            $0.privacy = config.privacy
            if $0.skewSettings != config.clockSkew {
                $0.skewSettings = config.clockSkew
                $0.skew = [:]
            }
        }
    }

    /// Normalizes and commits; returns when the queue's transaction is durable.
    ///
    /// `quarantine` keeps what the device sent that could not be decoded in the same transaction
    /// as the events and the cursor, so a bad record is kept and read past, never read again.
    /// Returns one outcome per draft, then one `.refused` per quarantine record the disk budget
    /// refused (the cursor then stays where it was).
    public func submit(
        _ drafts: [EventDraft], quarantine: [QuarantineRecord] = [], from device: DeviceConfig, driver: String,
        receivedAt: Timestamp, cursor: DeviceCursorUpdate? = nil
    ) async throws -> [AppendOutcome] {
        let (events, extra) = prepare(drafts, from: device, driver: driver, receivedAt: receivedAt)
        let outcomes = try await queue.append(events + extra, quarantine: quarantine, cursor: cursor, receivedAt: receivedAt)
        return Array(outcomes.prefix(drafts.count)) + outcomes.dropFirst(events.count + extra.count)
    }

    /// The drafts as events, plus the clock-skew and health events they give rise to.
    private func prepare(_ drafts: [EventDraft], from device: DeviceConfig, driver: String, receivedAt: Timestamp) -> (events: [Event], extra: [Event]) {
        var events: [Event] = []
        var extra: [Event] = []
        events.reserveCapacity(drafts.count)
        for draft in drafts {
            events.append(makeEvent(draft, device: device, driver: driver, receivedAt: receivedAt))
            if let occurredAt = draft.occurredAt,
                let skew = observeSkew(device: device, occurredAt: occurredAt, receivedAt: receivedAt)
            {
                extra.append(clockSkewEvent(device: device, driver: driver, report: skew, receivedAt: receivedAt))
            }
        }
        if let transition = devices.markSeen(device.id, events: drafts.count, at: receivedAt) {
            extra.append(healthEvent(transition))
        }
        return (events, extra)
    }

    /// Commits device.online/offline events for health changes (`DeviceDirectory.sweep`, a
    /// driver's report), and in the same transaction what the centre has been told of each device
    /// when that changed, so a restart does not announce it again. Called with no transition by
    /// the status tick, it stores only that: a change announced with a device's own events
    /// (`submit`) is stored at the next tick, and a crash before then announces it once more.
    public func report(_ transitions: [DeviceDirectory.Transition]) async {
        let announced = devices.takeAnnounced()
        guard !transitions.isEmpty || announced != nil else { return }
        let cursor = announced.flatMap { map in
            (try? JSONEncoder().encode(map)).map { DeviceCursorUpdate(deviceID: Self.announcedCursorKey, cursor: String(decoding: $0, as: UTF8.self)) }
        }
        do {
            _ = try await queue.append(transitions.map(healthEvent), cursor: cursor)
        } catch {
            if announced != nil { devices.announcedNotStored() }
            logger.error("could not queue device health events", metadata: ["error": "\(error)"])
        }
    }

    /// Where `report` keeps what the centre was told of each device (not a device id: ids have no colon).
    static let announcedCursorKey = "gatehouse:announced-health"

    /// Takes up what the centre was told of each device before the restart; call before drivers start.
    public func resumeHealth() async {
        do {
            guard let text = try await queue.deviceCursor(Self.announcedCursorKey) else { return }
            devices.resume(announced: try JSONDecoder().decode([String: DeviceDirectory.Health.State].self, from: Data(text.utf8)))
        } catch {
            logger.warning("could not read the devices' health announced before the restart; each is announced again", metadata: ["error": "\(error)"])
        }
    }

    /// Keeps input that could not be mapped.
    public func quarantine(_ record: QuarantineRecord) async throws -> Int64 {
        try await queue.quarantine(record)
    }

    /// The event a draft becomes: id, receive time, site, point and lane direction, whose clock,
    /// privacy policy, content fingerprint and (for a payload without a vendor id) a content key.
    /// Also used by quarantine replay, so replayed payloads are treated the same way.
    public func makeEvent(_ draft: EventDraft, device: DeviceConfig, driver: String, receivedAt: Timestamp) -> Event {
        let (site, privacy, skewSettings) = state.withLock { ($0.site, $0.privacy, $0.skewSettings) }
        var kind = draft.kind
        // The point's own direction (`points:`) before the device's: one camera, two lanes.
        let (point, laneDirection) = device.resolvePoint(draft.point)
        let direction = draft.direction ?? laneDirection
        // Entry or exit comes from the lane's configuration, never from the camera's view.
        if kind == .vehicleDetected, let laneDirection {
            kind = laneDirection == .in ? .vehicleEntry : .vehicleExit
        }
        let time = DeviceTimeTrust.judge(draft, receivedAt: receivedAt, settings: skewSettings)
        var event = Event(
            id: ids.next(now: receivedAt), kind: kind, occurredAt: time.occurredAt,
            receivedAt: receivedAt, site: site, device: device.ref, point: point,
            direction: direction, subject: draft.subject, result: draft.result, priority: draft.priority,
            attributes: draft.attributes,
            source: Source(driver: driver, profile: draft.profile, dedupKey: draft.dedupKey, deviceTime: time.deviceTime),
            timeSource: time.source, timeReason: time.reason, state: draft.state, alarm: draft.alarm)
        privacy.apply(to: &event)
        let fingerprint = EventFingerprint.of(
            kind: event.kind, subject: event.subject, deviceTime: time.deviceTime, point: event.point, result: event.result,
            alarm: event.state.map { ($0, event.alarm?.id) })
        event.source.fingerprint = fingerprint
        // A payload without a vendor id is recognised by its content when it says when it
        // happened; without a device time, two reads of one plate could be two cars.
        if event.source.dedupKey == nil, draft.occurredAt != nil || draft.deviceTime != nil {
            event.source.dedupKey = "content:" + fingerprint
        }
        return event
    }

    private func observeSkew(device: DeviceConfig, occurredAt: Timestamp, receivedAt: Timestamp) -> ClockSkewMonitor.Report? {
        state.withLock { s in
            var monitor = s.skew[device.id] ?? ClockSkewMonitor(settings: s.skewSettings)
            let report = monitor.observe(occurredAt: occurredAt, receivedAt: receivedAt)
            s.skew[device.id] = monitor
            return report
        }
    }

    private func clockSkewEvent(device: DeviceConfig, driver: String, report: ClockSkewMonitor.Report, receivedAt: Timestamp) -> Event {
        logger.warning(
            "device \(device.id) clock is off by \(Int(report.skewSeconds)) s",
            metadata: ["gatehouse.device": "\(device.id)", "gatehouse.skew_seconds": "\(report.skewSeconds)"])
        let draft = EventDraft(
            kind: .deviceClockSkew,
            attributes: [
                "skewSeconds": .number(report.skewSeconds), "samples": .number(Double(report.samples)),
                "thresholdSeconds": .number(state.withLock { $0.skewSettings.thresholdSeconds }),
            ])
        return makeEvent(draft, device: device, driver: driver, receivedAt: receivedAt)
    }

    func healthEvent(_ transition: DeviceDirectory.Transition) -> Event {
        let h = transition.health
        if let detail = transition.detail {
            let draft = EventDraft(
                kind: h.state == .up ? .deviceOnline : .deviceOffline, occurredAt: detail.occurredAt, attributes: detail.attributes,
                dedupKey: detail.dedupKey)
            return makeEvent(draft, device: transition.device, driver: detail.driver, receivedAt: detail.receivedAt)
        }
        var attributes: [String: JSONValue] = [:]
        if let reason = h.reason { attributes["reason"] = .string(reason) }
        let draft = EventDraft(
            kind: h.state == .up ? .deviceOnline : .deviceOffline, attributes: attributes.isEmpty ? nil : attributes)
        return makeEvent(draft, device: transition.device, driver: transition.device.driver, receivedAt: h.since)
    }
}
