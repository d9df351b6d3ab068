import AsyncHTTPClient
import Foundation
import GatehouseCore
import GatehouseQueue
import Logging
import Synchronization

/// The last liveness probe of one device, as the status log and `gatehouse status` show it.
public struct LivenessFigures: Sendable, Codable, Equatable {
    /// The probe that ran last (`tcp` or `rtsp-options` while credentials are withheld).
    public var probe: String
    public var lastProbeAt: Timestamp?
    public var lastSuccessAt: Timestamp?
    /// The last probe's problem (`timeout`, `auth-failed`…), nil when it answered cleanly.
    public var lastProblem: String?
    /// The last probe's result in words.
    public var lastResult: String?
    public var consecutiveFailures: Int
    /// The camera refused the credentials once: none are sent until the config changes (lockouts).
    public var credentialsWithheld: Bool
}

/// What a health change's event carries when its finder gives its own account: liveness says
/// when the streak began, why, and keys the event by it.
public struct HealthEventDetail: Sendable, Equatable {
    public var occurredAt: Timestamp
    public var receivedAt: Timestamp
    public var attributes: [String: JSONValue]
    public var dedupKey: String
    public var driver: String
}

/// Probes every device with a `liveness:` block, whatever its driver (camera notes §1, §5):
/// first probes staggered over one interval, then every interval ± jitter, at most
/// `liveness.concurrency` at once. Each verdict goes through the camera's `LivenessTracker`, and
/// its changes through `DeviceDirectory` as `device.offline` / `device.online` with the reason.
/// The tracker is stored as a device cursor of its own (`liveness:<device id>`) in the
/// transaction of the event it caused, so a restart neither re-announces nor forgets a streak.
public final class LivenessMonitor: Sendable {
    struct Camera: Sendable {
        var device: DeviceConfig
        var settings: CameraLiveness
    }

    private struct State {
        var settings: LivenessSettings
        var cameras: [Camera]
        var trackers: [String: LivenessTracker] = [:]
        var withheld: Set<String> = []
        var probes: [String: Int] = [:]
        var inFlight = 0
        /// Cameras removed by a reload whose stored state is deleted once their last probe has ended.
        var forgotten: Set<String> = []
        /// Ends the running round when a reload changes the cameras or settings.
        var reloaded: AsyncStream<Void>.Continuation?
    }

    private let pipeline: IngestPipeline
    private let clock: any DriverClock
    private let logger: Logger
    private let state: Mutex<State>

    public init(pipeline: IngestPipeline, settings: LivenessSettings, devices: [DeviceConfig], clock: any DriverClock, logger: Logger) {
        self.pipeline = pipeline
        self.clock = clock
        self.logger = logger
        state = Mutex(State(settings: settings, cameras: Self.cameras(devices)))
    }

    static func cameras(_ devices: [DeviceConfig]) -> [Camera] {
        devices.compactMap { device in
            guard device.enabled, let liveness = device.liveness, !liveness.target.isEmpty else { return nil }
            return Camera(device: device, settings: liveness)
        }
    }

    /// Cameras this monitor probes.
    public var cameraCount: Int { state.withLock { $0.cameras.count } }

    /// Probes run so far for a device, for tests.
    public func probes(_ deviceID: String) -> Int { state.withLock { $0.probes[deviceID] ?? 0 } }

    /// Probes waiting for their camera now, for tests: a test that moves the clock while one is
    /// in flight passes its deadline before a loaded machine lets the camera answer.
    public var probesInFlight: Int { state.withLock { $0.inFlight } }

    /// SIGHUP: takes the new `liveness:` settings and cameras. The running round ends and a new one
    /// starts, staggered over the interval like at start; kept cameras keep their streaks (in
    /// memory and stored), a camera whose credentials changed may send them again after a
    /// refusal, and a removed camera's stored state is deleted. Returns what changed, for the
    /// reload log line.
    public func apply(settings: LivenessSettings, devices: [DeviceConfig]) -> [String] {
        let next = Self.cameras(devices)
        return state.withLock { s in
            var changes: [String] = []
            if s.settings != settings { changes.append("liveness settings changed") }
            let old = Dictionary(s.cameras.map { ($0.device.id, $0) }, uniquingKeysWith: { first, _ in first })
            let kept = Set(next.map(\.device.id))
            for camera in next {
                guard let previous = old[camera.device.id] else {
                    changes.append("liveness on \(camera.device.id)")
                    s.forgotten.remove(camera.device.id)
                    continue
                }
                // Compared by value: a secret's origin names its line, which moves when other entries do.
                let (was, now) = (previous.device.credentials, camera.device.credentials)
                let sameCredentials = was?.username == now?.username && was?.password == now?.password
                if !sameCredentials { s.withheld.remove(camera.device.id) }
                if previous.settings != camera.settings || !sameCredentials {
                    changes.append("liveness of \(camera.device.id) changed")
                }
            }
            for id in old.keys.sorted() where !kept.contains(id) {
                changes.append("liveness off \(id)")
                s.trackers[id] = nil
                s.withheld.remove(id)
                s.forgotten.insert(id)
            }
            guard !changes.isEmpty else { return [] }
            s.settings = settings
            s.cameras = next
            s.reloaded?.yield()
            return changes
        }
    }

    static func cursorKey(_ deviceID: String) -> String { "liveness:\(deviceID)" }

    /// Runs until cancelled; with no camera it waits for a reload that adds some.
    public func run() async {
        while !Task.isCancelled {
            let (reloaded, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            let (cameras, settings) = state.withLock { s in
                s.reloaded = signal
                return (s.cameras, s.settings)
            }
            // Resume each new camera's streaks; the directory takes the stored state without announcing it.
            for camera in cameras where state.withLock({ $0.trackers[camera.device.id] == nil }) {
                let tracker = await loadTracker(camera.device.id)
                state.withLock { $0.trackers[camera.device.id] = tracker }
            }
            if !cameras.isEmpty { logger.info("liveness: \(cameras.count) cameras, at most \(settings.concurrency) probes at once") }
            await withTaskGroup(of: Void.self) { group in
                if !cameras.isEmpty {
                    group.addTask { await self.probeRounds(cameras, settings: settings) }
                }
                group.addTask { for await _ in reloaded { return } }
                await group.next()
                group.cancelAll()
            }
            // Every probe of the ended round has returned, so none can store a removed camera's state again.
            let forgotten = state.withLock { s in
                defer { s.forgotten = [] }
                for id in s.forgotten { s.trackers[id] = nil }
                return s.forgotten
            }
            for id in forgotten.sorted() {
                do {
                    try await pipeline.queue.deleteDeviceCursor(Self.cursorKey(id))
                } catch {
                    logger.warning("liveness: could not delete the state of a removed camera", metadata: ["gatehouse.device": "\(id)", "error": "\(error)"])
                }
            }
        }
    }

    private func probeRounds(_ cameras: [Camera], settings: LivenessSettings) async {
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .periodicChecks)
        let prober = LivenessProber(
            http: client, timeout: .milliseconds(Int64(settings.timeoutSeconds * 1000)), maxSnapshotBytes: 8 << 20, clock: clock)
        let rounds = StaggeredRounds(intervals: cameras.map(\.settings.intervalSeconds), concurrency: settings.concurrency, clock: clock)
        await rounds.run(nextDelay: { index in
            // ± jitter, so cameras started together drift apart instead of probing in step.
            let settings = cameras[index].settings
            return settings.intervalSeconds * (1 + Double.random(in: -settings.jitter...settings.jitter))
        }) { index in
            await self.probe(cameras[index], prober: prober)
        }
        try? await client.shutdown()
    }

    /// One probe of one camera: run, judge, record in the directory, persist, announce. Returns
    /// the retry delay while a streak is on its way to a change: confirmed at `retry_seconds`
    /// instead of the whole interval, a camera going down is announced within about one interval
    /// plus (failures_to_offline − 1) retries.
    @discardableResult
    func probe(_ camera: Camera, prober: LivenessProber) async -> Double? {
        let id = camera.device.id
        var log = logger
        log[metadataKey: "gatehouse.device"] = "\(id)"
        let withheld = state.withLock { $0.withheld.contains(id) }
        let credentials = withheld ? nil : camera.device.credentials
        let (kind, target) = Self.probe(for: camera.settings, withheld: withheld)
        // A probe counts at its start: the first failed one dates the offline streak.
        let now = clock.now
        state.withLock { $0.inFlight += 1 }
        let result = await prober.probe(kind, target: target, credentials: credentials)
        state.withLock { $0.inFlight -= 1 }
        // Cut short by a reload or the shutdown: not the camera's verdict.
        guard !Task.isCancelled else { return nil }
        if result.problem == .authFailed, credentials != nil, !withheld {
            // Lockout pitfall: one refusal, then no more tries with these credentials until the
            // config changes (a restart tries once more); keep probing without them.
            state.withLock { _ = $0.withheld.insert(id) }
            log.warning("liveness: credentials refused; not sending them again until the config changes", metadata: ["result": "\(result.detail)"])
        }
        var tracker = state.withLock { s -> LivenessTracker in
            s.probes[id, default: 0] += 1
            return s.trackers[id] ?? LivenessTracker()
        }
        let before = tracker
        let transition = tracker.observe(result, at: now, settings: camera.settings)
        let figures = LivenessFigures(
            probe: kind.rawValue, lastProbeAt: now, lastSuccessAt: tracker.lastSuccessAt, lastProblem: result.problem?.rawValue,
            lastResult: result.detail, consecutiveFailures: tracker.consecutiveFailures,
            credentialsWithheld: state.withLock { $0.withheld.contains(id) })
        let up: Bool? = tracker.state == .unknown ? nil : tracker.state == .online
        let reason = "\(kind.rawValue): \(tracker.lastProblem?.rawValue ?? "failed") (\(tracker.lastDetail ?? ""))"
        let detail = transition.map { Self.detail($0, device: camera.device, probe: kind, at: clock.now) }
        let health = pipeline.devices.applyLiveness(
            id, up: up, reason: reason, since: tracker.since ?? now, figures: figures, announce: transition != nil, detail: detail)
        state.withLock { $0.trackers[id] = tracker }
        let retry = (result.alive ? tracker.state != .online : tracker.state != .offline) ? camera.settings.retrySeconds : nil
        if !result.alive {
            log.debug("liveness: probe failed", metadata: ["probe": "\(kind.rawValue)", "result": "\(result.detail)", "failures": "\(tracker.consecutiveFailures)"])
        }
        // Stored when the streaks or the state moved; a steady online camera writes nothing.
        guard tracker.state != before.state || tracker.consecutiveFailures != before.consecutiveFailures
            || (tracker.consecutiveSuccesses != before.consecutiveSuccesses && tracker.state != .online) || health != nil
        else { return retry }
        do {
            let events = health.map { [pipeline.healthEvent($0)] } ?? []
            let cursor = String(decoding: try JSONEncoder().encode(tracker), as: UTF8.self)
            _ = try await pipeline.queue.append(events, cursor: DeviceCursorUpdate(deviceID: Self.cursorKey(id), cursor: cursor), receivedAt: clock.now)
        } catch {
            log.error("liveness: could not record the probe's verdict", metadata: ["error": "\(error)"])
        }
        return retry
    }

    /// The configured probe, or — after the camera refused the credentials — one that needs none.
    static func probe(for settings: CameraLiveness, withheld: Bool) -> (LivenessProbeKind, String) {
        guard withheld else { return (settings.probe, settings.target) }
        switch settings.probe {
        case .rtspDescribe: return (.rtspOptions, settings.target)
        case .snapshot:
            let url = URL(string: settings.target)
            let port = url?.port ?? (url?.scheme == "https" ? 443 : 80)
            return (.tcp, "\(url?.host ?? ""):\(port)")
        case .rtspOptions, .tcp, .onvif: return (settings.probe, settings.target)
        }
    }

    /// The event's account of a change: when the streak began, why, and a key derived from
    /// device, kind and streak start, so a re-evaluated streak is one event however often it is sent.
    static func detail(_ transition: LivenessTracker.Transition, device: DeviceConfig, probe: LivenessProbeKind, at now: Timestamp) -> HealthEventDetail {
        switch transition {
        case .offline(let since, let problem, let detail, let failures, let lastSuccessAt):
            var attributes: [String: JSONValue] = [
                "reason": .string(problem.rawValue), "probe": .string(probe.rawValue), "detail": .string(String(detail.prefix(300))),
                "consecutiveFailures": .number(Double(failures)),
            ]
            if let lastSuccessAt { attributes["lastSuccessAt"] = .string(lastSuccessAt.rfc3339) }
            return HealthEventDetail(
                occurredAt: since, receivedAt: now, attributes: attributes,
                dedupKey: "liveness:\(device.id):device.offline:\(since.milliseconds)", driver: "liveness")
        case .online(let since, let downSince):
            var attributes: [String: JSONValue] = ["probe": .string(probe.rawValue)]
            if let downSince { attributes["downSeconds"] = .number(Double(max(0, since.milliseconds - downSince.milliseconds) / 1000)) }
            return HealthEventDetail(
                occurredAt: since, receivedAt: now, attributes: attributes,
                dedupKey: "liveness:\(device.id):device.online:\(since.milliseconds)", driver: "liveness")
        }
    }

    private func loadTracker(_ id: String) async -> LivenessTracker {
        do {
            guard let text = try await pipeline.queue.deviceCursor(Self.cursorKey(id)) else { return LivenessTracker() }
            return try JSONDecoder().decode(LivenessTracker.self, from: Data(text.utf8))
        } catch {
            logger.warning("liveness: stored state unreadable, starting unknown", metadata: ["gatehouse.device": "\(id)", "error": "\(error)"])
            return LivenessTracker()
        }
    }
}
