import AsyncHTTPClient
import Foundation
import GatehouseCore
import GatehouseProfiles
import GatehouseQueue
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Dahua cameras, NVRs, ITC/traffic cameras and door stations (and OEM firmware: Amcrest,
/// Lorex, …): the `eventManager.cgi?action=attach` event stream read with Digest auth
/// (`mode: attach`), and the RPC `client.notifyEventStream` envelope (or the HTTP-upload
/// `{"Events":[…]}`) pushed to `POST /v1/dahua/{device}` (any mode). See Drivers/Dahua/README.md.
public struct DahuaDriver: Driver {
    public let name = "dahua"
    public let runsPerDevice = true
    private let alarms = DahuaAlarms()
    private let plateProfiles = DahuaPlateProfiles()
    /// One HTTP client for every attach stream. Its timeouts are backstops only: the stall
    /// decision is each stream's own, on the injected clock (`heartbeat_seconds` ×
    /// `stall_heartbeats`); the read backstop is 12 heartbeats of the longest heartbeat allowed.
    let http = SharedHTTPClient(connectTimeout: .seconds(30), readTimeout: .seconds(12 * 60))
    /// The beat of every attach stream's watchdog; each stream checks once per heartbeat interval.
    let ticker = StreamTicker(interval: .seconds(1))

    public init() {}

    // MARK: - Config

    public var options: DriverOptionSet { DriverOptionSet(DahuaSettings.declarations) }

    public func validate(device: DeviceConfig) -> [String] { DahuaSettings.problems(in: device) }

    public func reload(config: GatehouseConfig) -> [String] {
        plateProfiles.clear()
        return []
    }

    func mapper(for device: DeviceConfig) -> DahuaEventMapper {
        DahuaEventMapper(device: device, plates: plateProfiles.profile(in: device.adaptersDirectory))
    }

    // MARK: - Attach stream

    public func run(device: DeviceConfig, context: DriverContext) async throws {
        let settings = try DahuaSettings(device)
        let deviceContext = context.device(device)
        guard settings.mode == .attach else {
            try await expireQuietAlarms(deviceContext)
            return
        }
        logger(deviceContext).info("dahua \(settings.baseURL ?? "?"): attaching to codes [\(settings.codes)], heartbeat \(settings.heartbeatSeconds) s")
        try await http.withClient { client in
            await DahuaAttachClient(settings: settings, context: deviceContext, client: client, alarms: alarms, mapper: mapper(for: device), ticker: ticker).run()
        }
    }

    private func logger(_ context: DeviceContext) -> Logger { context.logger }

    /// A pushing camera has no stream whose heartbeat would close alarms it stopped reporting:
    /// look for quiet ones on the clock.
    private func expireQuietAlarms(_ context: DeviceContext) async throws {
        let quiet = DahuaSettings.quiet(context.config)
        let tick = quiet.map { min(max($0 / 10, .seconds(1)), .seconds(30)) } ?? .seconds(3600)
        while !Task.isCancelled {
            // Cancelled at shutdown: an ordinary end, not a failure to report.
            do { try await context.clock.sleep(for: tick) } catch { return }
            let stops = alarms.expire(device: context.config.id, now: context.clock.now).map(\.draft)
            if !stops.isEmpty { _ = try? await context.submit(stops) }
        }
    }

    // MARK: - RPC push

    public func mountRoutes(on router: RouterGroup<IngestRequestContext>, context: DriverContext) {
        router.post("/v1/dahua/:device") { request, requestContext in
            await context.push(request, requestContext, driver: name) { push in
                let device = try push.authorize(deviceID: push.parameter("device") ?? "")
                let body = try await push.body()
                let envelope = try await push.decode(body, device: device.config) { () throws(PayloadError) in
                    try DahuaPush.parse(body, contentType: push.contentType)
                }
                await device.seen()
                let mapper = mapper(for: device.config)
                let now = device.clock.now
                var drafts: [EventDraft] = []
                var kept: [QuarantineRecord] = []
                for item in envelope.items {
                    switch item {
                    case .event(let event):
                        do {
                            drafts += try alarms.withTracker(device: device.config) { tracker throws(PayloadError) in
                                try mapper.drafts(for: event, tracker: &tracker, now: now)
                            }
                        } catch {
                            kept.append(push.record(event.raw, reason: "\(event.code): \(error)", device: device.config))
                        }
                    case .malformed(let bytes, let reason):
                        kept.append(push.record(bytes, reason: reason, device: device.config))
                    case .heartbeat:
                        break
                    }
                }
                try await push.commit(drafts, device: device, quarantine: kept)
                return DahuaPush.reply(id: envelope.id)
            }
        }
    }

    /// Quarantine replay: a stream record (text) or a pushed envelope (JSON). Start/Stop map
    /// with a fresh tracker, so a replayed stop has no `startedAt`.
    public func decode(_ payload: RawPayload, device: DeviceConfig) throws(PayloadError) -> [EventDraft] {
        let envelope = try DahuaPush.parse(payload.body, contentType: payload.contentType)
        var tracker = AlarmTracker(deviceID: device.id)
        let mapper = mapper(for: device)
        var drafts: [EventDraft] = []
        for item in envelope.items {
            switch item {
            case .event(let event): drafts += try mapper.drafts(for: event, tracker: &tracker, now: .now)
            case .malformed(_, let reason): throw PayloadError(reason)
            case .heartbeat: break
            }
        }
        return drafts
    }
}

extension PushRequest {
    /// A part of a push that could not be mapped, kept beside the events that could.
    func record(_ bytes: [UInt8], reason: String, device: DeviceConfig) -> QuarantineRecord {
        QuarantineRecord(
            deviceID: device.id, driver: driver, route: route, contentType: contentType, remote: remoteIP, reason: reason,
            payload: Data(bytes))
    }
}

/// The bodies Dahua firmware pushes: the RPC envelope `{"method":"client.notifyEventStream",
/// "params":{"eventList":[{"Code","Action","Index","Data"}]},"id":…}`, the HTTP upload
/// `{"Events":[…]}`, or the stream's own `Code=…;action=…;data=…` text.
enum DahuaPush {
    struct Envelope {
        var id: JSONValue?
        var items: [DahuaStreamItem]
    }

    static func parse(_ body: [UInt8], contentType: String?) throws(PayloadError) -> Envelope {
        let first = body.first { !DahuaStreamParser.isSpace($0) }
        guard first == UInt8(ascii: "{") else {
            var parser = DahuaStreamParser()
            let items = parser.feed(body) + parser.finish()
            guard items.contains(where: { if case .event = $0 { true } else { false } }) else {
                throw PayloadError("neither a notifyEventStream JSON envelope nor Code=…;action=… records")
            }
            return Envelope(id: nil, items: items)
        }
        let json: JSONValue
        do {
            json = try DahuaStreamParser.decodeJSON(body)
        } catch {
            throw PayloadError("not valid JSON: \(error)")
        }
        guard case .object(let object) = json else { throw PayloadError("not a JSON object") }
        let method = object["method"]?.stringValue
        var list: JSONValue?
        if case .object(let params)? = object["params"] { list = params["eventList"] }
        list = list ?? object["Events"]
        guard case .array(let entries)? = list else {
            // Other RPC calls a camera makes on the same connection (keep-alives) carry no events.
            if let method, method != "client.notifyEventStream" { return Envelope(id: object["id"], items: []) }
            throw PayloadError("no params.eventList (expected {\"method\":\"client.notifyEventStream\",\"params\":{\"eventList\":[{\"Code\":…,\"Action\":…,\"Index\":…,\"Data\":{…}}]}})")
        }
        return Envelope(id: object["id"], items: entries.map(item))
    }

    static func item(_ entry: JSONValue) -> DahuaStreamItem {
        let raw = Array(entry.jsonText.utf8)
        guard case .object(let fields) = entry, let code = fields["Code"]?.stringValue, !code.isEmpty else {
            return .malformed(bytes: raw, reason: "eventList entry without a Code string")
        }
        var index: Int?
        if let value = fields["Index"] {
            guard let number = DahuaEventMapper.int(value), number >= 0 else {
                return .malformed(bytes: raw, reason: "Index \(value.jsonText) of \(code) is not a channel number (expected 0, 1, …)")
            }
            index = number
        }
        return .event(DahuaEvent(code: code, action: fields["Action"]?.stringValue ?? "", index: index, data: fields["Data"], raw: raw))
    }

    /// The RPC answer firmware waits for, sent only after the events are committed.
    static func reply(id: JSONValue?) -> Response {
        let body = JSONValue.object(["id": id ?? .null, "result": .bool(true), "params": .null]).jsonText
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

/// The `dahua-itc` profile plate records map through, loaded once per adapters directory.
final class DahuaPlateProfiles: Sendable {
    private let cache = Mutex<[String: Result<Profile, PayloadError>]>([:])

    func profile(in directory: String) -> Result<Profile, PayloadError> {
        if let cached = cache.withLock({ $0[directory] }) { return cached }
        let set = ProfileSet.load(directory: directory)
        let result: Result<Profile, PayloadError>
        if let profile = set.profiles[DahuaCodes.plateProfile] {
            result = .success(profile)
        } else {
            let why = set.failures[DahuaCodes.plateProfile].map { "\($0)" } ?? "not found"
            result = .failure(PayloadError("plate records map through the \(DahuaCodes.plateProfile) profile, which did not load from \(directory) (\(why))"))
        }
        cache.withLock { $0[directory] = result }
        return result
    }

    func clear() { cache.withLock { $0 = [:] } }
}

/// A device's options, typed by `declarations`, and what the attach stream needs from its entry.
struct DahuaSettings: Sendable, Equatable {
    enum Mode: String, Sendable { case attach, push }
    var mode: Mode = .attach
    var codes = "All"
    var heartbeatSeconds = 5
    /// Heartbeat intervals without a byte after which the stream counts as stalled.
    var stallHeartbeats = 3
    var reconnectMaxSeconds: Double = 60
    var authRetrySeconds: Double = 300
    var maxRecordBytes = DahuaStreamParser.defaultMaxRecordBytes
    var baseURL: String?
    var username: String?
    var password: String?
    var useDigest = true

    /// The options a dahua device takes (README: Config).
    static let declarations: [OptionDeclaration] = [
        OptionDeclaration("mode", .choice(["attach", "push"]), default: .string("attach"), "attach: read the camera's event stream; push: only take what it posts"),
        OptionDeclaration("codes", .string, default: .string("All"), "mode attach: event codes to subscribe to, comma-separated (All, or e.g. VideoMotion,AlarmLocal)"),
        OptionDeclaration("heartbeat_seconds", .int(1...60), default: .int(5), "mode attach: heartbeat the camera sends; 3 missed heartbeats reconnect"),
        OptionDeclaration("reconnect_max_seconds", .double(1...3600), default: .double(60), "mode attach: cap of the jittered reconnect backoff"),
        OptionDeclaration("auth_retry_seconds", .double(5...86400), default: .double(300), "mode attach: wait after the camera refused the password"),
        OptionDeclaration("quiet_seconds", .double(0...604_800), default: .double(3600), "close an alarm with no Stop after this long (0: never)"),
        OptionDeclaration("max_record_bytes", .size(minimum: 1024), default: .size(Int64(DahuaStreamParser.defaultMaxRecordBytes)), "largest event record kept in memory"),
        OptionDeclaration("kinds", .kindTable, "extra or changed Code: kind rows (e.g. VideoMotion: camera.intrusion)"),
    ]

    init(_ device: DeviceConfig) throws(DahuaConfigError) {
        let problems = Self.problems(in: device)
        guard problems.isEmpty else { throw DahuaConfigError(problems: problems) }
        let options = device.options
        mode = options.string("mode").flatMap(Mode.init(rawValue:)) ?? .attach
        if let value = options.string("codes"), !value.isEmpty { codes = value.replacingOccurrences(of: " ", with: "") }
        if let value = options.int("heartbeat_seconds") { heartbeatSeconds = value }
        if let value = options.double("reconnect_max_seconds") { reconnectMaxSeconds = value }
        if let value = options.double("auth_retry_seconds") { authRetrySeconds = value }
        if let value = options.size("max_record_bytes") { maxRecordBytes = Int(clamping: value) }
        let client = ISAPIClientConfig(device)
        (baseURL, username, password, useDigest) = (client.baseURL, client.username, client.password, client.useDigest)
    }

    /// `quiet_seconds` as the tracker takes it.
    static func quiet(_ device: DeviceConfig) -> Duration? {
        let seconds = device.options.double("quiet_seconds") ?? 3600
        return seconds > 0 ? .milliseconds(Int64(seconds * 1000)) : nil
    }

    static func problems(in device: DeviceConfig) -> [String] {
        guard (device.options.string("mode") ?? Mode.attach.rawValue) == Mode.attach.rawValue else { return [] }
        return ISAPIClientConfig.problems(
            in: device, noun: "camera", mode: Mode.attach.rawValue, example: "192.168.40.21", user: "user",
            otherwise: "; or set options.mode: push")
    }
}

struct DahuaConfigError: Error, CustomStringConvertible {
    let problems: [String]
    var description: String { problems.joined(separator: "; ") }
}
