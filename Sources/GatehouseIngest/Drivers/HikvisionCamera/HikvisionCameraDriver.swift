import Foundation
import GatehouseCore
import GatehouseProfiles
import GatehouseQueue
import Hummingbird
import Synchronization

/// Hikvision ISAPI cameras and NVRs: the gateway holds `alertStream` open with Digest
/// (`mode: stream`), or the camera posts each `EventNotificationAlert` to
/// `POST /v1/hikvision-camera/{device}` (`mode: listen`). Both feed one `AlarmTracker` per
/// device, so a repeated alarm is one start and its end (said, or gone quiet) one stop.
/// See Drivers/HikvisionCamera/README.md.
public final class HikvisionCameraDriver: Driver {
    public let name = "hikvision-camera"
    /// Stream devices hold their stream; listen devices close alarms that went quiet.
    public let runsPerDevice = true
    let alarms = HikvisionCameraAlarms()
    let images = ImageStore()
    /// One HTTP client for every camera's alertStream; the stall decision is each stream's, on
    /// the injected clock, so the client needs only a connect timeout.
    private let http = SharedHTTPClient(connectTimeout: .seconds(10))
    /// The beat every open alertStream's watchdog checks on (stall, quiet stops).
    let ticker = StreamTicker(interval: .milliseconds(250))

    public init() {}

    public var options: DriverOptionSet { DriverOptionSet(HikvisionCameraOptions.declarations) }

    public func validate(device: DeviceConfig) -> [String] { HikvisionCameraOptions.problems(in: device) }

    // MARK: - Listening mode

    public func mountRoutes(on router: RouterGroup<IngestRequestContext>, context: DriverContext) {
        router.post("/v1/hikvision-camera/:device") { request, requestContext in
            await context.push(request, requestContext, driver: self.name) { push in
                // The device is the route's and its credentials', never the payload's ipAddress.
                let device = try push.authorize(deviceID: push.parameter("device") ?? "")
                let body = try await push.body()
                let options = HikvisionCameraOptions(device.config)
                let parsed = try await push.decode(body, device: device.config) { () throws(PayloadError) in
                    try HikvisionCameraPush.parse(body, contentType: push.contentType)
                }
                let reading = HikvisionCameraMapping.read(
                    parsed.alert, zone: device.config.timeZone, extraKinds: options.kinds, now: device.clock.now,
                    pictures: parsed.pictures.count)
                if case .elsewhere(let reason) = reading {
                    // Kept (sealed) rather than mapped twice; answered OK so the camera does not resend forever.
                    _ = try await push.quarantine(body, reason: reason, device: device.config)
                    return Self.ok
                }
                var drafts = self.drafts(for: reading, device: device)
                if !drafts.isEmpty, !parsed.pictures.isEmpty, device.config.images.store {
                    // Written (and fsynced) before the events that name them are committed.
                    do {
                        let references = try self.images.store(parsed.pictures, settings: device.config.images)
                        for index in drafts.indices { drafts[index].attributes?["images"] = .array(references.map(\.json)) }
                    } catch {
                        device.logger.warning("\(error)")
                    }
                }
                if drafts.isEmpty {
                    await device.seen()
                } else {
                    try await push.commit(drafts, device: device)
                }
                return Self.ok
            }
        }
    }

    /// `ResponseStatus` OK, the reply every firmware takes as delivered.
    static var ok: Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/xml"
        let xml = #"<?xml version="1.0" encoding="UTF-8"?><ResponseStatus version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema"><requestURL></requestURL><statusCode>1</statusCode><statusString>OK</statusString><subStatusCode>ok</subStatusCode></ResponseStatus>"#
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: xml)))
    }

    /// Quarantine replay: the alert as an instant (the tracker that saw it live is gone).
    public func decode(_ payload: RawPayload, device: DeviceConfig) throws(PayloadError) -> [EventDraft] {
        let parsed: HikvisionCameraAlert
        if let type = payload.contentType, type.lowercased().hasPrefix("multipart/") {
            parsed = try HikvisionCameraPush.parse(payload.body, contentType: type).alert
        } else {
            parsed = try HikvisionCameraAlert.parse(payload.body)
        }
        switch HikvisionCameraMapping.read(parsed, zone: device.timeZone, extraKinds: HikvisionCameraOptions(device).kinds, now: .now) {
        case .heartbeat: return []
        case .elsewhere(let reason): throw PayloadError(reason)
        case .signal(_, let draft): return [draft]
        }
    }

    /// The drafts one reading makes for a device: none for a heartbeat or a repeat, a start or a stop otherwise.
    func drafts(for reading: HikvisionCameraReading, device: DeviceContext) -> [EventDraft] {
        guard case .signal(let signal, let draft) = reading else { return [] }
        let now = device.clock.now
        let transition = alarms.observe(signal, device: device.config, now: now)
        guard let transition else { return [] }
        var event = draft
        event.apply(transition)
        return [event]
    }

    // MARK: - Per device

    public func run(device: DeviceConfig, context: DriverContext) async throws {
        let camera = context.device(device)
        let options = HikvisionCameraOptions(device)
        alarms.configure(device: device, quiet: .milliseconds(Int64(options.quietSeconds * 1000)))
        switch options.mode {
        case .listen:
            // Pushes come through the route; what is left is closing alarms the camera stopped repeating.
            while !Task.isCancelled {
                try await camera.clock.sleep(for: .seconds(1))
                try await closeQuiet(camera)
            }
        case .stream:
            try await http.withClient { client in
                try await HikvisionAlertStreamClient(driver: self, device: camera, options: options).run(client: client)
            }
        }
    }

    /// Commits stops for alarms the device has not repeated within `quiet_seconds`.
    func closeQuiet(_ device: DeviceContext) async throws {
        let stops = alarms.expire(device: device.config, now: device.clock.now)
        guard !stops.isEmpty else { return }
        let drafts = stops.map(\.draft)
        _ = try await device.submit(drafts)
    }
}

/// One `AlarmTracker` per device, shared by its stream task and its pushed requests.
final class HikvisionCameraAlarms: Sendable {
    private struct Entry {
        var tracker: AlarmTracker
        /// Points with a video loss open: there an `inactive` videoloss is its end, elsewhere a keep-alive.
        var videoLoss: Set<String> = []
    }
    private let entries = Mutex<[String: Entry]>([:])

    func configure(device: DeviceConfig, quiet: Duration) {
        entries.withLock { table in
            var entry = table[device.id] ?? Entry(tracker: AlarmTracker(deviceID: device.id))
            entry.tracker.settings.quiet = quiet
            table[device.id] = entry
        }
    }

    /// Whether an `inactive` videoloss on `point` is a keep-alive: no video loss is open there.
    func isKeepAlive(_ signal: AlarmSignal, device: DeviceConfig) -> Bool {
        guard signal.kind == .cameraVideoLoss, signal.edge == .inactive else { return false }
        return entries.withLock { !($0[device.id]?.videoLoss.contains(signal.point ?? "") ?? false) }
    }

    func observe(_ signal: AlarmSignal, device: DeviceConfig, now: Timestamp) -> AlarmTransition? {
        entries.withLock { table in
            var entry = table[device.id] ?? Entry(tracker: AlarmTracker(deviceID: device.id, settings: .init(quiet: .seconds(5))))
            defer { table[device.id] = entry }
            if signal.kind == .cameraVideoLoss {
                if signal.edge == .inactive {
                    // The camera's keep-alive: `videoloss inactive` every few seconds, with no video loss ongoing.
                    guard entry.videoLoss.remove(signal.point ?? "") != nil else { return nil }
                } else {
                    entry.videoLoss.insert(signal.point ?? "")
                }
            }
            return entry.tracker.observe(signal, now: now)
        }
    }

    func expire(device: DeviceConfig, now: Timestamp) -> [AlarmTransition] {
        entries.withLock { table in
            guard var entry = table[device.id] else { return [] }
            let stops = entry.tracker.expire(now: now)
            for stop in stops where stop.kind == .cameraVideoLoss { entry.videoLoss.remove(stop.point ?? "") }
            table[device.id] = entry
            return stops
        }
    }
}

/// A device's options (typed by `declarations`) and what the stream needs from its entry.
struct HikvisionCameraOptions: Equatable {
    enum Mode: String { case stream, listen }
    var mode: Mode = .stream
    var quietSeconds: Double = 5
    var stallSeconds: Double = 60
    var reconnectInitialSeconds: Double = 1
    var reconnectMaxSeconds: Double = 60
    var authRetrySeconds: Double = 300
    var maxPartBytes = 1 << 20
    var kinds: [String: EventKind] = [:]
    /// `http://host:port` of the camera (stream).
    var baseURL: String?
    var username: String?
    var password: String?
    var useDigest = true

    /// The options a hikvision-camera device takes (README: Config).
    static let declarations: [OptionDeclaration] = [
        OptionDeclaration("mode", .choice(["stream", "listen"]), default: .string("stream"), "stream: we hold alertStream open; listen: the camera posts alerts"),
        OptionDeclaration("quiet_seconds", .double(0.5...3600), default: .double(5), "close an alarm the camera stopped repeating after this long"),
        OptionDeclaration("stall_seconds", .double(1...3600), default: .double(60), "mode stream: reconnect when no byte came for this long"),
        OptionDeclaration("reconnect_initial_seconds", .double(0.1...600), default: .double(1), "mode stream: first pause before reconnecting"),
        OptionDeclaration("reconnect_max_seconds", .double(1...3600), default: .double(60), "mode stream: longest pause before reconnecting"),
        OptionDeclaration("auth_retry_seconds", .double(5...86400), default: .double(300), "mode stream: pause after the camera refused the password"),
        OptionDeclaration("max_part_bytes", .size(minimum: 4096), default: .size(1 << 20), "mode stream: longest part kept in memory"),
        OptionDeclaration("kinds", .kindTable, "extra or changed eventType: kind rows (e.g. myDetector: camera.intrusion)"),
    ]

    init(_ device: DeviceConfig) {
        let options = device.options
        mode = options.string("mode").flatMap(Mode.init(rawValue:)) ?? .stream
        if let value = options.double("quiet_seconds") { quietSeconds = value }
        if let value = options.double("stall_seconds") { stallSeconds = value }
        if let value = options.double("reconnect_initial_seconds") { reconnectInitialSeconds = value }
        if let value = options.double("reconnect_max_seconds") { reconnectMaxSeconds = max(value, reconnectInitialSeconds) }
        if let value = options.double("auth_retry_seconds") { authRetrySeconds = value }
        if let value = options.size("max_part_bytes") { maxPartBytes = Int(clamping: value) }
        // Firmware writes `VMD` and `vmd`: the table is matched without regard to case.
        kinds = Dictionary(options.kindTable("kinds").map { ($0.code.lowercased(), $0.kind) }, uniquingKeysWith: { _, last in last })
        let client = ISAPIClientConfig(device)
        (baseURL, username, password, useDigest) = (client.baseURL, client.username, client.password, client.useDigest)
    }

    static func problems(in device: DeviceConfig) -> [String] {
        guard (device.options.string("mode") ?? Mode.stream.rawValue) == Mode.stream.rawValue else { return [] }
        return ISAPIClientConfig.problems(in: device, noun: "camera", mode: "stream", example: "192.168.10.61")
    }
}
