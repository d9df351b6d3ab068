import Foundation
import GatehouseCore
import GatehouseQueue
import HTTPTypes
import Hummingbird
import Logging
import Synchronization

/// ZKTeco PUSH ("iclock" / ADMS) server: attendance terminals and access panels upload
/// ATTLOG/OPERLOG/rtlog/rtstate lines, poll for commands and report their results.
///
/// Devices are known by their `SN` query parameter, matched against `serial:` of devices with
/// `driver: zkteco` (and their `allow_from`). A batch is answered `OK: <n>` only after its
/// events and its upload stamp are committed in one transaction; malformed lines are
/// quarantined one by one and the batch is still acknowledged so the device does not loop.
public struct ZKTecoDriver: Driver {
    public let name = "zkteco"
    /// Commands for the devices; in memory (see `ZKTecoCommandQueue`).
    public let commands: ZKTecoCommandQueue
    /// The last rtstate reading per device, to emit door events on transitions only.
    let doorStates = DoorStates()

    final class DoorStates: Sendable {
        private let states = Mutex<[String: ZKTecoRecord.RealtimeState]>([:])
        subscript(deviceID: String) -> ZKTecoRecord.RealtimeState? {
            get { states.withLock { $0[deviceID] } }
            set { states.withLock { $0[deviceID] = newValue } }
        }
    }

    public init(commands: ZKTecoCommandQueue = ZKTecoCommandQueue()) {
        self.commands = commands
    }

    // MARK: - Config

    public var options: DriverOptionSet { DriverOptionSet(ZKTecoOptions.declarations) }

    public func validate(device: DeviceConfig) -> [String] {
        var problems: [String] = []
        if let serial = device.serial {
            if serial.isEmpty || serial.contains(where: { $0.isWhitespace || $0 == "&" || $0 == "=" }) {
                problems.append("serial: '\(serial)' is not a ZKTeco serial number (expected the SN the device sends, e.g. CGXK214760031)")
            }
        } else {
            problems.append("serial: required for driver zkteco (the SN shown in the device's menu, sent as ?SN= on every request)")
        }
        if device.auth != nil {
            problems.append("auth: zkteco devices cannot send credentials (identify them by serial and allow_from)")
        }
        return problems
    }

    // MARK: - Routes

    public func mountRoutes(on router: RouterGroup<IngestRequestContext>, context: DriverContext) {
        let endpoints: [(HTTPRequest.Method, String, Endpoint)] = [
            (.get, "/iclock/cdata", .handshake), (.post, "/iclock/cdata", .upload),
            (.get, "/iclock/getrequest", .getRequest), (.post, "/iclock/devicecmd", .deviceCommand),
            (.post, "/iclock/registry", .registry), (.post, "/iclock/push", .push),
            (.get, "/iclock/rtdata", .time), (.get, "/iclock/ping", .other), (.post, "/iclock/ping", .other),
            // Anything else (fdata, querydata…) is acknowledged: an error page makes some firmware retry forever.
            (.get, "/iclock/*", .other), (.post, "/iclock/*", .other),
        ]
        for (method, path, endpoint) in endpoints {
            router.on(RouterPath(path), method: method) { request, requestContext in
                await context.push(request, requestContext, driver: name) { push in
                    let query = Self.query(request)
                    let device = try authorize(query: query, remoteIP: push.remoteIP, context: context)
                    let body = request.method == .post ? try await push.body() : []
                    let incoming = ZKTecoRequest(
                        endpoint: endpoint, path: push.route, query: query, body: body, contentType: push.contentType, remoteIP: push.remoteIP)
                    return await handle(incoming, device: device, context: context).response
                }
            }
        }
    }

    /// What a route is for.
    enum Endpoint: Sendable { case handshake, upload, getRequest, deviceCommand, registry, push, time, other }

    /// A request as the driver needs it, free of HTTP types so tests can drive it directly.
    struct ZKTecoRequest: Sendable {
        var endpoint: Endpoint
        var path: String
        var query: [String: String]
        var body: [UInt8] = []
        var contentType: String? = nil
        var remoteIP: String? = "127.0.0.1"
    }

    /// A plain-text reply with a fixed length (some firmware chokes on chunked replies).
    struct ZKTecoReply: Sendable, Equatable {
        var status: HTTPResponse.Status = .ok
        var body: String
        /// A refusal of `PushRefusal`'s table, counted and answered with its status and Retry-After.
        var refusal: Rejection? = nil

        var response: Response {
            if let refusal { return refusal.response(body: Array(body.utf8), contentType: "text/plain") }
            var headers = HTTPFields()
            headers[.contentType] = "text/plain"
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
        }

        /// The table's status with the text ZKTeco firmware logs.
        init(refusal: Rejection) {
            self.refusal = refusal
            status = refusal.status
            body = "ERROR: \(refusal.message)"
        }

        init(status: HTTPResponse.Status = .ok, body: String) {
            self.status = status
            self.body = body
        }
    }

    static func query(_ request: Request) -> [String: String] {
        var query: [String: String] = [:]
        for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
        return query
    }

    /// The configured device this `SN` speaks for, from an allowed address; nothing is read or stored otherwise.
    func authorize(query: [String: String], remoteIP: String?, context: DriverContext) throws(Rejection) -> DeviceConfig {
        guard let serial = query["SN"] ?? query["sn"], !serial.isEmpty else {
            throw Rejection(.badRequest, "missing-serial", "no SN query parameter (ZKTeco devices send ?SN=<serial number>)")
        }
        guard let device = context.devices(of: name).first(where: { $0.serial == serial }) else {
            throw Rejection(
                .forbidden, "unknown-device",
                "serial '\(serial)' is not configured (add a device with driver: zkteco and serial: \(serial))")
        }
        guard device.allowFrom.admits(remoteIP) else {
            throw Rejection(
                .forbidden, "source-not-allowed", "source address \(remoteIP ?? "unknown") is not in allow_from of device '\(device.id)'")
        }
        return device
    }

    /// Authorizes and answers one request (the routes do the same, reading the body in between).
    func respond(to request: ZKTecoRequest, context: DriverContext) async -> ZKTecoReply {
        do {
            let device = try authorize(query: request.query, remoteIP: request.remoteIP, context: context)
            return await handle(request, device: device, context: context)
        } catch {
            return ZKTecoReply(status: error.status, body: "\(error.code): \(error.message)")
        }
    }

    func handle(_ request: ZKTecoRequest, device config: DeviceConfig, context: DriverContext) async -> ZKTecoReply {
        let device = context.device(config)
        let options = ZKTecoOptions(config.options)
        switch request.endpoint {
        case .handshake:
            await device.seen()
            let stamps = await stamps(of: device)
            return ZKTecoReply(body: Self.handshake(serial: config.serial ?? "", device: config, options: options, stamps: stamps))
        case .upload:
            return await upload(request, device: device, options: options)
        case .getRequest:
            await device.seen()
            let lines = commands.take(for: config.id, now: device.clock.now).map(\.line)
            return ZKTecoReply(body: lines.isEmpty ? "OK" : lines.joined(separator: "\n") + "\n")
        case .deviceCommand:
            await device.seen()
            let text = decodeText(request.body, hint: Self.charsetHint(request), options: options) ?? String(decoding: request.body, as: UTF8.self)
            let (results, errors) = ZKTecoCommandQueue.parseResults(text, at: device.clock.now)
            let matched = commands.record(results, from: config.id)
            for result in results {
                device.logger.info(
                    "command \(result.id) on \(config.id) returned \(result.returnCode)",
                    metadata: ["zkteco.command": "\(result.command ?? "-")", "zkteco.known": "\(matched.contains(result))"])
            }
            for error in errors { device.logger.warning("\(error)") }
            return ZKTecoReply(body: "OK")
        case .registry:
            await device.seen()
            return ZKTecoReply(body: "RegistryCode=\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16))")
        case .push:
            await device.seen()
            return ZKTecoReply(body: Self.accessOptions(device: config, options: options))
        case .time:
            await device.seen()
            return ZKTecoReply(body: Self.timeReply(now: device.clock.now.date, device: config, options: options))
        case .other:
            device.logger.info("acknowledged \(request.path) without storing it")
            return ZKTecoReply(body: "OK")
        }
    }

    private func stamps(of device: DeviceContext) async -> ZKTecoStamps {
        do {
            return ZKTecoStamps(cursor: try await device.cursor())
        } catch {
            device.logger.error("could not read the stored stamps", metadata: ["error": "\(error)"])
            return ZKTecoStamps(cursor: nil)
        }
    }

    // MARK: - Uploads

    private func upload(_ request: ZKTecoRequest, device context: DeviceContext, options: ZKTecoOptions) async -> ZKTecoReply {
        let device = context.config
        let logger = context.logger
        let tableName = request.query["table"] ?? ""
        guard let table = ZKTecoTable(query: tableName) else {
            await context.seen()
            logger.info("acknowledged table '\(tableName)' without storing it (\(request.body.count) bytes)")
            // 3.x table uploads expect the table name and the count echoed back.
            if tableName.lowercased() == "tabledata", let tablename = request.query["tablename"] {
                return ZKTecoReply(body: "\(tablename)=\(request.query["count"] ?? "0")")
            }
            return ZKTecoReply(body: "OK")
        }
        let serial = device.serial ?? ""
        let hint = Self.charsetHint(request)
        var drafts: [EventDraft] = []
        var bad: [(line: [UInt8], reason: String)] = []
        var lineCount = 0
        var ignored = 0
        var doorState = doorStates[device.id]
        for (number, bytes) in Self.lines(request.body).enumerated() {
            lineCount += 1
            guard let text = decodeText(bytes, hint: hint, options: options) else {
                bad.append((bytes, "line \(number + 1) of \(table.rawValue): not valid \(hint?.rawValue ?? options.charset.label) text"))
                continue
            }
            do {
                let record = try ZKTecoRecords.parse(text, table: table, zone: device.timeZone)
                switch record {
                case .realtimeState(let state):
                    drafts += ZKTecoRecords.transitions(from: doorState, to: state, bitsPerDoor: options.bitsPerDoor, serial: serial)
                    doorState = state
                case .ignored:
                    ignored += 1
                default:
                    drafts += ZKTecoRecords.drafts(for: record, serial: serial, keepUserNames: options.keepUserNames)
                }
            } catch {
                bad.append((bytes, "line \(number + 1) of \(table.rawValue): \(error.reason)"))
            }
        }
        // The console's device page shows the last upload as unmapped, value-like words hidden:
        // user tables carry names the drafts do not hold, so the drafts cannot say which values are personal.
        context.keepLastPayload(request.body, contentType: "text/plain; charset=\(hint?.rawValue ?? options.charset.label)", mapped: nil)
        var cursor: String?
        if let parameter = table.stampParameter, let stamp = request.query[parameter], !stamp.isEmpty, stamp.allSatisfy(\.isNumber) {
            var stamps = await stamps(of: context)
            stamps[table] = stamp
            cursor = stamps.cursor
        }
        // Malformed lines are kept in the transaction that stores the events and the stamp: the
        // batch is acknowledged only when everything it carried is on disk.
        let kept = bad.map { line, reason in
            QuarantineRecord(
                deviceID: device.id, driver: name, route: "/iclock/cdata?table=\(table.rawValue)",
                contentType: "text/plain; charset=\(hint?.rawValue ?? options.charset.label)", remote: request.remoteIP,
                reason: reason, payload: Data(line))
        }
        let outcomes: [AppendOutcome]
        do {
            outcomes = try await context.submit(drafts, quarantine: kept, cursor: cursor)
        } catch {
            logger.error("could not queue a \(table.rawValue) upload", metadata: ["error": "\(error)"])
            return ZKTecoReply(refusal: PushRefusal.refusal(for: error))
        }
        if let refusal = PushRefusal.refusal(for: outcomes) {
            // Not OK: the device keeps the batch and re-sends it; what was stored comes back as duplicates.
            return ZKTecoReply(refusal: refusal)
        }
        if table == .realtimeState { doorStates[device.id] = doorState }
        if !bad.isEmpty {
            logger.warning(
                "quarantined \(bad.count) of \(lineCount) \(table.rawValue) lines", metadata: ["reason": "\(ValueRedactor.redactText(bad[0].reason))"])
        }
        let duplicates = outcomes.filter { if case .duplicate = $0 { true } else { false } }.count
        logger.debug(
            "\(table.rawValue): \(lineCount) lines, \(drafts.count) events (\(duplicates) duplicates), \(bad.count) quarantined, \(ignored) ignored")
        return ZKTecoReply(body: "OK: \(lineCount)")
    }

    /// The lines of a body: `\n` separated, `\r` dropped, blank lines skipped. Safe in GBK, whose
    /// trail bytes are never 0x0A or 0x0D.
    static func lines(_ body: [UInt8]) -> [[UInt8]] {
        body.split(separator: 0x0A).map { line in Array(line.filter { $0 != 0x0D }) }
            .filter { !$0.allSatisfy { $0 == 0x20 || $0 == 0x09 } }
    }

    /// `charset=` of the Content-Type, or a `charset` query parameter.
    static func charsetHint(_ request: ZKTecoRequest) -> TextDecoding.Charset? {
        if let type = request.contentType, let range = type.range(of: "charset=", options: .caseInsensitive) {
            let label = type[range.upperBound...].prefix { $0 != ";" }
            if let charset = TextDecoding.Charset(label: String(label)) { return charset }
        }
        return request.query["charset"].flatMap(TextDecoding.Charset.init(label:))
    }

    /// The text of one line: in the hinted or configured charset, or UTF-8 strictly then GB18030 (`auto`).
    func decodeText(_ bytes: [UInt8], hint: TextDecoding.Charset?, options: ZKTecoOptions) -> String? {
        if let charset = hint ?? options.charset.fixed { return TextDecoding.decode(bytes, as: charset) }
        return TextDecoding.decode(bytes, as: .utf8) ?? TextDecoding.decode(bytes, as: .gb18030)
    }

    /// Quarantine replay: the table comes from the kept route, the charset from the kept content type.
    /// rtstate lines replay to nothing: their events depend on the state before them.
    public func decode(_ payload: RawPayload, device: DeviceConfig) throws(PayloadError) -> [EventDraft] {
        let route = payload.route ?? ""
        let tableName = route.range(of: "table=").map { String(route[$0.upperBound...].prefix { $0 != "&" }) } ?? ""
        guard let table = ZKTecoTable(query: tableName) else {
            throw PayloadError("route '\(route)' names no table this driver maps (expected table=ATTLOG, OPERLOG, rtlog or rtstate)")
        }
        let options = ZKTecoOptions(device.options)
        let hint = Self.charsetHint(ZKTecoRequest(endpoint: .upload, path: route, query: [:], contentType: payload.contentType))
        var drafts: [EventDraft] = []
        for (number, bytes) in Self.lines(payload.body).enumerated() {
            guard let text = decodeText(bytes, hint: hint, options: options) else {
                throw PayloadError("line \(number + 1): not valid \(hint?.rawValue ?? options.charset.label) text")
            }
            do {
                let record = try ZKTecoRecords.parse(text, table: table, zone: device.timeZone)
                drafts += ZKTecoRecords.drafts(for: record, serial: device.serial ?? "", keepUserNames: options.keepUserNames)
            } catch {
                throw PayloadError("line \(number + 1): \(error.reason)")
            }
        }
        return drafts
    }

    // MARK: - Replies

    /// The attendance-dialect option block: stamps are what the gateway has stored, so the
    /// device re-sends only what is missing.
    static func handshake(serial: String, device: DeviceConfig, options: ZKTecoOptions, stamps: ZKTecoStamps) -> String {
        let attlog = stamps[.attendance] ?? options.initialStamp
        let operlog = stamps[.operation] ?? options.initialStamp
        return [
            "GET OPTION FROM: \(serial)",
            "Stamp=\(attlog)", "ATTLOGStamp=\(attlog)", "OpStamp=\(operlog)", "OPERLOGStamp=\(operlog)",
            "ATTPHOTOStamp=None", "ErrorDelay=30", "Delay=\(options.delaySeconds)", "TransTimes=00:00;14:05",
            "TransInterval=1", "TransFlag=TransData AttLog\tOpLog\tEnrollUser\tChgUser", "TimeZone=\(timeZone(device, options))",
            "Realtime=\(options.realtime ? 1 : 0)", "Encrypt=None", "ServerVer=2.4.1", "PushProtVer=2.4.1",
        ].joined(separator: "\n") + "\n"
    }

    /// The access-dialect (3.x) configuration reply to `/iclock/push`.
    static func accessOptions(device: DeviceConfig, options: ZKTecoOptions) -> String {
        [
            "ServerVersion=3.0.1", "ServerName=gatehouse", "PushVersion=3.0.1", "ErrorDelay=30",
            "RequestDelay=\(options.delaySeconds)", "TransTimes=00:00;14:00", "TransInterval=1",
            "TransTables=User Transaction", "Realtime=\(options.realtime ? 1 : 0)", "SessionID=\(device.id)",
            "TimeoutSec=10",
        ].joined(separator: "\n") + "\n"
    }

    /// `DateTime=<zk-encoded local time>,ServerTZ=+0800` for the device's zone.
    static func timeReply(now: Date, device: DeviceConfig, options: ZKTecoOptions) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = device.timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: now)
        let encoded = ZKTecoRecords.zkEncode(
            year: c.year ?? 2000, month: c.month ?? 1, day: c.day ?? 1, hour: c.hour ?? 0, minute: c.minute ?? 0, second: c.second ?? 0)
        let offset = device.timeZone.secondsFromGMT(for: now)
        let sign = offset < 0 ? "-" : "+"
        let hours = abs(offset) / 3600
        let minutes = abs(offset) % 3600 / 60
        return "DateTime=\(encoded),ServerTZ=\(sign)\(hours < 10 ? "0" : "")\(hours)\(minutes < 10 ? "0" : "")\(minutes)"
    }

    static func timeZone(_ device: DeviceConfig, _ options: ZKTecoOptions) -> Int {
        options.handshakeTimeZone ?? device.timeZone.secondsFromGMT() / 3600
    }
}

/// The upload stamps a device was last acknowledged for, kept as the device's cursor in the
/// queue (`ATTLOG=41230\tOPERLOG=77`) and written in the same transaction as the events.
///
/// A device uploads one request at a time, so reading, merging and writing the cursor per
/// upload needs no lock; were two uploads to race, the older stamp wins and the device re-sends
/// records the dedup keys then recognise.
struct ZKTecoStamps: Equatable {
    private var values: [String: String] = [:]

    init(cursor: String?) {
        for pair in (cursor ?? "").split(separator: "\t") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
        }
    }

    subscript(table: ZKTecoTable) -> String? {
        get { values[table.rawValue] }
        set { values[table.rawValue] = newValue }
    }

    var cursor: String { values.keys.sorted().map { "\($0)=\(values[$0] ?? "")" }.joined(separator: "\t") }
}

/// The `options:` a zkteco device takes, declared once and read typed.
struct ZKTecoOptions: Equatable {
    enum Charset: Equatable {
        case auto
        case fixed(TextDecoding.Charset)

        var fixed: TextDecoding.Charset? { if case .fixed(let c) = self { c } else { nil } }
        var label: String { fixed?.rawValue ?? "auto" }
    }

    var charset: Charset = .auto
    var handshakeTimeZone: Int?
    var initialStamp = "0"
    var delaySeconds = 10
    var realtime = true
    var bitsPerDoor = 8
    var keepUserNames = true

    /// The options a zkteco device takes (README: Config).
    static let declarations: [OptionDeclaration] = [
        OptionDeclaration(
            "charset", .choice(["auto", "utf-8", "utf8", "gbk", "gb2312", "cp936", "x-gbk", "gb18030"]), default: .string("auto"),
            "how user names and texts are decoded; auto detects UTF-8, else GB18030"),
        OptionDeclaration("handshake_time_zone", .int(-12...14), "TimeZone sent in the handshake, whole hours, e.g. 8"),
        OptionDeclaration("initial_stamp", .int(0...Int.max), default: .int(0), "the stamp asked for before one is stored; 0 = the whole log"),
        OptionDeclaration("delay_seconds", .int(1...3600), default: .int(10), "Delay: how often the device polls for commands"),
        OptionDeclaration("realtime", .bool, default: .bool(true), "Realtime: the device pushes each record at once"),
        OptionDeclaration("rtstate_bits_per_door", .choice(["2", "8"]), default: .string("8"), "bits per door in rtstate door/alarm words"),
        OptionDeclaration("user_names", .choice(["keep", "drop"]), default: .string("keep"), "keep or drop the names in user records"),
    ]

    /// Reads the typed options (checked by the config loader against `declarations`).
    init(_ options: DeviceOptions) {
        if let text = options.string("charset"), let c = TextDecoding.Charset(label: text) { charset = .fixed(c) }
        handshakeTimeZone = options.int("handshake_time_zone")
        if let stamp = options.int("initial_stamp") { initialStamp = String(stamp) }
        if let delay = options.int("delay_seconds") { delaySeconds = delay }
        if let flag = options.bool("realtime") { realtime = flag }
        if let bits = options.string("rtstate_bits_per_door").flatMap(Int.init) { bitsPerDoor = bits }
        keepUserNames = options.string("user_names") != "drop"
    }
}
