import Foundation
import GatehouseCore

// The UHPPOTE / WeiGeng "short packet" protocol: fixed 64-byte UDP frames, integers
// little-endian, dates BCD, IPv4 addresses in network order (after github uhppoted/uhppote-core
// `messages/*.go`). Every offset lives in `UHPPOTELayout`; every message is
// encoded and decoded in one place below, requests and responses alike, so tests and the
// simulator can run each message both ways.

/// The function codes an event gateway uses (byte 1 of every frame).
public enum UHPPOTEFunction: UInt8, Sendable, CaseIterable {
    case getStatus = 0x20
    case setTime = 0x30
    case getTime = 0x32
    case openDoor = 0x40
    case recordSpecialEvents = 0x8E
    case setListener = 0x90
    case getListener = 0x92
    case getController = 0x94
    case getEvent = 0xB0
    case setEventIndex = 0xB2
    case getEventIndex = 0xB4
}

/// Offsets of every field, by message. Sizes follow from the coding used at each offset.
enum UHPPOTELayout {
    static let frameLength = 64
    static let startByte: UInt8 = 0x17
    /// Pushes from v6.62 firmware and every reply from firmware before V6.56 start with 0x19.
    static let legacyStartByte: UInt8 = 0x19
    static let function = 1
    static let serial = 4  // uint32 LE
    /// set-event-index must carry this word or the controller ignores it.
    static let magic: UInt32 = 0x55AA_AA55

    /// An event record: get-event reply, and bytes 8–27 of status replies and pushed packets.
    enum Event {
        static let index = 8  // uint32 LE
        static let type = 12  // uint8
        static let granted = 13  // bool
        static let door = 14  // uint8 1–4
        static let direction = 15  // uint8 1 in, 2 out
        static let card = 16  // uint32 LE
        static let timestamp = 20  // BCD YYYYMMDDhhmmss (7)
        static let reason = 27  // uint8
    }

    /// The status block after the event record (get-status reply, pushed listener packet).
    enum Status {
        static let doorOpen = 28  // 4 × bool
        static let buttonPressed = 32  // 4 × bool
        static let systemError = 36  // uint8
        static let systemTime = 37  // BCD hhmmss (3)
        static let sequence = 40  // uint32 LE
        static let specialInfo = 48  // uint8
        static let relays = 49  // bitmap, bit n = door n+1 unlocked
        static let inputs = 50  // bitmap, bit0 force-lock, bit1 fire
        static let systemDate = 51  // BCD YYMMDD (3)
    }

    /// get-controller (discovery) reply.
    enum Controller {
        static let address = 8  // IPv4 (4)
        static let netmask = 12
        static let gateway = 16
        static let mac = 20  // 6 bytes
        static let version = 26  // BCD (2) e.g. 06 62 → v6.62
        static let released = 28  // BCD YYYYMMDD (4)
    }

    /// set-listener request, get-listener reply.
    enum Listener {
        static let address = 8  // IPv4 (4)
        static let port = 12  // uint16 LE
        static let interval = 14  // uint8 seconds, 0 = off
    }

    /// get-time reply, set-time request and reply.
    static let dateTime = 8  // BCD YYYYMMDDhhmmss (7)
    /// get-event request, get-event-index reply, set-event-index request.
    static let index = 8  // uint32 LE
    static let indexMagic = 12  // uint32 LE, set-event-index
    /// open-door request.
    static let door = 8  // uint8
    /// record-special-events request; the "ok" byte of set-* and open-door replies.
    static let flag = 8  // bool
}

/// Why a datagram was refused. The cases are what the driver counts.
public struct UHPPOTECodecError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable, CaseIterable, Hashable {
        case length = "wrong-length"
        case startByte = "wrong-start-byte"
        case function = "wrong-function"
        case serial = "wrong-serial"
        case bcd = "invalid-bcd"
        case date = "invalid-date"
    }

    public let reason: Reason
    public let description: String

    init(_ reason: Reason, _ description: String) {
        self.reason = reason
        self.description = description
    }
}

/// An IPv4 address as the controller writes it: four bytes in network order.
public struct UHPPOTEIPv4: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var bytes: (UInt8, UInt8, UInt8, UInt8)

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) { bytes = (a, b, c, d) }

    /// Dotted quad; nil when it is not one.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map { UInt8($0) }
        guard parts.count == 4, let a = parts[0], let b = parts[1], let c = parts[2], let d = parts[3] else { return nil }
        bytes = (a, b, c, d)
    }

    public var description: String { "\(bytes.0).\(bytes.1).\(bytes.2).\(bytes.3)" }

    public static func == (l: Self, r: Self) -> Bool { l.description == r.description }
    public func hash(into hasher: inout Hasher) { hasher.combine(description) }
}

/// A controller wall-clock reading (no zone: the device's configured zone gives it one).
public struct UHPPOTEDateTime: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var year, month, day, hour, minute, second: Int

    /// Nil when the fields are not a real date and time.
    public init?(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
        guard (2000...2099).contains(year), second < 60, DeviceTimeParser.parseWallClock(description) != nil else { return nil }
    }

    /// The wall clock of `time` in `zone`, to the second.
    public init(_ time: Timestamp, zone: TimeZone) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: time.date)
        year = c.year ?? 2000
        month = c.month ?? 1
        day = c.day ?? 1
        hour = c.hour ?? 0
        minute = c.minute ?? 0
        second = c.second ?? 0
    }

    /// `YYYY-MM-DD hh:mm:ss`, the form kept as the event's device time.
    public var description: String {
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(year)-\(two(month))-\(two(day)) \(two(hour)):\(two(minute)):\(two(second))"
    }

    /// The instant this reading names in `zone`.
    public func timestamp(in zone: TimeZone) -> Timestamp? { DeviceTimeParser.parse(description, zone: zone) }
}

/// A time field a controller wrote that is not a real time (a nibble above 9, 30 February, hour 24):
/// kept as written, so the record it belongs to is still read and its text still shown.
public struct UHPPOTEUnreadableTime: Sendable, Equatable, Hashable {
    /// The field's bytes as received (the encoder writes them back unchanged).
    public var bytes: [UInt8]
    /// The field as the controller wrote it: `YYYY-MM-DD hh:mm:ss` from its digits, or hex when
    /// a byte is not BCD.
    public var text: String
    public var reason: String
}

/// One record of the controller's event log.
public struct UHPPOTEEventRecord: Sendable, Equatable {
    /// Event types (byte 12) per uhppote-core `messages/get_event.go`.
    public enum Kind {
        public static let none: UInt8 = 0x00
        public static let swipe: UInt8 = 0x01
        public static let door: UInt8 = 0x02
        public static let alarm: UInt8 = 0x03
        public static let overwritten: UInt8 = 0xFF
    }

    public var index: UInt32
    public var type: UInt8
    public var granted: Bool
    public var door: UInt8
    public var direction: UInt8
    public var card: UInt32
    /// Nil when the controller wrote no time (all zeros) or one that is not a time (`unreadableTime`).
    public var timestamp: UHPPOTEDateTime?
    public var reason: UInt8
    /// The time field when it is not a real time; the rest of the record is still good.
    public var unreadableTime: UHPPOTEUnreadableTime?

    public init(
        index: UInt32, type: UInt8, granted: Bool, door: UInt8, direction: UInt8, card: UInt32,
        timestamp: UHPPOTEDateTime?, reason: UInt8, unreadableTime: UHPPOTEUnreadableTime? = nil
    ) {
        self.unreadableTime = unreadableTime
        self.index = index
        self.type = type
        self.granted = granted
        self.door = door
        self.direction = direction
        self.card = card
        self.timestamp = timestamp
        self.reason = reason
    }
}

/// A get-status reply or a pushed listener packet.
public struct UHPPOTEStatus: Sendable, Equatable {
    /// The most recent event; index 0 means the log is empty.
    public var event: UHPPOTEEventRecord
    public var doorOpen: [Bool]
    public var buttonPressed: [Bool]
    public var systemError: UInt8
    /// The controller clock (2-digit year, century 20 implied); nil when zero or unreadable.
    public var systemTime: UHPPOTEDateTime?
    /// The clock fields (date at 51, then time at 37) when they are not a real time.
    public var unreadableSystemTime: UHPPOTEUnreadableTime?
    public var sequence: UInt32
    public var specialInfo: UInt8
    public var relays: UInt8
    public var inputs: UInt8

    public init(
        event: UHPPOTEEventRecord, doorOpen: [Bool] = [false, false, false, false],
        buttonPressed: [Bool] = [false, false, false, false], systemError: UInt8 = 0, systemTime: UHPPOTEDateTime?,
        sequence: UInt32 = 0, specialInfo: UInt8 = 0, relays: UInt8 = 0, inputs: UInt8 = 0
    ) {
        self.event = event
        self.doorOpen = doorOpen
        self.buttonPressed = buttonPressed
        self.systemError = systemError
        self.systemTime = systemTime
        self.sequence = sequence
        self.specialInfo = specialInfo
        self.relays = relays
        self.inputs = inputs
    }
}

/// A get-controller (discovery) reply.
public struct UHPPOTEControllerInfo: Sendable, Equatable {
    public var address: UHPPOTEIPv4
    public var netmask: UHPPOTEIPv4
    public var gateway: UHPPOTEIPv4
    public var mac: [UInt8]
    /// Firmware version as printed, e.g. `v6.62`.
    public var version: String
    /// Firmware release date `YYYY-MM-DD`, nil when zero.
    public var released: String?

    public init(address: UHPPOTEIPv4, netmask: UHPPOTEIPv4, gateway: UHPPOTEIPv4, mac: [UInt8], version: String, released: String?) {
        self.address = address
        self.netmask = netmask
        self.gateway = gateway
        self.mac = mac
        self.version = version
        self.released = released
    }

    public var macText: String { mac.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":") }
}

/// Where a controller pushes its status packets.
public struct UHPPOTEListenerAddress: Sendable, Equatable {
    public var address: UHPPOTEIPv4
    public var port: UInt16
    /// Seconds between repeated pushes of the last event; 0 = only on new events.
    public var intervalSeconds: UInt8

    public init(address: UHPPOTEIPv4, port: UInt16, intervalSeconds: UInt8 = 0) {
        self.address = address
        self.port = port
        self.intervalSeconds = intervalSeconds
    }
}

/// A request from the gateway to a controller.
public enum UHPPOTERequest: Sendable, Equatable {
    case getController
    case getStatus
    case getTime
    case setTime(UHPPOTEDateTime)
    case openDoor(UInt8)
    case recordSpecialEvents(Bool)
    case setListener(UHPPOTEListenerAddress)
    case getListener
    case getEvent(index: UInt32)
    case getEventIndex
    case setEventIndex(UInt32)

    public var function: UHPPOTEFunction {
        switch self {
        case .getController: .getController
        case .getStatus: .getStatus
        case .getTime: .getTime
        case .setTime: .setTime
        case .openDoor: .openDoor
        case .recordSpecialEvents: .recordSpecialEvents
        case .setListener: .setListener
        case .getListener: .getListener
        case .getEvent: .getEvent
        case .getEventIndex: .getEventIndex
        case .setEventIndex: .setEventIndex
        }
    }

    /// The 64-byte datagram; serial 0 addresses every controller (discovery).
    public func encode(serial: UInt32) -> [UInt8] {
        var w = FrameWriter(function: function, serial: serial)
        switch self {
        case .getController, .getStatus, .getTime, .getListener, .getEventIndex: break
        case .setTime(let time): w.dateTime(time, at: UHPPOTELayout.dateTime)
        case .openDoor(let door): w.u8(door, at: UHPPOTELayout.door)
        case .recordSpecialEvents(let on): w.bool(on, at: UHPPOTELayout.flag)
        case .setListener(let listener): w.listener(listener)
        case .getEvent(let index): w.u32(index, at: UHPPOTELayout.index)
        case .setEventIndex(let index):
            w.u32(index, at: UHPPOTELayout.index)
            w.u32(UHPPOTELayout.magic, at: UHPPOTELayout.indexMagic)
        }
        return w.bytes
    }

    /// Reads a request (the simulator's side, and round-trip tests).
    public static func decode(_ bytes: [UInt8]) throws(UHPPOTECodecError) -> (serial: UInt32, request: UHPPOTERequest) {
        let r = try FrameReader(bytes)
        let request: UHPPOTERequest
        switch r.function {
        case .getController: request = .getController
        case .getStatus: request = .getStatus
        case .getTime: request = .getTime
        case .setTime:
            guard let time = try r.dateTime(at: UHPPOTELayout.dateTime) else {
                throw UHPPOTECodecError(.date, "set-time without a time (all zeros at offset \(UHPPOTELayout.dateTime))")
            }
            request = .setTime(time)
        case .openDoor: request = .openDoor(r.u8(UHPPOTELayout.door))
        case .recordSpecialEvents: request = .recordSpecialEvents(r.bool(UHPPOTELayout.flag))
        case .setListener: request = .setListener(r.listener())
        case .getListener: request = .getListener
        case .getEvent: request = .getEvent(index: r.u32(UHPPOTELayout.index))
        case .getEventIndex: request = .getEventIndex
        case .setEventIndex: request = .setEventIndex(r.u32(UHPPOTELayout.index))
        }
        return (r.serial, request)
    }
}

/// A controller's reply (or, for `.status`, a pushed listener packet).
public enum UHPPOTEResponse: Sendable, Equatable {
    case controller(UHPPOTEControllerInfo)
    case status(UHPPOTEStatus)
    case time(UHPPOTEDateTime?)
    case setTime(UHPPOTEDateTime?)
    case openDoor(accepted: Bool)
    case recordSpecialEvents(ok: Bool)
    case setListener(ok: Bool)
    case listener(UHPPOTEListenerAddress)
    case event(UHPPOTEEventRecord)
    case eventIndex(UInt32)
    case setEventIndex(ok: Bool)

    public var function: UHPPOTEFunction {
        switch self {
        case .controller: .getController
        case .status: .getStatus
        case .time: .getTime
        case .setTime: .setTime
        case .openDoor: .openDoor
        case .recordSpecialEvents: .recordSpecialEvents
        case .setListener: .setListener
        case .listener: .getListener
        case .event: .getEvent
        case .eventIndex: .getEventIndex
        case .setEventIndex: .setEventIndex
        }
    }

    /// The 64-byte datagram a controller would send.
    public func encode(serial: UInt32) -> [UInt8] {
        var w = FrameWriter(function: function, serial: serial)
        switch self {
        case .controller(let info):
            w.ipv4(info.address, at: UHPPOTELayout.Controller.address)
            w.ipv4(info.netmask, at: UHPPOTELayout.Controller.netmask)
            w.ipv4(info.gateway, at: UHPPOTELayout.Controller.gateway)
            for (i, b) in info.mac.prefix(6).enumerated() { w.u8(b, at: UHPPOTELayout.Controller.mac + i) }
            w.version(info.version, at: UHPPOTELayout.Controller.version)
            w.releaseDate(info.released, at: UHPPOTELayout.Controller.released)
        case .status(let status): w.status(status)
        case .time(let time), .setTime(let time): if let time { w.dateTime(time, at: UHPPOTELayout.dateTime) }
        case .openDoor(let ok), .recordSpecialEvents(let ok), .setListener(let ok), .setEventIndex(let ok):
            w.bool(ok, at: UHPPOTELayout.flag)
        case .listener(let listener): w.listener(listener)
        case .event(let record): w.event(record)
        case .eventIndex(let index): w.u32(index, at: UHPPOTELayout.index)
        }
        return w.bytes
    }

    /// Reads a reply. With `function` and `serial`, a frame for another message or controller is
    /// refused (`wrong-function`, `wrong-serial`) before its payload is looked at.
    public static func decode(
        _ bytes: [UInt8], function expected: UHPPOTEFunction? = nil, serial expectedSerial: UInt32? = nil
    ) throws(UHPPOTECodecError) -> (serial: UInt32, response: UHPPOTEResponse) {
        let r = try FrameReader(bytes)
        if let expected, r.function != expected {
            throw UHPPOTECodecError(
                .function, "function code 0x\(hex(r.function.rawValue)) (expected 0x\(hex(expected.rawValue)))")
        }
        if let expectedSerial, expectedSerial != 0, r.serial != expectedSerial {
            throw UHPPOTECodecError(.serial, "controller serial \(r.serial) (expected \(expectedSerial))")
        }
        let response: UHPPOTEResponse
        switch r.function {
        case .getController:
            response = .controller(
                UHPPOTEControllerInfo(
                    address: r.ipv4(UHPPOTELayout.Controller.address), netmask: r.ipv4(UHPPOTELayout.Controller.netmask),
                    gateway: r.ipv4(UHPPOTELayout.Controller.gateway),
                    mac: Array(bytes[UHPPOTELayout.Controller.mac..<UHPPOTELayout.Controller.mac + 6]),
                    version: try r.version(UHPPOTELayout.Controller.version),
                    released: try r.releaseDate(UHPPOTELayout.Controller.released)))
        case .getStatus: response = .status(r.status())
        case .getTime: response = .time(try r.dateTime(at: UHPPOTELayout.dateTime))
        case .setTime: response = .setTime(try r.dateTime(at: UHPPOTELayout.dateTime))
        case .openDoor: response = .openDoor(accepted: r.bool(UHPPOTELayout.flag))
        case .recordSpecialEvents: response = .recordSpecialEvents(ok: r.bool(UHPPOTELayout.flag))
        case .setListener: response = .setListener(ok: r.bool(UHPPOTELayout.flag))
        case .getListener: response = .listener(r.listener())
        case .getEvent: response = .event(r.event())
        case .getEventIndex: response = .eventIndex(r.u32(UHPPOTELayout.index))
        case .setEventIndex: response = .setEventIndex(ok: r.bool(UHPPOTELayout.flag))
        }
        return (r.serial, response)
    }
}

func hex(_ byte: UInt8) -> String { (byte < 16 ? "0" : "") + String(byte, radix: 16) }

/// `00: 17 20 00 00 …` lines of 16 bytes, for logs and test failures.
public func uhppoteHexDump(_ bytes: [UInt8]) -> String {
    stride(from: 0, to: bytes.count, by: 16).map { start in
        let line = bytes[start..<min(start + 16, bytes.count)].map(hex).joined(separator: " ")
        return "\(hex(UInt8(start))): \(line)"
    }.joined(separator: "\n")
}

// MARK: - Field codings

/// Writes fields into a zeroed 64-byte frame.
struct FrameWriter {
    private(set) var bytes = [UInt8](repeating: 0, count: UHPPOTELayout.frameLength)

    init(function: UHPPOTEFunction, serial: UInt32) {
        bytes[0] = UHPPOTELayout.startByte
        bytes[UHPPOTELayout.function] = function.rawValue
        u32(serial, at: UHPPOTELayout.serial)
    }

    mutating func u8(_ v: UInt8, at offset: Int) { bytes[offset] = v }
    mutating func bool(_ v: Bool, at offset: Int) { bytes[offset] = v ? 1 : 0 }
    mutating func u16(_ v: UInt16, at offset: Int) {
        bytes[offset] = UInt8(truncatingIfNeeded: v)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: v >> 8)
    }
    mutating func u32(_ v: UInt32, at offset: Int) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
    }
    mutating func ipv4(_ a: UHPPOTEIPv4, at offset: Int) {
        (bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]) = a.bytes
    }
    mutating func bcd(_ digits: [Int], at offset: Int) {
        for (i, pair) in digits.enumerated() { bytes[offset + i] = UInt8((pair / 10) << 4 | (pair % 10)) }
    }
    mutating func dateTime(_ t: UHPPOTEDateTime, at offset: Int) {
        bcd([t.year / 100, t.year % 100, t.month, t.day, t.hour, t.minute, t.second], at: offset)
    }
    mutating func version(_ text: String, at offset: Int) {
        let parts = text.drop { $0 == "v" }.split(separator: ".").compactMap { Int($0) }
        if parts.count == 2 { bcd([parts[0] % 100, parts[1] % 100], at: offset) }
    }
    mutating func releaseDate(_ text: String?, at offset: Int) {
        let parts = (text ?? "").split(separator: "-").compactMap { Int($0) }
        if parts.count == 3 { bcd([parts[0] / 100, parts[0] % 100, parts[1], parts[2]], at: offset) }
    }
    mutating func listener(_ l: UHPPOTEListenerAddress) {
        ipv4(l.address, at: UHPPOTELayout.Listener.address)
        u16(l.port, at: UHPPOTELayout.Listener.port)
        u8(l.intervalSeconds, at: UHPPOTELayout.Listener.interval)
    }
    mutating func event(_ e: UHPPOTEEventRecord) {
        typealias E = UHPPOTELayout.Event
        u32(e.index, at: E.index)
        u8(e.type, at: E.type)
        bool(e.granted, at: E.granted)
        u8(e.door, at: E.door)
        u8(e.direction, at: E.direction)
        u32(e.card, at: E.card)
        if let t = e.timestamp {
            dateTime(t, at: E.timestamp)
        } else if let raw = e.unreadableTime {
            for (i, b) in raw.bytes.prefix(7).enumerated() { u8(b, at: E.timestamp + i) }
        }
        u8(e.reason, at: E.reason)
    }
    mutating func status(_ s: UHPPOTEStatus) {
        typealias S = UHPPOTELayout.Status
        event(s.event)
        for i in 0..<4 {
            bool(s.doorOpen.count > i && s.doorOpen[i], at: S.doorOpen + i)
            bool(s.buttonPressed.count > i && s.buttonPressed[i], at: S.buttonPressed + i)
        }
        u8(s.systemError, at: S.systemError)
        if let t = s.systemTime {
            bcd([t.hour, t.minute, t.second], at: S.systemTime)
            bcd([t.year % 100, t.month, t.day], at: S.systemDate)
        } else if let raw = s.unreadableSystemTime, raw.bytes.count == 6 {
            for i in 0..<3 {
                u8(raw.bytes[i], at: S.systemDate + i)
                u8(raw.bytes[3 + i], at: S.systemTime + i)
            }
        }
        u32(s.sequence, at: S.sequence)
        u8(s.specialInfo, at: S.specialInfo)
        u8(s.relays, at: S.relays)
        u8(s.inputs, at: S.inputs)
    }
}

/// Reads fields from a frame whose length and start byte were checked on construction.
struct FrameReader {
    let bytes: [UInt8]
    let function: UHPPOTEFunction
    let serial: UInt32

    init(_ bytes: [UInt8]) throws(UHPPOTECodecError) {
        guard bytes.count == UHPPOTELayout.frameLength else {
            throw UHPPOTECodecError(.length, "invalid frame length \(bytes.count) (expected \(UHPPOTELayout.frameLength))")
        }
        guard bytes[0] == UHPPOTELayout.startByte || bytes[0] == UHPPOTELayout.legacyStartByte else {
            throw UHPPOTECodecError(.startByte, "start byte 0x\(hex(bytes[0])) (expected 0x17 or 0x19)")
        }
        guard let function = UHPPOTEFunction(rawValue: bytes[UHPPOTELayout.function]) else {
            throw UHPPOTECodecError(
                .function,
                "unknown function code 0x\(hex(bytes[UHPPOTELayout.function])) (expected one of \(UHPPOTEFunction.allCases.map { "0x" + hex($0.rawValue) }.joined(separator: ", ")))")
        }
        self.bytes = bytes
        self.function = function
        var serial: UInt32 = 0
        for i in 0..<4 { serial |= UInt32(bytes[UHPPOTELayout.serial + i]) << (8 * UInt32(i)) }
        self.serial = serial
    }

    func u8(_ offset: Int) -> UInt8 { bytes[offset] }
    func bool(_ offset: Int) -> Bool { bytes[offset] != 0 }
    func u16(_ offset: Int) -> UInt16 { UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8 }
    func u32(_ offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) }
    }
    func ipv4(_ offset: Int) -> UHPPOTEIPv4 { UHPPOTEIPv4(bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]) }

    /// `count` BCD bytes as two-digit numbers; nil when all are zero ("none").
    func bcd(_ offset: Int, _ count: Int) throws(UHPPOTECodecError) -> [Int]? {
        let slice = bytes[offset..<offset + count]
        if slice.allSatisfy({ $0 == 0 }) { return nil }
        var out: [Int] = []
        for (i, b) in slice.enumerated() {
            guard b >> 4 <= 9, b & 0x0F <= 9 else {
                throw UHPPOTECodecError(.bcd, "byte 0x\(hex(b)) at offset \(offset + i) is not BCD (each nibble must be 0–9)")
            }
            out.append(Int(b >> 4) * 10 + Int(b & 0x0F))
        }
        return out
    }

    func dateTime(at offset: Int) throws(UHPPOTECodecError) -> UHPPOTEDateTime? {
        guard let d = try bcd(offset, 7) else { return nil }
        guard let t = UHPPOTEDateTime(year: d[0] * 100 + d[1], month: d[2], day: d[3], hour: d[4], minute: d[5], second: d[6]) else {
            throw UHPPOTECodecError(.date, "BCD \(d.map { $0 < 10 ? "0\($0)" : "\($0)" }.joined()) at offset \(offset) is not a date and time (expected YYYYMMDDhhmmss, years 2000–2099)")
        }
        return t
    }

    func version(_ offset: Int) throws(UHPPOTECodecError) -> String {
        guard let v = try bcd(offset, 2) else { return "v0.00" }
        return "v\(v[0]).\(v[1] < 10 ? "0" : "")\(v[1])"
    }

    func releaseDate(_ offset: Int) throws(UHPPOTECodecError) -> String? {
        guard let d = try bcd(offset, 4) else { return nil }
        guard let t = UHPPOTEDateTime(year: d[0] * 100 + d[1], month: d[2], day: d[3], hour: 0, minute: 0, second: 0) else {
            throw UHPPOTECodecError(.date, "release date at offset \(offset) is not a date (expected YYYYMMDD)")
        }
        return String(t.description.prefix(10))
    }

    func listener() -> UHPPOTEListenerAddress {
        UHPPOTEListenerAddress(
            address: ipv4(UHPPOTELayout.Listener.address), port: u16(UHPPOTELayout.Listener.port),
            intervalSeconds: u8(UHPPOTELayout.Listener.interval))
    }

    /// A log record. A time that is not a real time does not make the record unreadable: it is
    /// kept as `unreadableTime`, so the record is still delivered (with the gateway's clock) and
    /// the log read moves past it instead of asking for it again forever.
    func event() -> UHPPOTEEventRecord {
        typealias E = UHPPOTELayout.Event
        var record = UHPPOTEEventRecord(
            index: u32(E.index), type: u8(E.type), granted: bool(E.granted), door: u8(E.door),
            direction: u8(E.direction), card: u32(E.card), timestamp: nil, reason: u8(E.reason))
        do {
            record.timestamp = try dateTime(at: E.timestamp)
        } catch {
            record.unreadableTime = unreadable(Array(bytes[E.timestamp..<E.timestamp + 7]), digits: { $0 }, error)
        }
        return record
    }

    /// A status reply or listener packet; an unreadable clock or newest-event time is kept as
    /// written rather than discarding the whole status (and with it the newest log index).
    func status() -> UHPPOTEStatus {
        typealias S = UHPPOTELayout.Status
        var time: UHPPOTEDateTime?
        var unreadableTime: UHPPOTEUnreadableTime?
        // The status clock is two parts: YYMMDD at 51 and hhmmss at 37.
        do throws(UHPPOTECodecError) {
            if let date = try bcd(S.systemDate, 3) {
                let clock = try bcd(S.systemTime, 3) ?? [0, 0, 0]
                guard let t = UHPPOTEDateTime(year: 2000 + date[0], month: date[1], day: date[2], hour: clock[0], minute: clock[1], second: clock[2]) else {
                    throw UHPPOTECodecError(.date, "system date/time at offsets \(S.systemDate)/\(S.systemTime) is not a date and time (expected YYMMDD and hhmmss)")
                }
                time = t
            }
        } catch {
            let raw = Array(bytes[S.systemDate..<S.systemDate + 3]) + Array(bytes[S.systemTime..<S.systemTime + 3])
            unreadableTime = unreadable(raw, digits: { [20] + $0 }, error)
        }
        var status = UHPPOTEStatus(
            event: event(), doorOpen: (0..<4).map { bool(S.doorOpen + $0) },
            buttonPressed: (0..<4).map { bool(S.buttonPressed + $0) }, systemError: u8(S.systemError), systemTime: time,
            sequence: u32(S.sequence), specialInfo: u8(S.specialInfo), relays: u8(S.relays), inputs: u8(S.inputs))
        status.unreadableSystemTime = unreadableTime
        return status
    }

    /// `raw` as the controller wrote it: `YYYY-MM-DD hh:mm:ss` from its BCD digits (after
    /// `digits` adds an implied century), or hex when a byte is not BCD.
    private func unreadable(_ raw: [UInt8], digits: ([Int]) -> [Int], _ error: UHPPOTECodecError) -> UHPPOTEUnreadableTime {
        let pairs = raw.map { Int($0 >> 4) * 10 + Int($0 & 0x0F) }
        let text: String
        if raw.allSatisfy({ $0 >> 4 <= 9 && $0 & 0x0F <= 9 }) {
            let d = digits(pairs).map { $0 < 10 ? "0\($0)" : "\($0)" }
            text = d.count == 7 ? "\(d[0])\(d[1])-\(d[2])-\(d[3]) \(d[4]):\(d[5]):\(d[6])" : d.joined()
        } else {
            text = "0x" + raw.map(hex).joined()
        }
        return UHPPOTEUnreadableTime(bytes: raw, text: text, reason: error.description)
    }
}
