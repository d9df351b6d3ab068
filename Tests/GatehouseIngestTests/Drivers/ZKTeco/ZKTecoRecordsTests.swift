import Foundation
import GatehouseCore
import Testing

@testable import GatehouseIngest

/// Line parsers and the mapping to the schema, with the literal lines of the protocol notes.
@Suite("zkteco records")
struct ZKTecoRecordsTests {
    static let shanghai = TimeZone(identifier: "Asia/Shanghai") ?? .gmt

    static func drafts(_ line: String, _ table: ZKTecoTable, serial: String = "CGXK214760031") throws -> [EventDraft] {
        ZKTecoRecords.drafts(for: try ZKTecoRecords.parse(line, table: table, zone: shanghai), serial: serial, keepUserNames: true)
    }

    @Test("ATTLOG punches from the notes: face then card, local time read in the device zone")
    func attendance() throws {
        let face = try #require(try Self.drafts("1024\t2025-03-14 07:58:31\t0\t15\t0\t0\t0\t0", .attendance).first)
        #expect(face.kind == .accessGranted && face.result == .granted)
        #expect(face.subject == Subject(type: .person, value: "1024"))
        #expect(face.occurredAt?.rfc3339 == "2025-03-13T23:58:31.000Z")
        #expect(face.deviceTime == "2025-03-14 07:58:31")
        #expect(face.attributes?["verifyMode"] == .string("face"))
        #expect(face.attributes?["statusName"] == .string("check-in"))
        let card = try #require(try Self.drafts("2077\t2025-03-14 08:02:10\t255\t4\t0\t0\t0\t0", .attendance).first)
        #expect(card.attributes?["verifyMode"] == .string("card"))
        #expect(card.attributes?["statusName"] == nil)
        #expect(card.dedupKey != face.dedupKey)
        // The key never carries the PIN in clear: the privacy policy may hide the subject.
        #expect(card.dedupKey?.contains("2077") == false)
    }

    @Test("older firmware separates ATTLOG fields with spaces")
    func spaceSeparated() throws {
        let draft = try #require(try Self.drafts("1024 2025-03-14 07:58:31 0 1", .attendance).first)
        #expect(draft.subject?.value == "1024" && draft.attributes?["verifyMode"] == .string("fingerprint"))
        #expect(draft.occurredAt?.rfc3339 == "2025-03-13T23:58:31.000Z")
    }

    @Test("the same punch re-sent has the same dedup key; another verify mode does not")
    func dedupKeys() throws {
        let line = "1024\t2025-03-14 07:58:31\t0\t15\t0"
        #expect(try Self.drafts(line, .attendance)[0].dedupKey == Self.drafts(line + "\t0\t0", .attendance)[0].dedupKey)
        #expect(try Self.drafts(line, .attendance)[0].dedupKey != Self.drafts("1024\t2025-03-14 07:58:31\t0\t1\t0", .attendance)[0].dedupKey)
        #expect(try Self.drafts(line, .attendance)[0].dedupKey != Self.drafts(line, .attendance, serial: "OTHER")[0].dedupKey)
    }

    @Test("access-panel rtlog from the notes: card denied on door 2, exit side")
    func realtimeDenied() throws {
        let line = "time=2025-03-14 21:47:05\tpin=0\tcardno=10058399\teventaddr=2\tevent=27\tinoutstatus=1\tverifytype=4\tindex=5812"
        let draft = try #require(try Self.drafts(line, .realtimeEvent, serial: "DGD9190019050335").first)
        #expect(draft.kind == .accessDenied && draft.result == .denied)
        #expect(draft.attributes?["reason"] == .string("unregistered"))
        #expect(draft.subject == Subject(type: .card, value: "10058399"))
        #expect(draft.point == "door-2" && draft.direction == .out)
        #expect(draft.occurredAt?.rfc3339 == "2025-03-14T13:47:05.000Z")
        #expect(draft.attributes?["index"] == .string("5812"))
        // F22-style terminals post the same line to ATTLOG.
        #expect(try Self.drafts(line, .attendance, serial: "DGD9190019050335") == [draft])
    }

    @Test("rtlog event codes map to kinds", arguments: [
        (0, EventKind.accessGranted), (5, .accessGranted), (8, .doorRemoteOpen), (9, .doorRemoteClose), (20, .accessDenied),
        (48, .accessDenied), (28, .doorHeldOpen), (100, .alarmTamper), (101, .alarmDuress), (102, .doorForced),
        (200, .doorOpened), (201, .doorClosed), (202, .doorExitRequest), (209, .doorExitRequest), (206, .deviceRebooted),
        (105, .deviceOffline), (214, .deviceOnline), (700, .deviceOnline), (4242, .vendorOther),
    ])
    func eventCodes(code: Int, kind: EventKind) throws {
        let line = "time=2025-03-14 21:47:05\tpin=1024\tcardno=0\teventaddr=1\tevent=\(code)\tinoutstatus=0\tverifytype=1\tindex=9"
        let draft = try #require(try Self.drafts(line, .realtimeEvent).first)
        #expect(draft.kind == kind)
        #expect(draft.attributes?["event"] == .number(Double(code)))
        #expect(draft.subject == Subject(type: .person, value: "1024"))
    }

    @Test("transaction lines with ZK-encoded time_second and the other key spellings")
    func transactionDialect() throws {
        let encoded = ZKTecoRecords.zkEncode(year: 2025, month: 3, day: 14, hour: 21, minute: 47, second: 5)
        let line = "transaction time_second=\(encoded)\tpin=1024\tdoorid=3\teventtype=0\tinoutstate=0\tverified=15\tsitecode=7"
        let draft = try #require(try Self.drafts(line, .realtimeEvent).first)
        #expect(draft.kind == .accessGranted && draft.point == "door-3" && draft.direction == .in)
        #expect(draft.deviceTime == "2025-03-14 21:47:05")
        #expect(draft.attributes?["verifyMode"] == .string("face"))
        #expect(draft.attributes?["sitecode"] == .string("7"))
        #expect(ZKTecoRecords.zkDecode(encoded) == "2025-03-14 21:47:05")
    }

    @Test("OPERLOG: alarm objects become door kinds, other ops vendor.other with the op code kept")
    func operations() throws {
        let forced = try #require(try Self.drafts("OPLOG 3\t0\t2025-03-14 22:00:00\t54\t0\t0\t0", .operation).first)
        #expect(forced.kind == .doorForced && forced.attributes?["op"] == .number(3) && forced.attributes?["object"] == .number(54))
        let closed = try Self.drafts("OPLOG 3\t0\t2025-03-14 22:00:00\t50\t0\t0\t0", .operation)
        #expect(closed.first?.kind == .doorClosed)
        let enrol = try #require(try Self.drafts("OPLOG 6\t1\t2025-03-14 22:01:00\t1024\t0\t0\t0", .operation).first)
        #expect(enrol.kind == .vendorOther && enrol.attributes?["op"] == .number(6))
        #expect(try Self.drafts("FP PIN=1024\tFID=6\tTMP=AAAA", .operation).isEmpty)
    }

    @Test("USER lines keep the name (UTF-8 here; GBK is decoded by the driver) but not the card number")
    func user() throws {
        let draft = try #require(try Self.drafts("USER PIN=1024\tName=张三\tPri=0\tCard=10058399", .operation).first)
        #expect(draft.kind == .vendorOther && draft.subject == Subject(type: .person, value: "1024"))
        #expect(draft.attributes?["name"] == .string("张三") && draft.attributes?["hasCard"] == .bool(true))
        #expect(!"\(draft)".contains("10058399"))
        let dropped = ZKTecoRecords.drafts(
            for: try ZKTecoRecords.parse("USER PIN=1024\tName=张三", table: .operation, zone: Self.shanghai), serial: "S", keepUserNames: false)
        #expect(dropped.first?.attributes?["name"] == nil)
    }

    @Test("a time that is not a date keeps the record: its text and the reason go with it", arguments: [
        ("1024\t2025-13-45 07:58:31\t0\t15", ZKTecoTable.attendance, "2025-13-45 07:58:31"),
        ("1024\tyesterday\t0\t15", .attendance, "yesterday"),
        ("time=2025-02-30 21:47:05\tpin=1024\tevent=0\teventaddr=1", .realtimeEvent, "2025-02-30 21:47:05"),
        ("OPLOG 3\t0\t2025-02-30 08:00:00\t0", .operation, "2025-02-30 08:00:00"),
    ])
    func unreadableTime(line: String, table: ZKTecoTable, text: String) throws {
        let record = try ZKTecoRecords.parse(line, table: table, zone: Self.shanghai)
        let draft = try #require(ZKTecoRecords.drafts(for: record, serial: "S", keepUserNames: false).first)
        #expect(draft.occurredAt == nil && draft.deviceTime == text)
        #expect(draft.timeIssue == "time '\(text)' is not a date (expected YYYY-MM-DD HH:MM:SS between 1970 and 2199)")
    }

    @Test("malformed lines are refused with the field, the value and what would be valid", arguments: [
        ("1024\t2025-03-14 07:58", ZKTecoTable.attendance, "has 2 fields (expected at least 4"),
        ("1024\t2025-03-14 07:58:31\t0", .attendance, "has 3 fields"),
        ("1024\t2025-03-14 07:58:31\tx\t15", .attendance, "status 'x' is not an integer"),
        ("\t2025-03-14 07:58:31\t0\t15", .attendance, "PIN is empty"),
        ("time=2025-03-14 21:47:05\tpin=0\teventaddr=2", .realtimeEvent, "no event="),
        ("pin=0\tevent=27", .realtimeEvent, "no time="),
        ("time=2025-03-14 21:47:05\tevent=27\tgarbage", .realtimeEvent, "field 'garbage' is not key=value"),
        ("time=2025-03-14 21:47:05\tevent=open", .realtimeEvent, "event 'open' is not an integer"),
        ("OPLOG 3\t0", .operation, "OPLOG line has 2 fields"),
        ("HELLO 1\t2", .operation, "unknown OPERLOG record 'HELLO'"),
        ("USER Name=x", .operation, "no PIN="),
        ("time=2025-03-14 21:47:05\tsensor=01\trelay=00", .realtimeState, "no alarm="),
        ("time=2025-03-14 21:47:05\tsensor=zz\trelay=00\talarm=00", .realtimeState, "sensor 'zz' is not a hex number"),
    ])
    func malformed(line: String, table: ZKTecoTable, fragment: String) {
        do {
            let record = try ZKTecoRecords.parse(line, table: table, zone: Self.shanghai)
            Issue.record("accepted \(record)")
        } catch {
            #expect(error.reason.contains(fragment), "\(error.reason)")
            #expect(error.line == line)
        }
    }

    @Test("rtstate: the first reading only sets the state; changes become door events")
    func realtimeState() throws {
        func state(_ sensor: String, _ relay: String, _ alarm: String) throws -> ZKTecoRecord.RealtimeState {
            let record = try ZKTecoRecords.parse(
                "time=2025-03-14 21:47:05\tsensor=\(sensor)\trelay=\(relay)\talarm=\(alarm)\tdoor=00", table: .realtimeState, zone: Self.shanghai)
            guard case .realtimeState(let s) = record else { throw ZKTecoRecordError(line: "", reason: "not rtstate") }
            return s
        }
        let first = try state("0101", "0000", "0000")
        #expect(ZKTecoRecords.transitions(from: nil, to: first, bitsPerDoor: 8, serial: "S").isEmpty)
        #expect(ZKTecoRecords.transitions(from: first, to: first, bitsPerDoor: 8, serial: "S").isEmpty)
        // Door 2 (second byte) opens while its lock releases; door 1 raises a forced alarm.
        let second = try state("0201", "0100", "0001")
        let drafts = ZKTecoRecords.transitions(from: first, to: second, bitsPerDoor: 8, serial: "S")
        let summary = Set(drafts.map { "\($0.point ?? "-") \($0.kind.rawValue)" })
        #expect(summary == ["door-2 door.opened", "door-2 door.unlocked", "door-1 door.forced"], "\(summary)")
        #expect(drafts.allSatisfy { $0.occurredAt?.rfc3339 == "2025-03-14T13:47:05.000Z" })
    }
}
