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
    /// One camera's figures, for the status log and tests.
    public struct CameraFigures: Sendable, Equatable {
        public var snapshots = 0
        /// When the last snapshot was asked for, on the monitor's clock.
        public var lastAskedAt: Timestamp?
        public var failures = 0
        public var lastError: String?
        public var lastScores: PictureScores?
        public var degraded: PictureProblem?
    }

    struct Camera: Sendable {
        var device: DeviceConfig
        var settings: CameraPictureHealth
        var url: String
    }

    private let pipeline: IngestPipeline
    private let settings: PictureHealthSettings
    private let cameras: [Camera]
    private let clock: any DriverClock
    private let logger: Logger
    private let state = Mutex<(figures: [String: CameraFigures], thumbnails: [String: Thumbnail])>(([:], [:]))

    public init(pipeline: IngestPipeline, settings: PictureHealthSettings, devices: [DeviceConfig], clock: any DriverClock, logger: Logger) {
        self.pipeline = pipeline
        self.settings = settings
        self.clock = clock
        self.logger = logger
        cameras = devices.compactMap { device in
            guard device.enabled, let health = device.pictureHealth, let url = health.snapshotURL else { return nil }
            return Camera(device: device, settings: health, url: url)
        }
    }

    /// Cameras this monitor looks at.
    public var cameraCount: Int { cameras.count }

    public func figures(_ deviceID: String) -> CameraFigures? { state.withLock { $0.figures[deviceID] } }

    static func cursorKey(_ deviceID: String) -> String { "picture-health:\(deviceID)" }

    /// Runs until cancelled.
    public func run() async {
        guard !cameras.isEmpty else { return }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let fetcher = SnapshotFetcher(client: client, timeout: .milliseconds(Int64(settings.timeoutSeconds * 1000)), maxBytes: Int(settings.maxSnapshotBytes))
        logger.info("picture health: \(cameras.count) cameras, at most \(settings.concurrency) snapshots at once")
        // Staggered: camera i's first snapshot falls i/n of its interval after start, so 500
        // cameras on a 10-minute interval make a snapshot every 1.2 s, not a burst.
        let cameras = cameras
        let rounds = StaggeredRounds(intervals: cameras.map(\.settings.intervalSeconds), concurrency: settings.concurrency, clock: clock)
        await rounds.run(nextDelay: { cameras[$0].settings.intervalSeconds }) { index in
            await self.look(at: cameras[index], fetcher: fetcher)
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
        state.withLock { $0.figures[id, default: CameraFigures()].lastAskedAt = askedAt }
        do {
            let bytes = try await fetcher.fetch(camera.url, username: camera.device.credentials?.username, password: camera.device.credentials?.password)
            let picture = try GreyPicture.decodeJPEG(bytes, maxPixels: 50_000_000)
            let previous = state.withLock { $0.thumbnails[id] }
            let scored = PictureScores.score(picture, previous: previous)
            scores = scored.scores
            state.withLock {
                $0.thumbnails[id] = scored.thumbnail
                $0.figures[id, default: CameraFigures()].snapshots += 1
                $0.figures[id, default: CameraFigures()].lastScores = scores
            }
        } catch {
            // Whether the camera is reachable is liveness's question; picture health just has no verdict.
            state.withLock {
                $0.figures[id, default: CameraFigures()].failures += 1
                $0.figures[id, default: CameraFigures()].lastError = "\(error)"
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
            state.withLock { $0.figures[id, default: CameraFigures()].degraded = judge.degradation?.reason }
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
