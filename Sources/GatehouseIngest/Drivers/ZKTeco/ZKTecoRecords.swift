import Crypto
import Foundation
import GatehouseCore

/// The upload tables the driver maps; others (`ATTPHOTO`, `BIODATA`, `options`…) are acknowledged and logged.
enum ZKTecoTable: String, CaseIterable, Sendable {
    case attendance = "ATTLOG"
    case operation = "OPERLOG"
    case realtimeEvent = "rtlog"
    case realtimeState = "rtstate"

    /// Firmware spells table names in either case (`rtlog`, `RTLOG`).
    init?(query: String) {
        guard let match = Self.allCases.first(where: { $0.rawValue.lowercased() == query.lowercased() }) else { return nil }
        self = match
    }

    /// The query parameter that carries this table's upload stamp, if it has one.
    var stampParameter: String? {
        switch self {
        case .attendance: "Stamp"
        case .operation: "OpStamp"
        case .realtimeEvent, .realtimeState: nil
        }
    }
}

/// Why one line could not be read; `reason` names the field, the value and what would be valid.
public struct ZKTecoRecordError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: String
    public var reason: String
    public var description: String { "\(reason) in line '\(line)'" }
}

/// One line of an upload, read but not yet mapped to the schema.
enum ZKTecoRecord: Equatable {
    case attendance(Attendance)
    case operation(Operation)
    case user(User)
    case realtimeEvent(RealtimeEvent)
    case realtimeState(RealtimeState)
    /// Read and deliberately not stored (fingerprint templates: biometric data), with why.
    case ignored(String)

    /// An ATTLOG punch: `PIN \t time \t status \t verify \t workcode \t reserved…`.
    struct Attendance: Equatable {
        var pin: String
        /// Nil when `deviceTime` is not a time: the record is still kept, with the gateway's clock.
        var time: Timestamp?
        var deviceTime: String
        var status: Int
        var verify: Int
        var workCode: String?
    }

    /// An OPERLOG `OPLOG op \t admin \t time \t object \t p1 \t p2 \t p3` line.
    struct Operation: Equatable {
        var op: Int
        var admin: String
        /// Nil when `deviceTime` is not a time: the record is still kept, with the gateway's clock.
        var time: Timestamp?
        var deviceTime: String
        var object: Int
        var parameters: [String]
    }

    /// An OPERLOG `USER PIN=… \t Name=… \t Pri=… \t Card=…` enrolment record.
    struct User: Equatable {
        var pin: String
        var name: String?
        var privilege: String?
        var hasCard: Bool
        /// A digest of the whole line: a changed record is a new one, a re-sent one is not.
        var digest: String
    }

    /// An access-dialect rtlog line (key=value), also accepted in ATTLOG uploads of F22-style terminals.
    struct RealtimeEvent: Equatable {
        /// Nil when `deviceTime` is not a time: the record is still kept, with the gateway's clock.
        var time: Timestamp?
        var deviceTime: String
        var pin: String?
        var card: String?
        var door: Int?
        var event: Int
        var inOut: Int?
        var verify: Int?
        var index: String?
        /// Keys this parser does not interpret (`sitecode`, `linkid`, `temperature`…), kept as sent.
        var extras: [String: String]
    }

    /// An rtstate line: packed per-door hex fields.
    struct RealtimeState: Equatable {
        /// Nil when `deviceTime` is not a time: the record is still kept, with the gateway's clock.
        var time: Timestamp?
        var deviceTime: String
        var sensor: UInt64
        var relay: UInt64
        var alarm: UInt64
        var hexDigits: Int
    }
}

/// The line formats of the PUSH protocol, each declared once, and the parser that reads them.
enum ZKTecoRecords {
    /// ATTLOG positions; at least `pin, time, status, verify` must be present.
    enum AttendanceField: Int, CaseIterable {
        case pin = 0, time, status, verify, workCode
        static let required = 4
    }

    /// OPLOG positions after the `OPLOG ` prefix.
    enum OperationField: Int, CaseIterable {
        case op = 0, admin, time, object, parameter1, parameter2, parameter3
        static let required = 4
    }

    /// rtlog keys with the spellings firmware uses (`transaction` lines use the later ones).
    enum RealtimeEventKey: CaseIterable {
        case time, pin, card, door, event, inOut, verify, index

        var spellings: [String] {
            switch self {
            case .time: ["time", "time_second"]
            case .pin: ["pin"]
            case .card: ["cardno"]
            case .door: ["eventaddr", "doorid"]
            case .event: ["event", "eventtype"]
            case .inOut: ["inoutstatus", "inoutstate"]
            case .verify: ["verifytype", "verified"]
            case .index: ["index"]
            }
        }
    }

    /// rtstate keys; `door` is optional.
    enum RealtimeStateKey: String, CaseIterable {
        case time, sensor, relay, alarm
    }

    /// Reads one line of `table`; times without a zone are read in `zone`.
    static func parse(_ line: String, table: ZKTecoTable, zone: TimeZone) throws(ZKTecoRecordError) -> ZKTecoRecord {
        func fail(_ reason: String) -> ZKTecoRecordError { ZKTecoRecordError(line: line, reason: reason) }
        switch table {
        case .attendance:
            // F22-style access terminals post rtlog lines to ATTLOG: a key=value line is one of those.
            if line.contains("=") { return .realtimeEvent(try realtimeEvent(line, zone: zone, fail: fail)) }
            return .attendance(try attendance(line, zone: zone, fail: fail))
        case .operation:
            if line.hasPrefix("OPLOG ") { return .operation(try operation(String(line.dropFirst(6)), zone: zone, fail: fail)) }
            if line.hasPrefix("USER ") { return .user(try user(String(line.dropFirst(5)), fail: fail)) }
            if line.hasPrefix("FP ") || line.hasPrefix("BIODATA ") || line.hasPrefix("FACE ") {
                return .ignored("biometric template (not stored)")
            }
            let prefix = line.prefix { $0 != " " && $0 != "\t" }
            throw fail("unknown OPERLOG record '\(prefix)' (expected OPLOG, USER, FP, FACE or BIODATA)")
        case .realtimeEvent:
            return .realtimeEvent(try realtimeEvent(line, zone: zone, fail: fail))
        case .realtimeState:
            return .realtimeState(try realtimeState(line, zone: zone, fail: fail))
        }
    }

    private static func attendance(
        _ line: String, zone: TimeZone, fail: (String) -> ZKTecoRecordError
    ) throws(ZKTecoRecordError) -> ZKTecoRecord.Attendance {
        var fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        if fields.count == 1 {
            // Older firmware separates with spaces, so the date and the time become two tokens.
            let tokens = line.split(separator: " ").map(String.init)
            fields = tokens.count >= 3 ? [tokens[0], tokens[1] + " " + tokens[2]] + tokens.dropFirst(3) : tokens
        }
        guard fields.count >= AttendanceField.required else {
            throw fail("ATTLOG line has \(fields.count) fields (expected at least \(AttendanceField.required): PIN, time, status, verify)")
        }
        func field(_ f: AttendanceField) -> String { fields[f.rawValue].trimmingCharacters(in: .whitespaces) }
        let pin = field(.pin)
        guard !pin.isEmpty else { throw fail("ATTLOG PIN is empty (expected the user's PIN)") }
        let deviceTime = field(.time)
        let time = Self.time(deviceTime, zone: zone)
        let status = try integer(field(.status), name: "status", fail: fail)
        let verify = try integer(field(.verify), name: "verify", fail: fail)
        let workCode = fields.count > AttendanceField.workCode.rawValue ? field(.workCode) : ""
        return .init(
            pin: pin, time: time, deviceTime: deviceTime, status: status, verify: verify,
            workCode: workCode.isEmpty || workCode == "0" ? nil : workCode)
    }

    private static func operation(
        _ rest: String, zone: TimeZone, fail: (String) -> ZKTecoRecordError
    ) throws(ZKTecoRecordError) -> ZKTecoRecord.Operation {
        let fields = rest.split(separator: "\t", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard fields.count >= OperationField.required else {
            throw fail("OPLOG line has \(fields.count) fields (expected at least \(OperationField.required): op, admin, time, object)")
        }
        let deviceTime = fields[OperationField.time.rawValue]
        return .init(
            op: try integer(fields[OperationField.op.rawValue], name: "op", fail: fail),
            admin: fields[OperationField.admin.rawValue],
            time: time(deviceTime, zone: zone), deviceTime: deviceTime,
            object: try integer(fields[OperationField.object.rawValue], name: "object", fail: fail),
            parameters: Array(fields.dropFirst(OperationField.parameter1.rawValue)))
    }

    private static func user(_ rest: String, fail: (String) -> ZKTecoRecordError) throws(ZKTecoRecordError) -> ZKTecoRecord.User {
        let pairs = try keyValues(rest, lowercaseKeys: true, fail: fail)
        guard let pin = pairs["pin"], !pin.isEmpty else { throw fail("USER record has no PIN= (expected PIN=<user PIN>)") }
        let card = pairs["card"] ?? ""
        let name = pairs["name"].flatMap { $0.isEmpty ? nil : $0 }
        return .init(
            pin: pin, name: name, privilege: pairs["pri"], hasCard: !card.isEmpty && card != "0",
            digest: digest([rest]))
    }

    private static func realtimeEvent(
        _ line: String, zone: TimeZone, fail: (String) -> ZKTecoRecordError
    ) throws(ZKTecoRecordError) -> ZKTecoRecord.RealtimeEvent {
        let body = line.hasPrefix("transaction ") ? String(line.dropFirst(12)) : line
        var pairs = try keyValues(body, lowercaseKeys: true, fail: fail)
        func take(_ key: RealtimeEventKey) -> (spelling: String, value: String)? {
            for spelling in key.spellings {
                if let value = pairs.removeValue(forKey: spelling) { return (spelling, value) }
            }
            return nil
        }
        guard let (timeKey, timeText) = take(.time) else { throw fail("rtlog line has no time= (expected time=YYYY-MM-DD HH:MM:SS)") }
        let (time, deviceTime) = try timeKey == "time_second"
            ? zkEncodedTime(timeText, zone: zone, fail: fail) : (Self.time(timeText, zone: zone), timeText)
        guard let (_, eventText) = take(.event) else { throw fail("rtlog line has no event= (expected event=<code>)") }
        let event = try integer(eventText, name: "event", fail: fail)
        func optionalInteger(_ key: RealtimeEventKey) throws(ZKTecoRecordError) -> Int? {
            guard let (spelling, text) = take(key), !text.isEmpty else { return nil }
            return try integer(text, name: spelling, fail: fail)
        }
        let door = try optionalInteger(.door)
        let inOut = try optionalInteger(.inOut)
        let verify = try optionalInteger(.verify)
        let pin = take(.pin)?.value
        let card = take(.card)?.value
        let index = take(.index)?.value
        return .init(
            time: time, deviceTime: deviceTime, pin: pin.flatMap { $0.isEmpty || $0 == "0" ? nil : $0 },
            card: card.flatMap { $0.isEmpty || $0 == "0" ? nil : $0 }, door: door, event: event, inOut: inOut,
            verify: verify, index: index.flatMap { $0.isEmpty ? nil : $0 }, extras: pairs)
    }

    private static func realtimeState(
        _ line: String, zone: TimeZone, fail: (String) -> ZKTecoRecordError
    ) throws(ZKTecoRecordError) -> ZKTecoRecord.RealtimeState {
        let pairs = try keyValues(line, lowercaseKeys: true, fail: fail)
        var values: [RealtimeStateKey: String] = [:]
        for key in RealtimeStateKey.allCases {
            guard let value = pairs[key.rawValue] else {
                throw fail("rtstate line has no \(key.rawValue)= (expected time, sensor, relay and alarm)")
            }
            values[key] = value
        }
        func hex(_ key: RealtimeStateKey) throws(ZKTecoRecordError) -> UInt64 {
            let text = values[key] ?? ""
            guard text.count <= 16, let value = UInt64(text, radix: 16) else {
                throw fail("rtstate \(key.rawValue) '\(text)' is not a hex number of at most 16 digits")
            }
            return value
        }
        let deviceTime = values[.time] ?? ""
        return .init(
            time: time(deviceTime, zone: zone), deviceTime: deviceTime, sensor: try hex(.sensor),
            relay: try hex(.relay), alarm: try hex(.alarm),
            hexDigits: max(values[.sensor]?.count ?? 0, values[.relay]?.count ?? 0, values[.alarm]?.count ?? 0))
    }

    // MARK: - Field readers

    /// Tab-separated `key=value` pairs; a field without `=` is an error, an empty field is skipped.
    static func keyValues(_ text: String, lowercaseKeys: Bool, fail: (String) -> ZKTecoRecordError) throws(ZKTecoRecordError) -> [String: String] {
        var pairs: [String: String] = [:]
        for field in text.split(separator: "\t") {
            let trimmed = field.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw fail("field '\(trimmed)' is not key=value")
            }
            let key = String(trimmed[..<equals])
            pairs[lowercaseKeys ? key.lowercased() : key] = String(trimmed[trimmed.index(after: equals)...])
        }
        return pairs
    }

    static func integer(_ text: String, name: String, fail: (String) -> ZKTecoRecordError) throws(ZKTecoRecordError) -> Int {
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
            throw fail("\(name) '\(text)' is not an integer")
        }
        return value
    }

    /// The device time, or nil when the text is not a time (`timeIssue` then says why).
    static func time(_ text: String, zone: TimeZone) -> Timestamp? { DeviceTimeParser.parse(text, zone: zone) }

    /// Why a record's time was not read, for `EventDraft.timeIssue`; nil when it was.
    static func timeIssue(_ time: Timestamp?, _ text: String) -> String? {
        time == nil ? "time '\(text)' is not a date (expected YYYY-MM-DD HH:MM:SS between 1970 and 2199)" : nil
    }

    /// `((Y-2000)*12*31 + (M-1)*31 + (D-1))*86400 + h*3600 + m*60 + s`, local time.
    static func zkEncodedTime(_ text: String, zone: TimeZone, fail: (String) -> ZKTecoRecordError) throws(ZKTecoRecordError) -> (Timestamp?, String) {
        guard let value = Int64(text), value >= 0 else { throw fail("time_second '\(text)' is not a ZK-encoded time (expected a non-negative integer)") }
        let wall = zkDecode(value)
        return (time(wall, zone: zone), wall)
    }

    /// The wall-clock text of a ZK-encoded time.
    static func zkDecode(_ value: Int64) -> String {
        var t = value
        let second = t % 60
        t /= 60
        let minute = t % 60
        t /= 60
        let hour = t % 24
        t /= 24
        let day = t % 31 + 1
        t /= 31
        let month = t % 12 + 1
        let year = t / 12 + 2000
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(year)-\(two(month))-\(two(day)) \(two(hour)):\(two(minute)):\(two(second))"
    }

    /// The ZK encoding of a wall-clock time (for `SET OPTION DateTime=` and the simulator).
    static func zkEncode(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) -> Int64 {
        let days = Int64((year - 2000) * 12 * 31 + (month - 1) * 31 + (day - 1))
        return days * 86_400 + Int64(hour * 3600 + minute * 60 + second)
    }

    /// A short stable digest: dedup keys travel with the event, so they must not carry PINs,
    /// card numbers or names in clear when the privacy policy hides the subject.
    static func digest(_ parts: [String]) -> String {
        let hash = SHA256.hash(data: Data(parts.joined(separator: "\u{1F}").utf8))
        return hash.prefix(16).map { String(format: "%02x", $0) }.joined()
    }
}

// MARK: - Mapping to the schema

extension ZKTecoRecords {
    /// What a record becomes; `keepUserNames` decides whether USER records keep the name.
    /// rtstate lines become events only through `transitions(from:to:…)`.
    static func drafts(for record: ZKTecoRecord, serial: String, keepUserNames: Bool) -> [EventDraft] {
        switch record {
        case .attendance(let a):
            var attributes: [String: JSONValue] = [
                "table": .string("ATTLOG"), "verifyMode": .string(ZKTecoVerifyMode.name(a.verify)),
                "verifyCode": .number(Double(a.verify)), "status": .number(Double(a.status)),
            ]
            if let name = ZKTecoAttendanceStatus.name(a.status) { attributes["statusName"] = .string(name) }
            if let workCode = a.workCode { attributes["workCode"] = .string(workCode) }
            return [
                EventDraft(
                    kind: .accessGranted, occurredAt: a.time, deviceTime: a.deviceTime,
                    subject: Subject(type: .person, value: a.pin), result: .granted, attributes: attributes,
                    dedupKey: "ATTLOG:" + digest([serial, a.pin, a.deviceTime, String(a.verify)]),
                    timeIssue: timeIssue(a.time, a.deviceTime))
            ]
        case .operation(let o):
            let mapping = o.op == ZKTecoOperationCode.alarm ? ZKTecoOperationCode.alarmMapping(object: o.object) : nil
            var attributes: [String: JSONValue] = [
                "table": .string("OPERLOG"), "op": .number(Double(o.op)), "admin": .string(o.admin),
                "object": .number(Double(o.object)), "parameters": .array(o.parameters.map(JSONValue.string)),
            ]
            if let reason = mapping?.reason { attributes["reason"] = .string(reason) }
            return [
                EventDraft(
                    kind: mapping?.kind ?? .vendorOther, occurredAt: o.time, deviceTime: o.deviceTime,
                    result: mapping?.result, attributes: attributes,
                    dedupKey: "OPLOG:" + digest([serial, String(o.op), o.admin, o.deviceTime, String(o.object)] + o.parameters),
                    timeIssue: timeIssue(o.time, o.deviceTime))
            ]
        case .user(let u):
            var attributes: [String: JSONValue] = ["table": .string("OPERLOG"), "record": .string("user"), "hasCard": .bool(u.hasCard)]
            if keepUserNames, let name = u.name { attributes["name"] = .string(name) }
            if let privilege = u.privilege { attributes["privilege"] = .string(privilege) }
            // No device time on enrolment records: the receive time stands.
            return [
                EventDraft(
                    kind: .vendorOther, subject: Subject(type: .person, value: u.pin), attributes: attributes,
                    dedupKey: "USER:" + digest([serial, u.digest]))
            ]
        case .realtimeEvent(let e):
            let mapping = ZKTecoEventCode.mapping(e.event)
            var attributes: [String: JSONValue] = ["table": .string("rtlog"), "event": .number(Double(e.event))]
            if let reason = mapping.reason { attributes["reason"] = .string(reason) }
            if let verify = e.verify {
                attributes["verifyMode"] = .string(ZKTecoVerifyMode.name(verify))
                attributes["verifyCode"] = .number(Double(verify))
            }
            if let index = e.index { attributes["index"] = .string(index) }
            if let inOut = e.inOut { attributes["inOutStatus"] = .number(Double(inOut)) }
            for (key, value) in e.extras { attributes[key] = .string(value) }
            // A card number travels only as the subject, where the privacy policy governs it.
            let subject = e.pin.map { Subject(type: .person, value: $0) } ?? e.card.map { Subject(type: .card, value: $0) }
            let identity = e.index.map { [serial, $0, e.deviceTime] }
                ?? [serial, e.deviceTime, String(e.event), String(e.door ?? -1), e.pin ?? "", e.card ?? ""]
            return [
                EventDraft(
                    kind: mapping.kind, occurredAt: e.time, deviceTime: e.deviceTime, point: e.door.map { "door-\($0)" },
                    direction: e.inOut == 0 ? .in : e.inOut == 1 ? .out : nil, subject: subject, result: mapping.result,
                    attributes: attributes, dedupKey: "rtlog:" + digest(identity), timeIssue: timeIssue(e.time, e.deviceTime))
            ]
        case .realtimeState, .ignored:
            return []
        }
    }

    /// Door events for what changed between two rtstate readings; the first reading only sets the state.
    static func transitions(
        from previous: ZKTecoRecord.RealtimeState?, to current: ZKTecoRecord.RealtimeState, bitsPerDoor: Int, serial: String
    ) -> [EventDraft] {
        guard let previous else { return [] }
        let mask: UInt64 = bitsPerDoor >= 64 ? .max : (1 << UInt64(bitsPerDoor)) - 1
        let doors = max(1, min(64 / bitsPerDoor, (max(current.hexDigits, 1) * 4 + bitsPerDoor - 1) / bitsPerDoor))
        var drafts: [EventDraft] = []
        func add(_ kind: EventKind, door: Int, field: String, value: UInt64, reason: String? = nil) {
            var attributes: [String: JSONValue] = ["table": .string("rtstate"), field: .number(Double(value))]
            if let reason { attributes["reason"] = .string(reason) }
            drafts.append(
                EventDraft(
                    kind: kind, occurredAt: current.time, deviceTime: current.deviceTime, point: "door-\(door)",
                    attributes: attributes,
                    dedupKey: "rtstate:" + digest([serial, current.deviceTime, String(door), kind.rawValue, reason ?? ""]),
                    timeIssue: timeIssue(current.time, current.deviceTime)))
        }
        for door in 1...doors {
            let shift = UInt64((door - 1) * bitsPerDoor)
            func value(_ packed: UInt64) -> UInt64 { (packed >> shift) & mask }
            let sensor = value(current.sensor)
            if sensor != value(previous.sensor) {
                if sensor == UInt64(ZKTecoDoorState.sensorOpen) { add(.doorOpened, door: door, field: "sensor", value: sensor) }
                if sensor == UInt64(ZKTecoDoorState.sensorClosed) { add(.doorClosed, door: door, field: "sensor", value: sensor) }
            }
            let relay = value(current.relay)
            if relay != value(previous.relay) {
                add(relay == 0 ? .doorLocked : .doorUnlocked, door: door, field: "relay", value: relay)
            }
            let alarm = value(current.alarm)
            let raised = alarm & ~value(previous.alarm)
            for flag in ZKTecoDoorState.alarmBits where raised & UInt64(flag.bit) != 0 {
                add(flag.kind, door: door, field: "alarm", value: alarm, reason: flag.reason)
            }
        }
        return drafts
    }
}
