import Foundation
import GatehouseCore
import GatehouseSinks
import Testing
import Logging
import Synchronization

@testable import GatehouseIngest

/// Literal 64-byte vectors in the layout of uhppoted's public codec (Drivers/UHPPOTE/README.md) (serial 423187757 =
/// `2d 55 39 19`), decoded and encoded byte for byte.
@Suite("uhppote codec")
struct UHPPOTECodecTests {
    static let serial: UInt32 = 423_187_757

    /// `"00: 17 20 …"` lines (offset prefixes and `..` ranges ignored) → 64 bytes, zero-padded.
    static func frame(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for line in text.split(separator: "\n") {
            let body = line.contains(":") ? line.split(separator: ":", maxSplits: 1)[1] : line
            bytes += body.split(separator: " ").compactMap { UInt8($0, radix: 16) }
        }
        return bytes + [UInt8](repeating: 0, count: max(0, 64 - bytes.count))
    }

    static func time(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int, _ s: Int) -> UHPPOTEDateTime {
        UHPPOTEDateTime(year: y, month: mo, day: d, hour: h, minute: mi, second: s) ?? UHPPOTEDateTime(Timestamp(milliseconds: 0), zone: .gmt)
    }

    static func sameBytes(_ actual: [UInt8], _ expected: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(
            actual == expected, "bytes differ\nexpected:\n\(uhppoteHexDump(expected))\nactual:\n\(uhppoteHexDump(actual))",
            sourceLocation: sourceLocation)
    }

    struct RequestVector: Sendable, CustomTestStringConvertible {
        let name: String
        let bytes: String
        let request: UHPPOTERequest
        var testDescription: String { name }
    }

    static let requests: [RequestVector] = [
        RequestVector(name: "get-status", bytes: "17 20 00 00 2d 55 39 19", request: .getStatus),
        RequestVector(name: "get-event 1843", bytes: "17 b0 00 00 2d 55 39 19 33 07 00 00", request: .getEvent(index: 1843)),
        RequestVector(
            name: "set-listener 192.168.10.20:60001 every 15 s", bytes: "17 90 00 00 2d 55 39 19 c0 a8 0a 14 61 ea 0f 00",
            request: .setListener(UHPPOTEListenerAddress(address: UHPPOTEIPv4(192, 168, 10, 20), port: 60001, intervalSeconds: 15))),
        RequestVector(name: "open-door 1", bytes: "17 40 00 00 2d 55 39 19 01", request: .openDoor(1)),
        RequestVector(
            name: "set-time 2025-03-14 08:31:07", bytes: "17 30 00 00 2d 55 39 19 20 25 03 14 08 31 07",
            request: .setTime(time(2025, 3, 14, 8, 31, 7))),
        RequestVector(
            name: "set-event-index 1842 with magic", bytes: "17 b2 00 00 2d 55 39 19 32 07 00 00 55 aa aa 55",
            request: .setEventIndex(1842)),
        RequestVector(name: "get-time", bytes: "17 32 00 00 2d 55 39 19", request: .getTime),
        RequestVector(name: "get-event-index", bytes: "17 b4 00 00 2d 55 39 19", request: .getEventIndex),
        RequestVector(name: "get-listener", bytes: "17 92 00 00 2d 55 39 19", request: .getListener),
        RequestVector(name: "record-special-events on", bytes: "17 8e 00 00 2d 55 39 19 01", request: .recordSpecialEvents(true)),
    ]

    @Test("requests encode to the documented bytes and decode back", arguments: requests)
    func request(_ vector: RequestVector) throws {
        let bytes = Self.frame(vector.bytes)
        Self.sameBytes(vector.request.encode(serial: Self.serial), bytes)
        let (serial, decoded) = try UHPPOTERequest.decode(bytes)
        #expect(serial == Self.serial)
        #expect(decoded == vector.request)
    }

    @Test("discovery is a broadcast with serial 0")
    func discoveryRequest() {
        Self.sameBytes(UHPPOTERequest.getController.encode(serial: 0), Self.frame("17 94"))
    }

    struct ResponseVector: Sendable, CustomTestStringConvertible {
        let name: String
        let bytes: String
        let response: UHPPOTEResponse
        var testDescription: String { name }
    }

    static let pushedStatus = UHPPOTEStatus(
        event: UHPPOTEEventRecord(
            index: 1842, type: 1, granted: true, door: 2, direction: 1, card: 8_165_537, timestamp: time(2025, 3, 14, 8, 31, 7),
            reason: 1),
        doorOpen: [false, true, false, false], systemTime: time(2025, 3, 14, 8, 31, 8), relays: 0x02)

    static let responses: [ResponseVector] = [
        ResponseVector(
            name: "pushed listener packet: card 8165537 granted on door 2",
            bytes: """
                00: 17 20 00 00 2d 55 39 19 32 07 00 00 01 01 02 01
                10: a1 98 7c 00 20 25 03 14 08 31 07 01 00 01 00 00
                20: 00 00 00 00 00 08 31 08 00 00 00 00 00 00 00 00
                30: 00 02 00 25 03 14 00 00 00 00 00 00 00 00 00 00
                """,
            response: .status(pushedStatus)),
        ResponseVector(
            name: "get-event 1843: card 10058399 denied on door 1, out, reason 6",
            bytes: """
                17 b0 00 00 2d 55 39 19 33 07 00 00 01 00 01 02
                9f 7a 99 00 20 25 03 14 22 15 02 06
                """,
            response: .event(
                UHPPOTEEventRecord(
                    index: 1843, type: 1, granted: false, door: 1, direction: 2, card: 10_058_399,
                    timestamp: time(2025, 3, 14, 22, 15, 2), reason: 6))),
        ResponseVector(
            name: "get-event: slot overwritten", bytes: "17 b0 00 00 2d 55 39 19 05 00 00 00 ff",
            response: .event(UHPPOTEEventRecord(index: 5, type: 0xFF, granted: false, door: 0, direction: 0, card: 0, timestamp: nil, reason: 0))),
        ResponseVector(
            name: "get-time", bytes: "17 32 00 00 2d 55 39 19 20 25 12 31 23 59 59", response: .time(time(2025, 12, 31, 23, 59, 59))),
        ResponseVector(name: "get-event-index", bytes: "17 b4 00 00 2d 55 39 19 32 07 00 00", response: .eventIndex(1842)),
        ResponseVector(
            name: "get-listener", bytes: "17 92 00 00 2d 55 39 19 c0 a8 0a 14 61 ea 0f",
            response: .listener(UHPPOTEListenerAddress(address: UHPPOTEIPv4(192, 168, 10, 20), port: 60001, intervalSeconds: 15))),
        ResponseVector(name: "open-door accepted", bytes: "17 40 00 00 2d 55 39 19 01", response: .openDoor(accepted: true)),
        ResponseVector(
            name: "get-controller",
            bytes: "17 94 00 00 2d 55 39 19 c0 a8 01 64 ff ff ff 00 c0 a8 01 01 00 12 23 34 45 56 06 62 20 24 01 15",
            response: .controller(
                UHPPOTEControllerInfo(
                    address: UHPPOTEIPv4(192, 168, 1, 100), netmask: UHPPOTEIPv4(255, 255, 255, 0),
                    gateway: UHPPOTEIPv4(192, 168, 1, 1), mac: [0x00, 0x12, 0x23, 0x34, 0x45, 0x56], version: "v6.62",
                    released: "2024-01-15"))),
    ]

    @Test("responses decode to the documented fields, and encode back byte for byte", arguments: responses)
    func response(_ vector: ResponseVector) throws {
        let bytes = Self.frame(vector.bytes)
        let (serial, decoded) = try UHPPOTEResponse.decode(bytes, function: vector.response.function, serial: Self.serial)
        #expect(serial == Self.serial)
        #expect(decoded == vector.response)
        Self.sameBytes(decoded.encode(serial: serial), bytes)
    }

    @Test("v6.62 pushes start with 0x19 and are accepted")
    func legacyStartByte() throws {
        var bytes = Self.frame(Self.responses[0].bytes)
        bytes[0] = 0x19
        let (_, decoded) = try UHPPOTEResponse.decode(bytes, function: .getStatus)
        #expect(decoded == .status(Self.pushedStatus))
    }

    @Test("the sample push maps to access.granted, card subject, door-2, in, site zone applied")
    func mapping() throws {
        let zone = try #require(TimeZone(identifier: "Asia/Shanghai"))
        let draft = try #require(UHPPOTEEventCodes.draft(for: Self.pushedStatus.event, serial: Self.serial, zone: zone))
        #expect(draft.kind == .accessGranted)
        #expect(draft.result == .granted)
        #expect(draft.subject == Subject(type: .card, value: "8165537"))
        #expect(draft.point == "door-2")
        #expect(draft.direction == .in)
        #expect(draft.occurredAt?.rfc3339 == "2025-03-14T00:31:07.000Z")
        #expect(draft.deviceTime == "2025-03-14 08:31:07")
        #expect(draft.dedupKey == "423187757:1842")
        #expect(draft.attributes?["eventIndex"] == .number(1842))
    }

    @Test(
        "reason codes map onto kinds",
        arguments: [
            (UInt8(2), UInt8(20), EventKind.doorExitRequest, AccessResult?.none),
            (2, 23, .doorOpened, nil), (2, 24, .doorClosed, nil), (3, 37, .doorHeldOpen, nil), (3, 38, .doorForced, nil),
            (2, 44, .doorRemoteOpen, nil), (3, 31, .doorExitRequest, .denied), (3, 28, .deviceRebooted, nil),
            (3, 39, .alarmFire, nil), (3, 34, .alarmDuress, nil), (2, 25, .accessGranted, .granted), (3, 99, .vendorOther, nil),
        ])
    func reasons(type: UInt8, reason: UInt8, kind: EventKind, result: AccessResult?) throws {
        let record = UHPPOTEEventRecord(index: 9, type: type, granted: false, door: 3, direction: 7, card: 0, timestamp: nil, reason: reason)
        let draft = try #require(UHPPOTEEventCodes.draft(for: record, serial: 1, zone: .gmt))
        #expect(draft.kind == kind)
        #expect(draft.result == result)
        #expect(draft.subject == nil)
        #expect(draft.direction == nil, "direction 7 is neither in (1) nor out (2)")
        #expect(draft.point == "door-3")
    }

    @Test("a denied swipe keeps the reason text")
    func deniedReason() throws {
        let record = UHPPOTEEventRecord(index: 1843, type: 1, granted: false, door: 1, direction: 2, card: 10_058_399, timestamp: nil, reason: 6)
        let draft = try #require(UHPPOTEEventCodes.draft(for: record, serial: Self.serial, zone: .gmt))
        #expect(draft.kind == .accessDenied && draft.result == .denied && draft.direction == .out)
        #expect(draft.attributes?["reason"] == .string("denied: no privilege"))
    }

    struct Malformed: Sendable, CustomTestStringConvertible {
        let name: String
        let bytes: [UInt8]
        let reason: UHPPOTECodecError.Reason
        let fragment: String
        var testDescription: String { name }
    }

    static let malformed: [Malformed] = {
        let good = frame("17 b0 00 00 2d 55 39 19 33 07 00 00 01 00 01 02 9f 7a 99 00 20 25 03 14 22 15 02 06")
        func with(_ offset: Int, _ value: UInt8) -> [UInt8] {
            var b = good
            b[offset] = value
            return b
        }
        return [
            Malformed(name: "63 bytes", bytes: Array(good.prefix(63)), reason: .length, fragment: "invalid frame length 63 (expected 64)"),
            Malformed(name: "65 bytes", bytes: good + [0], reason: .length, fragment: "length 65"),
            Malformed(name: "empty", bytes: [], reason: .length, fragment: "length 0"),
            Malformed(name: "start byte 0x18", bytes: with(0, 0x18), reason: .startByte, fragment: "0x18 (expected 0x17 or 0x19)"),
            Malformed(name: "unknown function 0x77", bytes: with(1, 0x77), reason: .function, fragment: "0x77"),
            Malformed(name: "get-time instead of get-event", bytes: with(1, 0x32), reason: .function, fragment: "0x32 (expected 0xb0)"),
            Malformed(name: "another controller", bytes: with(4, 0x2e), reason: .serial, fragment: "423187758 (expected 423187757)"),
        ]
    }()

    /// Get-event replies whose time field is not a time: the record is still good.
    static let unreadableTimes: [(name: String, bytes: [UInt8], text: String, fragment: String)] = {
        let good = frame("17 b0 00 00 2d 55 39 19 33 07 00 00 01 00 01 02 9f 7a 99 00 20 25 03 14 22 15 02 06")
        func with(_ changes: [Int: UInt8]) -> [UInt8] {
            var b = good
            for (offset, value) in changes { b[offset] = value }
            return b
        }
        return [
            ("BCD nibble 0xA", with([22: 0x1A]), "0x20251a14221502", "0x1a at offset 22 is not BCD"),
            ("month 13", with([22: 0x13]), "2025-13-14 22:15:02", "is not a date and time"),
            ("30 February", with([22: 0x02, 23: 0x30]), "2025-02-30 22:15:02", "not a date"),
            ("hour 24", with([24: 0x24]), "2025-03-14 24:15:02", "not a date"),
        ]
    }()

    @Test("a record whose time is not a time still decodes, keeps the time as written and re-encodes byte for byte")
    func unreadableTime() throws {
        for vector in Self.unreadableTimes {
            let (_, response) = try UHPPOTEResponse.decode(vector.bytes, function: .getEvent, serial: Self.serial)
            guard case .event(let record) = response else {
                Issue.record("\(vector.name): \(response)")
                continue
            }
            #expect(record.index == 1843 && record.card == 10_058_399 && record.door == 1, "\(vector.name)")
            #expect(record.timestamp == nil)
            #expect(record.unreadableTime?.text == vector.text, "\(vector.name): \(record.unreadableTime?.text ?? "nil")")
            #expect(record.unreadableTime?.reason.contains(vector.fragment) == true, "\(vector.name)")
            #expect(response.encode(serial: Self.serial) == vector.bytes, "\(vector.name)\n\(uhppoteHexDump(vector.bytes))")
            let draft = try #require(UHPPOTEEventCodes.draft(for: record, serial: Self.serial, zone: .gmt))
            #expect(draft.occurredAt == nil && draft.deviceTime == vector.text && draft.timeIssue == record.unreadableTime?.reason)
            #expect(draft.subject?.value == "10058399" && draft.dedupKey == "\(Self.serial):1843")
        }
    }

    @Test("a status whose clock and newest event time are not times keeps its newest index")
    func unreadableStatusTimes() throws {
        var bytes = [UInt8](repeating: 0, count: 64)
        bytes[0] = 0x17
        bytes[1] = 0x20
        for (i, b) in withUnsafeBytes(of: Self.serial.littleEndian, Array.init).enumerated() { bytes[4 + i] = b }
        bytes[8] = 0x2A  // newest index 42
        bytes[12] = 0x01
        bytes.replaceSubrange(20..<27, with: [0x20, 0x25, 0x02, 0x30, 0x10, 0x00, 0x00])  // 30 February
        bytes.replaceSubrange(37..<40, with: [0x25, 0x61, 0x00])  // 25:61:00
        bytes.replaceSubrange(51..<54, with: [0x25, 0x03, 0x14])
        let (_, response) = try UHPPOTEResponse.decode(bytes, function: .getStatus, serial: Self.serial)
        guard case .status(let status) = response else {
            Issue.record("\(response)")
            return
        }
        #expect(status.event.index == 42)
        #expect(status.event.unreadableTime?.text == "2025-02-30 10:00:00")
        #expect(status.systemTime == nil)
        #expect(status.unreadableSystemTime?.text == "2025-03-14 25:61:00")
        #expect(response.encode(serial: Self.serial) == bytes, "\(uhppoteHexDump(bytes))")
    }

    @Test("a get-time reply that is not a time is refused with its reason (the driver then sets the clock)")
    func unreadableClock() {
        var bytes = UHPPOTEResponse.time(nil).encode(serial: Self.serial)
        bytes.replaceSubrange(8..<15, with: [0x20, 0x25, 0x02, 0x30, 0x10, 0x00, 0x00])
        #expect(throws: UHPPOTECodecError.self) { try UHPPOTEResponse.decode(bytes, function: .getTime, serial: Self.serial) }
    }

    @Test("malformed datagrams are refused with a counted reason, never a crash", arguments: malformed)
    func refused(_ vector: Malformed) {
        let counter = UHPPOTERejections()
        do {
            let decoded = try UHPPOTEResponse.decode(vector.bytes, function: .getEvent, serial: Self.serial)
            Issue.record("accepted: \(decoded)\n\(uhppoteHexDump(vector.bytes))")
        } catch {
            counter.record(error)
            #expect(error.reason == vector.reason)
            #expect(error.description.contains(vector.fragment), "\(error.description)")
        }
        #expect(counter.count(vector.reason) == 1 && counter.total == 1)
    }

    @Test("random garbage never crashes the decoders")
    func fuzz() {
        var rng = SystemRandomNumberGenerator()
        var refused = 0
        for round in 0..<5000 {
            var bytes = (0..<(round % 7 == 0 ? Int.random(in: 0...80, using: &rng) : 64)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if bytes.count == 64, round % 2 == 0 { bytes[0] = 0x17 }
            if (try? UHPPOTEResponse.decode(bytes)) == nil { refused += 1 }
            _ = try? UHPPOTERequest.decode(bytes)
        }
        #expect(refused > 0)
    }

    @Test("all-zero dates mean none")
    func zeroDate() throws {
        let (_, decoded) = try UHPPOTEResponse.decode(Self.frame("17 32 00 00 2d 55 39 19"), function: .getTime)
        #expect(decoded == .time(nil))
    }

    @Test("device options are read with line numbers; validate checks serial, address and how options go together")
    func validation() throws {
        let found = DriverOptionFixture.diagnostics(
            driver: "uhppote", "poll_interval_seconds: 0\nset_time: maybe\ncolour: red\nset_listener: 10.0.0.1")
        let text = found.map(\.description).joined(separator: "\n")
        #expect(found.count == 4, "\(text)")
        #expect(text.contains("fixture.yaml:8:30: devices[0].options.poll_interval_seconds: 0 is out of range (expected 0.05 to 3600)"), "\(text)")
        #expect(text.contains("fixture.yaml:9:17: devices[0].options.set_time: expected true or false, found 'maybe'"), "\(text)")
        #expect(text.contains("fixture.yaml:10:7: devices[0].options.colour: unknown option"), "\(text)")
        #expect(text.contains("fixture.yaml:11:21: devices[0].options.set_listener: '10.0.0.1' is not host:port"), "\(text)")

        let driver = UHPPOTEDriver()
        var device = try #require(DriverOptionFixture.device(driver: "uhppote", "set_listener: 10.0.0.1:60001"))
        device.serial = "42x"
        device.address = "10.0.0.300"
        let problems = driver.validate(device: device).joined(separator: "\n")
        #expect(problems.contains("serial: '42x' is not a controller serial number"))
        #expect(problems.contains("address: '10.0.0.300' is not an IPv4 address"))
        #expect(problems.contains("options.set_listener: needs options.listen_port"))
        device = try #require(
            DriverOptionFixture.device(driver: "uhppote", "listen_port: 60001\nset_listener: 127.0.0.1:60001\nset_time: true\ntimeout_ms: 200"))
        device.serial = "423187757"
        device.address = "127.0.0.1:60123"
        #expect(driver.validate(device: device) == [])
        let settings = try UHPPOTESettings.parse(device).get()
        #expect(settings.listenPort == 60001 && settings.setTime && settings.timeoutMilliseconds == 200 && settings.retries == 1)
        #expect(settings.setListener?.port == 60001)
    }
}

/// Rejected datagrams are logged, but a flood of them is not: one line per reason per interval,
/// on an injected clock.
@Suite("UHPPOTE rejected datagrams in the log")
struct UHPPOTERejectionLogTests {
    final class Clock: Sendable {
        private let value = Mutex(1000.0)
        var now: Double { value.withLock { $0 } }
        func advance(_ seconds: Double) { value.withLock { $0 += seconds } }
    }

    @Test("the first rejection of a reason is logged, repeats within the interval are only counted, the next line says how many")
    func rateLimited() throws {
        let clock = Clock()
        let rejections = UHPPOTERejections(now: { clock.now }, logger: {
            var quiet = Logger(label: "test")
            quiet.logLevel = .critical
            return quiet
        })
        let wrongSerial = UHPPOTECodecError(.serial, "serial 423187758 (expected 423187757)")
        let first = try #require(rejections.record(wrongSerial))
        #expect(first.contains("wrong-serial") && first.contains("423187758"), "\(first)")
        for _ in 0..<50 { #expect(rejections.record(wrongSerial) == nil) }
        // Another reason has its own allowance.
        #expect(rejections.record(UHPPOTECodecError(.length, "63 bytes (expected 64)")) != nil)
        clock.advance(UHPPOTERejections.logIntervalSeconds)
        let next = try #require(rejections.record(wrongSerial))
        #expect(next.contains("and 50 more for the same reason"), "\(next)")
        #expect(rejections.count(.serial) == 52 && rejections.total == 53)
    }
}
