import AsyncHTTPClient
import Crypto
import Foundation
import GatehouseCore
import GatehouseQueue
import Logging
import NIOCore
import Synchronization

/// Looks at every camera with a `picture_health:` block, whatever its driver: fetches a snapshot
/// on the camera's interval (first fetches staggered over one interval, at most
/// `picture_health.concurrency` at once, one shared HTTP client), decodes it at reduced scale,
/// scores it, and queues `camera.image-degraded` / `camera.image-restored` through the pipeline
/// (spec 0004). Each camera's judge is persisted as a device cursor of its own
/// (`picture-health:<device id>`) in the transaction of the event it caused, so a restart
/// neither re-announces a degradation nor forgets a baseline. No picture is ever written.
public final class PictureHealthMonitor: Sendable {
    /// One camera's figures, for the status log, `gatehouse status` and tests.
    public struct CameraFigures: Sendable, Equatable, Codable {
        /// Snapshots fetched and scored.
        public var snapshots = 0
        /// When the last snapshot was asked for, on the monitor's clock.
        public var lastAskedAt: Timestamp?
        /// When the last usable snapshot was scored.
        public var lastSnapshotAt: Timestamp?
        /// Snapshots that failed (timeout, HTTP error, not a JPEG).
        public var failures = 0
        public var lastError: String?
        public var lastErrorAt: Timestamp?
        public var lastScores: PictureScores?
        /// Decoding and scoring the last snapshot took this long (a 4K camera costs more than a
        /// 640×360 one): measured, never used for a decision.
        public var lastScoreMilliseconds: Double?
        /// The learned sharpness baseline; nil while learning (or with a fixed `min_sharpness`).
        public var baseline: Double?
        /// The sharpness below which a picture counts as blurred now; nil until six samples.
        public var sharpnessLimit: Double?
        public var degraded: PictureProblem?
        public var degradedSince: Timestamp?

        public init() {}

        /// `ok`, `degraded: <reason>`, or `no snapshot yet`.
        public var state: String {
            if let degraded { return "degraded: \(degraded.rawValue)" }
            return lastScores == nil ? "no snapshot yet" : "ok"
        }

        /// The last attempt failed: the camera's picture is not being looked at now.
        public var failing: Bool {
            guard let lastErrorAt else { return false }
            return lastSnapshotAt.map { lastErrorAt > $0 } ?? true
        }
    }

    struct Camera: Sendable {
        var device: DeviceConfig
        var settings: CameraPictureHealth
        var url: String
    }

    /// Everything that changes: the cameras (reloaded on SIGHUP), their schedule and figures.
    private struct State {
        var settings: PictureHealthSettings
        /// Camera ids in config order; a camera's due time and figures live under its id, so a
        /// reload keeps them for the cameras it keeps.
        var order: [String] = []
        var cameras: [String: Camera] = [:]
        var due: [String: Int64] = [:]
        var busy: Set<String> = []
        var figures: [String: CameraFigures] = [:]
        var thumbnails: [String: Thumbnail] = [:]
        /// ONVIF cameras' snapshot URIs, as GetSnapshotUri named them; dropped after a failed snapshot.
        var snapshotURIs: [String: String] = [:]
    }

    private let pipeline: IngestPipeline
    private let clock: any DriverClock
    private let logger: Logger
    private let state: Mutex<State>
    private let slotFreed = WakeUpSignal()

    public init(pipeline: IngestPipeline, settings: PictureHealthSettings, devices: [DeviceConfig], clock: any DriverClock, logger: Logger) {
        self.pipeline = pipeline
        self.clock = clock
        self.logger = logger
        var initial = State(settings: settings)
        _ = Self.replaceCameras(&initial, with: Self.cameras(devices), now: clock.now.milliseconds)
        state = Mutex(initial)
    }

    static func cameras(_ devices: [DeviceConfig]) -> [Camera] {
        devices.compactMap { device in
            guard device.enabled, let health = device.pictureHealth else { return nil }
            // An ONVIF camera's URL is its device service, asked for the snapshot URI.
            let url = health.source == .onvif ? device.address.map(ONVIFOptions.deviceServiceURL) : health.snapshotURL
            guard let url else { return nil }
            return Camera(device: device, settings: health, url: url)
        }
    }

    /// Cameras this monitor looks at.
    public var cameraCount: Int { state.withLock { $0.order.count } }

    public func figures(_ deviceID: String) -> CameraFigures? { state.withLock { $0.figures[deviceID] } }

    /// Every configured camera's figures, by device id (a camera not yet looked at has empty ones).
    public var allFigures: [String: CameraFigures] {
        state.withLock { s in Dictionary(uniqueKeysWithValues: s.order.map { ($0, s.figures[$0] ?? CameraFigures()) }) }
    }

    static func cursorKey(_ deviceID: String) -> String { "picture-health:\(deviceID)" }

    /// SIGHUP: takes the new `picture_health:` settings and cameras. A kept camera keeps its
    /// phase, figures and thumbnail (its judge, with the learned baseline and any open
    /// degradation, is in the queue and read at each snapshot, so new thresholds apply from the
    /// next one); an added camera starts staggered over its interval; a removed camera's stored
    /// state is deleted. Returns what changed, for the reload log line.
    public func apply(settings: PictureHealthSettings, devices: [DeviceConfig]) async -> [String] {
        let next = Self.cameras(devices)
        let (changes, removed) = state.withLock { s -> ([String], [String]) in
            var changes: [String] = []
            if s.settings != settings { changes.append("picture health settings changed") }
            s.settings = settings
            let (added, removed, changed) = Self.replaceCameras(&s, with: next, now: clock.now.milliseconds)
            changes += added.map { "picture health on \($0)" } + removed.map { "picture health off \($0)" }
                + changed.map { "picture health of \($0) changed" }
            return (changes, removed)
        }
        for id in removed { await forget(id) }
        slotFreed.signal()  // the schedule changed: the run loop recomputes its next wake-up
        return changes
    }

    /// Replaces the cameras in `s`, keeping the schedule and figures of those that stay.
    private static func replaceCameras(_ s: inout State, with next: [Camera], now: Int64) -> (added: [String], removed: [String], changed: [String]) {
        let old = s.cameras
        s.order = next.map(\.device.id)
        s.cameras = Dictionary(next.map { ($0.device.id, $0) }, uniquingKeysWith: { first, _ in first })
        let added = next.filter { old[$0.device.id] == nil }
        // Staggered: added camera i's first snapshot falls i/n of its interval from now, so 500
        // cameras on a 10-minute interval make a snapshot every 1.2 s, not a burst.
        for (index, camera) in added.enumerated() {
            s.due[camera.device.id] = now + Int64(camera.settings.intervalSeconds * 1000 * Double(index) / Double(added.count))
        }
        var changed: [String] = []
        for camera in next {
            // The device entry itself always differs (its line in the file); what picture health uses is compared.
            guard let previous = old[camera.device.id], previous.settings != camera.settings || previous.url != camera.url else { continue }
            changed.append(camera.device.id)
            s.snapshotURIs[camera.device.id] = nil
            // A shorter interval takes effect now, not after the old, longer one.
            let interval = Int64(camera.settings.intervalSeconds * 1000)
            if let due = s.due[camera.device.id], due > now + interval { s.due[camera.device.id] = now + interval }
        }
        let removed = old.keys.filter { s.cameras[$0] == nil }.sorted()
        for id in removed {
            s.due[id] = nil
            s.figures[id] = nil
            s.thumbnails[id] = nil
            s.snapshotURIs[id] = nil
        }
        return (added.map(\.device.id), removed, changed)
    }

    /// Deletes a camera's stored judge once it is no longer configured.
    private func forget(_ id: String) async {
        do {
            try await pipeline.queue.deleteDeviceCursor(Self.cursorKey(id))
        } catch {
            logger.warning("picture health: could not delete the state of a removed camera", metadata: ["gatehouse.device": "\(id)", "error": "\(error)"])
        }
    }

    private func isConfigured(_ id: String) -> Bool { state.withLock { $0.cameras[id] != nil } }

    /// Runs until cancelled; with no camera it waits for a reload that adds some.
    public func run() async {
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .periodicChecks)
        let (count, concurrency) = state.withLock { ($0.order.count, $0.settings.concurrency) }
        if count > 0 { logger.info("picture health: \(count) cameras, at most \(concurrency) snapshots at once") }
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                let now = clock.now.milliseconds
                // A camera whose last snapshot is still being fetched waits for it: never two at once.
                let (starting, settings) = state.withLock { s -> ([Camera], PictureHealthSettings) in
                    var starting: [Camera] = []
                    for id in s.order where s.busy.count < s.settings.concurrency {
                        guard let due = s.due[id], due <= now, !s.busy.contains(id), let camera = s.cameras[id] else { continue }
                        s.busy.insert(id)
                        // The next time keeps the camera's phase; a camera late past a whole interval skips it.
                        let interval = Int64(camera.settings.intervalSeconds * 1000)
                        s.due[id] = due + interval <= now ? now + interval : due + interval
                        starting.append(camera)
                    }
                    return (starting, s.settings)
                }
                let fetcher = SnapshotFetcher(client: client, timeout: .milliseconds(Int64(settings.timeoutSeconds * 1000)), maxBytes: Int(settings.maxSnapshotBytes))
                for camera in starting {
                    group.addTask {
                        await self.look(at: camera, fetcher: fetcher)
                        let id = camera.device.id
                        self.state.withLock { _ = $0.busy.remove(id) }
                        // Removed by a reload while its snapshot ran: its verdict may have re-created the row.
                        if !self.isConfigured(id) { await self.forget(id) }
                        self.slotFreed.signal()
                    }
                }
                // Until the next due camera that can start, or until a snapshot ends and frees a slot.
                let next = state.withLock { s -> Int64? in
                    guard s.busy.count < s.settings.concurrency else { return nil }
                    return s.order.filter { !s.busy.contains($0) }.compactMap { s.due[$0] }.min()
                }
                let delay = next.map { $0 - clock.now.milliseconds }
                // Already due (time moved while starting the others): start it now rather than wait a tick.
                if let delay, delay <= 0 { continue }
                await slotFreed.wait(timeout: delay.map { .milliseconds($0) }, clock: clock)
            }
        }
        try? await client.shutdown()
    }

    /// One snapshot of one camera: fetch, decode, score, judge, persist.
    func look(at camera: Camera, fetcher: SnapshotFetcher) async {
        let id = camera.device.id
        var log = logger
        log[metadataKey: "gatehouse.device"] = "\(id)"
        let scores: PictureScores
        let askedAt = clock.now
        record(id) { $0.lastAskedAt = askedAt }
        do {
            let url = try await snapshotURL(camera, fetcher: fetcher)
            let bytes = try await fetcher.fetch(url, username: camera.device.credentials?.username, password: camera.device.credentials?.password)
            let started = ContinuousClock.now
            let picture = try GreyPicture.decodeJPEG(bytes, maxPixels: 50_000_000)
            let previous = state.withLock { $0.thumbnails[id] }
            let scored = PictureScores.score(picture, previous: previous)
            let cost = ContinuousClock.now - started
            scores = scored.scores
            let scoredAt = clock.now
            record(id, thumbnail: scored.thumbnail) {
                $0.snapshots += 1
                $0.lastScores = scores
                $0.lastSnapshotAt = scoredAt
                $0.lastScoreMilliseconds = Double(cost.components.attoseconds / 1_000_000_000_000) / 1000 + Double(cost.components.seconds) * 1000
            }
        } catch {
            // Whether the camera is reachable is liveness's question; picture health just has no verdict.
            let failedAt = clock.now
            // A camera that moved its snapshot (new firmware, a 404) is asked for it again next time.
            state.withLock { _ = $0.snapshotURIs.removeValue(forKey: id) }
            record(id) {
                $0.failures += 1
                $0.lastError = "\(error)"
                $0.lastErrorAt = failedAt
            }
            log.warning("picture health: no usable snapshot", metadata: ["error": "\(error)"])
            return
        }
        do {
            var judge = try await loadJudge(id)
            let transition = judge.observe(scores, at: clock.now, settings: camera.settings)
            let drafts = transition.map { [Self.draft($0, device: camera.device, scores: scores, judge: judge, settings: camera.settings)] } ?? []
            let events = drafts.map { pipeline.makeEvent($0, device: camera.device, driver: "picture-health", receivedAt: clock.now) }
            let cursor = String(decoding: try JSONEncoder().encode(judge), as: UTF8.self)
            _ = try await pipeline.queue.append(events, cursor: DeviceCursorUpdate(deviceID: Self.cursorKey(id), cursor: cursor), receivedAt: clock.now)
            record(id) {
                $0.degraded = judge.degradation?.reason
                $0.degradedSince = judge.degradation?.since
                $0.baseline = judge.baseline
                $0.sharpnessLimit = judge.blurLimit(camera.settings)
            }
            switch transition {
            case .degraded(let open, let problems)?:
                log.notice("picture degraded: \(open.reason.rawValue)", metadata: ["problems": "\(problems.map(\.rawValue).joined(separator: ","))"])
            case .restored(let open, _)?:
                log.notice("picture restored (was \(open.reason.rawValue))")
            case nil:
                break
            }
        } catch {
            log.error("picture health: could not record the snapshot's verdict", metadata: ["error": "\(error)"])
        }
    }

    /// The URL to fetch: the configured or brand one, or the ONVIF camera's GetSnapshotUri (cached).
    private func snapshotURL(_ camera: Camera, fetcher: SnapshotFetcher) async throws -> String {
        guard camera.settings.source == .onvif else { return camera.url }
        let id = camera.device.id
        if let cached = state.withLock({ $0.snapshotURIs[id] }) { return cached }
        let uri = try await ONVIFSnapshotURI.resolve(
            deviceServiceURL: camera.url, credentials: camera.device.credentials, zone: camera.device.timeZone, http: fetcher.client, clock: clock,
            timeout: .nanoseconds(fetcher.timeout.nanoseconds))
        state.withLock { s in
            if s.cameras[id] != nil { s.snapshotURIs[id] = uri }
        }
        return uri
    }

    /// Updates a camera's figures (and thumbnail), unless a reload removed it meanwhile.
    private func record(_ id: String, thumbnail: Thumbnail? = nil, _ update: (inout CameraFigures) -> Void) {
        state.withLock { s in
            guard s.cameras[id] != nil else { return }
            if let thumbnail { s.thumbnails[id] = thumbnail }
            update(&s.figures[id, default: CameraFigures()])
        }
    }

    private func loadJudge(_ id: String) async throws -> PictureHealthJudge {
        guard let text = try await pipeline.queue.deviceCursor(Self.cursorKey(id)) else { return PictureHealthJudge() }
        do {
            return try JSONDecoder().decode(PictureHealthJudge.self, from: Data(text.utf8))
        } catch {
            logger.warning("picture health: stored state unreadable, learning again", metadata: ["gatehouse.device": "\(id)", "error": "\(error)"])
            return PictureHealthJudge()
        }
    }

    /// The event a transition becomes: an alarm that lasts (spec 0003's `state` and `alarm`),
    /// its id derived from the device and the degradation's start, so a stop names its start.
    static func draft(
        _ transition: PictureHealthJudge.Transition, device: DeviceConfig, scores: PictureScores, judge: PictureHealthJudge,
        settings: CameraPictureHealth
    ) -> EventDraft {
        var attributes: [String: JSONValue] = [
            "sharpness": .number(rounded(scores.sharpness)), "brightness": .number(rounded(scores.brightness)),
            "contrast": .number(rounded(scores.contrast)),
        ]
        if let change = scores.change { attributes["change"] = .number(rounded(change)) }
        if let limit = judge.blurLimit(settings) { attributes["sharpnessLimit"] = .number(rounded(limit)) }
        switch transition {
        case .degraded(let open, let problems):
            let id = alarmID(device: device.id, since: open.since)
            attributes["reason"] = .string(open.reason.rawValue)
            attributes["problems"] = .array(problems.map { .string($0.rawValue) })
            attributes["snapshots"] = .number(Double(judge.badStreak))
            return EventDraft(
                kind: .cameraImageDegraded, occurredAt: open.since, point: device.point, attributes: attributes,
                dedupKey: "alarm:\(id):start", state: .start, alarm: AlarmRef(id: id, incident: id))
        case .restored(let open, let at):
            let id = alarmID(device: device.id, since: open.since)
            attributes["reason"] = .string(open.reason.rawValue)
            attributes["degradedSeconds"] = .number(Double(max(0, at.milliseconds - open.since.milliseconds) / 1000))
            return EventDraft(
                kind: .cameraImageRestored, occurredAt: at, point: device.point, attributes: attributes,
                dedupKey: "alarm:\(id):stop", state: .stop, alarm: AlarmRef(id: id, incident: id, startedAt: open.since))
        }
    }

    static func alarmID(device: String, since: Timestamp) -> String {
        SHA256.hash(data: Data("\(device)|picture|\(since.milliseconds)".utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    static func rounded(_ value: Double) -> Double { (value * 100).rounded() / 100 }
}

extension DeviceConfig {
    /// The username and password a gateway-initiated request logs in with (`auth:` with username/password).
    var credentials: (username: String, password: String)? {
        switch auth {
        case .basic(let user, let secret), .digest(let user, let secret): (user, secret.value)
        default: nil
        }
    }
}
