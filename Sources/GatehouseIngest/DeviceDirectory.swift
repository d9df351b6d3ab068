import GatehouseCore
import Logging
import Synchronization

/// The configured devices and whether each is up, replaced as a whole on reload.
///
/// A device is up while it sends something at least every `offline_after_seconds`; health
/// changes are logged at once and become `device.online` / `device.offline` events. After a
/// (re)start nothing is known about a device, so it is `waiting` rather than `down` until its
/// first traffic; one that stays silent for its `offline_after_seconds` goes down and raises
/// `device.offline` once, like one that stopped sending. What was last announced survives the
/// restart (`resume(announced:)`), so a device that comes back as the centre last heard of it —
/// up and sending, or down and still silent — is not announced a second time.
public final class DeviceDirectory: Sendable {
    /// One device's health as the status log shows it.
    public struct Health: Sendable, Codable, Equatable {
        public enum State: String, Sendable, Codable { case up, down, waiting }
        public var id: String
        public var driver: String
        public var state: State
        public var since: Timestamp
        public var reason: String?
        public var lastSeen: Timestamp?
        public var events: Int64
        /// What the device's driver adds (a GB/T 28181 device's transport, source address, last
        /// keepalive and channels), shown under the device by `gatehouse status`.
        public var detail: [String: String]?
        /// The last liveness probe, for devices with a `liveness:` block (Liveness/).
        public var liveness: LivenessFigures?
    }

    /// A change of health to report.
    public struct Transition: Sendable, Equatable {
        public var device: DeviceConfig
        public var health: Health
        /// What the event says beyond the reason, when the change came with its own account (liveness).
        public var detail: HealthEventDetail?
    }

    private struct State {
        var devices: [String: DeviceConfig] = [:]
        var health: [String: Health] = [:]
        var rates: [String: EventRate] = [:]
        var lastPayloads: [String: LastPayload] = [:]
        /// What the centre was last told of each device (`device.online` = up, `device.offline`
        /// = down); a change to the same state again is not announced.
        var announced: [String: Health.State] = [:]
        /// `announced` changed since `takeAnnounced` last took it.
        var announcedChanged = false

        /// Whether `transition` tells the centre something new; records it as told.
        mutating func announces(_ transition: Transition) -> Bool {
            guard transition.device.liveness == nil else { return true }
            guard announced[transition.device.id] != transition.health.state else { return false }
            announced[transition.device.id] = transition.health.state
            announcedChanged = true
            return true
        }
    }

    private let state = Mutex(State())
    private let logger: Logger
    /// Stamps `waiting since` for devices added at start and by reload, and dates the listener's
    /// Digest nonces; the daemon's one clock.
    public let clock: any TimerClock

    public init(devices: [DeviceConfig], logger: Logger, clock: any TimerClock) {
        self.logger = logger
        self.clock = clock
        replace(devices, waitingReason: "waiting since restart")
    }

    public func device(_ id: String) -> DeviceConfig? { state.withLock { $0.devices[id] } }

    public var all: [DeviceConfig] { state.withLock { Array($0.devices.values) }.sorted { $0.id < $1.id } }

    public var healthSnapshot: [Health] { state.withLock { Array($0.health.values) }.sorted { $0.id < $1.id } }

    /// Installs a new device list; health of devices that stay is kept. Returns a summary of what changed.
    @discardableResult
    public func replace(
        _ devices: [DeviceConfig], waitingReason: String = "waiting since added by reload"
    ) -> (added: [String], removed: [String], changed: [String]) {
        let now = clock.now
        return state.withLock { s in
            let old = s.devices
            s.devices = Dictionary(devices.filter(\.enabled).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            let added = s.devices.keys.filter { old[$0] == nil }.sorted()
            let removed = old.keys.filter { s.devices[$0] == nil }.sorted()
            let changed = s.devices.keys.filter { old[$0] != nil && old[$0] != s.devices[$0] }.sorted()
            for id in removed {
                s.health[id] = nil
                s.rates[id] = nil
                s.lastPayloads[id] = nil
                s.announced[id] = nil
            }
            for id in added {
                s.health[id] = Health(
                    id: id, driver: s.devices[id]?.driver ?? "", state: .waiting, since: now,
                    reason: waitingReason, lastSeen: nil, events: 0)
            }
            return (added, removed, changed)
        }
    }

    /// Records traffic from a device; returns a transition when it comes back up.
    public func markSeen(_ id: String, events: Int, at now: Timestamp) -> Transition? {
        let transition = state.withLock { s -> Transition? in
            guard var health = s.health[id], let device = s.devices[id] else { return nil }
            health.lastSeen = now
            health.events += Int64(events)
            s.rates[id, default: EventRate()].record(events, at: now)
            defer { s.health[id] = health }
            // A device with a liveness probe is up or down by the probe's verdict alone.
            guard health.state != .up, device.liveness == nil else { return nil }
            health.state = .up
            health.since = now
            health.reason = nil
            return Transition(device: device, health: health)
        }
        return announced(transition)
    }

    /// What the centre was told of each device before a restart (`IngestPipeline.resumeHealth`).
    public func resume(announced: [String: Health.State]) {
        state.withLock { s in
            for (id, announcedState) in announced where s.devices[id] != nil { s.announced[id] = announcedState }
        }
    }

    /// What the centre was told of each device, when that changed since the last call (to be
    /// stored by `IngestPipeline.report`).
    public func takeAnnounced() -> [String: Health.State]? {
        state.withLock { s in
            guard s.announcedChanged else { return nil }
            s.announcedChanged = false
            return s.announced
        }
    }

    /// Storing what `takeAnnounced` gave failed: give it again next time.
    public func announcedNotStored() { state.withLock { $0.announcedChanged = true } }

    /// Events per minute of each device that sent any, over the last `EventRate.windowMinutes`.
    public func eventsPerMinute(at now: Timestamp) -> [String: Double] {
        state.withLock { $0.rates.mapValues { $0.perMinute(at: now) } }
    }

    /// Keeps a configured device's last raw payload, in memory only, for the console.
    public func keepLastPayload(_ id: String, _ payload: LastPayload) {
        state.withLock { s in
            guard s.devices[id] != nil else { return }
            s.lastPayloads[id] = payload
        }
    }

    /// The device's last raw payload, unredacted: show it only through `LastPayload.shown(under:)`.
    public func lastPayload(_ id: String) -> LastPayload? { state.withLock { $0.lastPayloads[id] } }

    /// Replaces what the driver says about a device beyond its health.
    public func describe(_ id: String, detail: [String: String]) { state.withLock { $0.health[id]?.detail = detail } }

    /// Takes a device up without a transition to report: a driver resuming, after a restart, a
    /// state it had announced before (a GB/T 28181 registration still valid), so nothing is said twice.
    public func markResumed(_ id: String, at now: Timestamp) {
        state.withLock { s in
            // A device with a liveness probe is up or down by the probe's verdict alone.
            guard var health = s.health[id], health.state != .up, s.devices[id]?.liveness == nil else { return }
            (health.state, health.since, health.reason, health.lastSeen) = (.up, now, nil, now)
            s.health[id] = health
        }
    }

    /// Marks a device down with a reason a driver found (no reply, refused login…); returns the
    /// transition when it was up or still waiting for its first contact.
    public func markDown(_ id: String, reason: String, at now: Timestamp) -> Transition? {
        let transition = state.withLock { s -> Transition? in
            guard var health = s.health[id], let device = s.devices[id], device.liveness == nil else { return nil }
            let changes = health.state != .down
            health.reason = reason
            if changes {
                health.state = .down
                health.since = now
            }
            s.health[id] = health
            return changes ? Transition(device: device, health: health) : nil
        }
        return announced(transition)
    }

    /// Marks devices down that have been silent for longer than their `offline_after_seconds`:
    /// those that were up, and those still waiting for their first contact since (re)start.
    public func sweep(now: Timestamp) -> [Transition] {
        let transitions = state.withLock { s -> [Transition] in
            var out: [Transition] = []
            // Silence says nothing about a camera with a liveness probe and no event protocol.
            for (id, device) in s.devices where device.liveness == nil {
                guard var health = s.health[id] else { continue }
                let limit = Int(device.offlineAfterSeconds)
                switch health.state {
                case .up:
                    guard let seen = health.lastSeen, now.seconds - seen.seconds > device.offlineAfterSeconds else { continue }
                    health.reason = "no data for \(limit) s"
                case .waiting:
                    guard now.seconds - health.since.seconds > device.offlineAfterSeconds else { continue }
                    health.reason = "nothing received within \(limit) s of start"
                case .down:
                    continue
                }
                health.state = .down
                health.since = now
                s.health[id] = health
                out.append(Transition(device: device, health: health))
            }
            return out.sorted { $0.device.id < $1.device.id }
        }
        return transitions.compactMap(announced)
    }

    /// Liveness's verdict on a device: `up` nil while the probes have not decided. Returns the
    /// transition to report when the state changes and `announce` is set; without it (a restart
    /// resuming a state already announced) the state is taken silently.
    public func applyLiveness(
        _ id: String, up: Bool?, reason: String?, since: Timestamp, figures: LivenessFigures, announce: Bool, detail: HealthEventDetail?
    ) -> Transition? {
        let transition = state.withLock { s -> Transition? in
            guard var health = s.health[id], let device = s.devices[id] else { return nil }
            defer { s.health[id] = health }
            health.liveness = figures
            guard let up else { return nil }
            let new: Health.State = up ? .up : .down
            if new == .down { health.reason = reason }
            guard health.state != new else { return nil }
            health.state = new
            health.since = since
            health.reason = up ? nil : reason
            return announce ? Transition(device: device, health: health, detail: detail) : nil
        }
        if let transition { log(transition) }
        return transition
    }

    /// Logs a change of health; returns it when it tells the centre something new (not what it
    /// was told before a restart).
    private func announced(_ transition: Transition?) -> Transition? {
        guard let transition else { return nil }
        let new = state.withLock { $0.announces(transition) }
        log(transition, repeated: !new)
        return new ? transition : nil
    }

    private func log(_ transition: Transition, repeated: Bool = false) {
        let h = transition.health
        var text = h.state == .up ? "device \(h.id) is up" : "device \(h.id) is down: \(h.reason ?? "unknown reason")"
        if repeated { text += " (as announced before the restart)" }
        logger.notice("\(text)", metadata: ["gatehouse.device": "\(h.id)", "gatehouse.state": "\(h.state.rawValue)"])
    }
}
