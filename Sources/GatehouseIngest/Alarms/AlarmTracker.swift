import Crypto
import GatehouseCore

/// One report of an alarm condition from a device: a detector on a point is active, inactive,
/// or (after a subscription or reconnect) initially active or not.
public struct AlarmSignal: Sendable, Equatable {
    public enum Edge: Sendable, Equatable {
        /// The condition holds now (a first report, or a repeat while it lasts).
        case active
        /// The device says the condition ended.
        case inactive
        /// The device's current state, sent after a (re)subscription: not an edge.
        case initial(active: Bool)
    }

    public var kind: EventKind
    public var point: String?
    /// The vendor's name for the detector (`fielddetection`, `CrossRegionDetection`, an ONVIF
    /// topic): two detectors of one kind on one point are two alarms.
    public var code: String
    public var edge: Edge
    /// When the device says it happened (the gateway's clock when it sent no usable time).
    public var at: Timestamp

    public init(kind: EventKind, point: String?, code: String, edge: Edge, at: Timestamp) {
        self.kind = kind
        self.point = point
        self.code = code
        self.edge = edge
        self.at = at
    }
}

/// A start or stop the tracker decided, with what a driver needs to build its event.
public struct AlarmTransition: Sendable, Equatable {
    public var state: AlarmState
    public var alarm: AlarmRef
    public var kind: EventKind
    public var point: String?
    public var code: String
    /// The device's time of the edge; for a quiet stop, the last time the device said it was active.
    public var occurredAt: Timestamp

    /// A draft for a transition the driver has no payload for (a quiet stop).
    public var draft: EventDraft {
        var draft = EventDraft(kind: kind, occurredAt: occurredAt, point: point, attributes: ["code": .string(code)])
        draft.apply(self)
        return draft
    }
}

extension EventDraft {
    /// Marks the draft as the transition's start or stop. The dedup key is the alarm and its
    /// state, so a replay after a re-subscription is a duplicate, while a new alarm never is.
    public mutating func apply(_ transition: AlarmTransition) {
        state = transition.state
        alarm = transition.alarm
        dedupKey = "alarm:\(transition.alarm.id):\(transition.state.rawValue)"
    }
}

/// Turns a device's stream of alarm reports into starts and stops (docs/specs/0003-camera-alarms.md).
///
/// Devices report lasting conditions in different ways: an NVR repeats an ongoing alarm every
/// second and may never say it ended; ONVIF sends the whole current state after every
/// subscription; several detectors fire for one person walking past. The centre must see one
/// start, one stop, and one incident. One tracker per device, owned by the device's task; it is
/// a value, and time comes in as arguments (the driver's injected clock), so it needs no locks
/// and its tests need no sleeping.
public struct AlarmTracker: Sendable {
    public struct Settings: Sendable, Equatable {
        /// Close an alarm the device stopped repeating after this long without a report; nil
        /// keeps it open until the device says it ended.
        public var quiet: Duration?
        /// Alarms on one point that start within this time of each other, or while another is
        /// active, are one incident.
        public var incidentWindow: Duration

        public init(quiet: Duration? = nil, incidentWindow: Duration = .seconds(10)) {
            self.quiet = quiet
            self.incidentWindow = incidentWindow
        }
    }

    private struct Key: Hashable {
        var point: String?
        var kind: EventKind
        var code: String
    }

    private struct Open {
        var ref: AlarmRef
        var startedAt: Timestamp
        /// Gateway time of the last report, for the quiet timeout.
        var lastHeard: Timestamp
        /// Device time of the last report: a quiet stop's time.
        var lastAt: Timestamp
    }

    private struct Ended {
        var point: String?
        var incident: String
        var endedAt: Timestamp
    }

    public let deviceID: String
    public var settings: Settings
    private var open: [Key: Open] = [:]
    /// Detectors whose last word was "not active": a repeated end is not news.
    private var closed: Set<Key> = []
    private var recentlyEnded: [Ended] = []

    public init(deviceID: String, settings: Settings = Settings()) {
        self.deviceID = deviceID
        self.settings = settings
    }

    /// How many alarms are open now.
    public var openCount: Int { open.count }

    /// The start or stop `signal` means, or nil when it changes nothing the centre must hear
    /// (a repeat, an end of an alarm already closed, an initial "not active").
    public mutating func observe(_ signal: AlarmSignal, now: Timestamp) -> AlarmTransition? {
        let key = Key(point: signal.point, kind: signal.kind, code: signal.code)
        switch (signal.edge, open[key]) {
        case (.active, .some(var alarm)), (.initial(active: true), .some(var alarm)):
            alarm.lastHeard = now
            alarm.lastAt = max(alarm.lastAt, signal.at)
            open[key] = alarm
            return nil
        case (.active, .none):
            closed.remove(key)
            return start(key, signal: signal, now: now, initial: false)
        case (.initial(active: true), .none):
            closed.remove(key)
            return start(key, signal: signal, now: now, initial: true)
        case (.inactive, .some):
            return stop(key, at: signal.at, reason: .device, now: now)
        case (.initial(active: false), .some):
            return stop(key, at: signal.at, reason: .resync, now: now)
        case (.inactive, .none):
            // The end of an alarm this tracker never saw start (the gateway restarted while it
            // was active): still news for the centre, with no start to refer to — once.
            guard closed.insert(key).inserted else { return nil }
            let id = Self.alarmID(device: deviceID, key: key, startedAt: signal.at)
            return AlarmTransition(
                state: .stop, alarm: AlarmRef(id: id, incident: id, stopReason: .device), kind: signal.kind,
                point: signal.point, code: signal.code, occurredAt: signal.at)
        case (.initial(active: false), .none):
            closed.insert(key)
            return nil
        }
    }

    /// Stops for the alarms the device stopped repeating more than `settings.quiet` ago.
    public mutating func expire(now: Timestamp) -> [AlarmTransition] {
        guard let quiet = settings.quiet else { return [] }
        let limit = now.milliseconds - quiet.milliseconds
        let quietKeys = open.filter { $0.value.lastHeard.milliseconds <= limit }.map(\.key)
        return quietKeys.sorted { ($0.point ?? "", $0.kind.rawValue, $0.code) < ($1.point ?? "", $1.kind.rawValue, $1.code) }
            .compactMap { key in open[key].flatMap { stop(key, at: $0.lastAt, reason: .quiet, now: now) } }
    }

    /// When `expire` would next close an alarm, or nil when none can close by itself.
    public var nextExpiry: Timestamp? {
        guard let quiet = settings.quiet else { return nil }
        return open.values.map(\.lastHeard).min()?.adding(seconds: Double(quiet.milliseconds) / 1000)
    }

    private mutating func start(_ key: Key, signal: AlarmSignal, now: Timestamp, initial: Bool) -> AlarmTransition {
        let id = Self.alarmID(device: deviceID, key: key, startedAt: signal.at)
        let ref = AlarmRef(id: id, incident: incident(for: key.point, at: signal.at) ?? id, initial: initial ? true : nil)
        open[key] = Open(ref: ref, startedAt: signal.at, lastHeard: now, lastAt: signal.at)
        return AlarmTransition(
            state: .start, alarm: ref, kind: key.kind, point: key.point, code: key.code, occurredAt: signal.at)
    }

    private mutating func stop(_ key: Key, at: Timestamp, reason: AlarmStopReason, now: Timestamp) -> AlarmTransition? {
        guard let alarm = open.removeValue(forKey: key) else { return nil }
        closed.insert(key)
        let window = settings.incidentWindow.milliseconds
        recentlyEnded.removeAll { $0.endedAt.milliseconds < at.milliseconds - window }
        recentlyEnded.append(Ended(point: key.point, incident: alarm.ref.incident, endedAt: at))
        var ref = alarm.ref
        ref.startedAt = alarm.startedAt
        ref.stopReason = reason
        ref.initial = nil
        return AlarmTransition(state: .stop, alarm: ref, kind: key.kind, point: key.point, code: key.code, occurredAt: at)
    }

    /// The incident an alarm starting now on `point` joins: one still open on the point, or
    /// one that ended there within the window. The earliest wins, so the link is stable.
    private func incident(for point: String?, at: Timestamp) -> String? {
        let window = settings.incidentWindow.milliseconds
        let openHere = open.filter { $0.key.point == point }.map(\.value).min { $0.startedAt < $1.startedAt }
        if let openHere { return openHere.ref.incident }
        return recentlyEnded.last { $0.point == point && at.milliseconds - $0.endedAt.milliseconds <= window }?.incident
    }

    /// 16 hex digits over device, point, kind, detector and start time: the same alarm read
    /// again (a replay after re-subscribing) gets the same id.
    private static func alarmID(device: String, key: Key, startedAt: Timestamp) -> String {
        var hasher = SHA256()
        for field in [device, key.point ?? "\u{0}", key.kind.rawValue, key.code, String(startedAt.milliseconds)] {
            hasher.update(data: Array(field.utf8) + [0x1F])
        }
        return hasher.finalize().prefix(8).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}

extension Duration {
    /// Whole milliseconds, for comparing with `Timestamp`s.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
