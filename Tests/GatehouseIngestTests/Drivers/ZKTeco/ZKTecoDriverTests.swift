import Foundation
@testable import GatehouseCore
import GatehouseSinks
import GatehouseQueue
import Logging
import Testing

@testable import GatehouseIngest

/// The driver against a real queue, without HTTP: handshake, uploads, replies, quarantine, commands.
@Suite("zkteco driver")
struct ZKTecoDriverTests {
    static let attendanceSN = "CGXK214760031"
    static let panelSN = "DGD9190019050335"

    /// A queue in a temporary directory, its group committer running, and the driver's context.
    final class Fixture: Sendable {
        let directory: String
        let queue: EventQueue
        let context: DriverContext
        let driver = ZKTecoDriver(commands: ZKTecoCommandQueue(firstID: 318))
        let committer: Task<Void, Never>

        init(deviceExtra: String = "", privacy: String = "") throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-zkteco-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let yaml = """
                site: test
                state_directory: \(directory)
                devices:
                  - id: att-1
                    driver: zkteco
                    type: access-terminal
                    serial: \(ZKTecoDriverTests.attendanceSN)
                    time_zone: Asia/Shanghai
                  - id: panel-1
                    driver: zkteco
                    type: door-controller
                    serial: \(ZKTecoDriverTests.panelSN)
                    allow_from: [127.0.0.1]
                    options: {charset: gbk}
                \(deviceExtra)
                \(privacy)
                sinks:
                  - {name: out, type: file, path: \(directory)/out.ndjson}
                """
            let config = try ConfigLoader.parse(yaml, file: "test.yaml", knownDrivers: DriverRegistry.names, driverOptions: DriverRegistry.options, sinkTypes: SinkRegistry.readers)
            let logger = Logger(label: "zkteco-tests")
            queue = try EventQueue(path: directory + "/queue.sqlite", settings: config.queue, diskBudgetBytes: 1 << 30, clock: MachineClock(), logger: logger)
            let devices = DeviceDirectory(devices: config.devices, logger: logger, clock: MachineClock())
            context = DriverContext(
                pipeline: IngestPipeline(config: config, queue: queue, devices: devices, logger: logger),
                requests: DeviceRequests(config: config.ingest, devices: devices))
            let queue = queue
            committer = Task { await queue.run() }
        }

        func send(
            _ endpoint: ZKTecoDriver.Endpoint, _ query: [String: String], body: [UInt8] = [], contentType: String? = nil,
            from remote: String = "127.0.0.1"
        ) async -> ZKTecoDriver.ZKTecoReply {
            await driver.respond(
                to: .init(endpoint: endpoint, path: "/iclock/cdata", query: query, body: body, contentType: contentType, remoteIP: remote),
                context: context)
        }

        /// Every stored event of a device kind other than device health, oldest first.
        func events() async throws -> [Event] {
            try await queue.registerSinks(["test"])
            return try queue.nextBatch(sink: "test", maxEvents: 1000).sorted { $0.seq < $1.seq }
                .map { try EventCoding.decode($0.body) }.filter { $0.kind != .deviceOnline && $0.kind != .deviceClockSkew }
        }

        func finish() async {
            queue.close()
            await committer.value
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    static let attlog = Array("1024\t2025-03-14 07:58:31\t0\t15\t0\t0\t0\t0\n2077\t2025-03-14 08:02:10\t255\t4\t0\t0\t0\t0\n".utf8)

    @Test("handshake answers the option block with the stored stamps; an upload stores events and its stamp together")
    func handshakeAndUpload() async throws {
        let f = try Fixture()
        let first = await f.send(.handshake, ["SN": Self.attendanceSN, "options": "all", "pushver": "2.4.1", "language": "83"])
        #expect(first.status == .ok)
        let lines = first.body.split(separator: "\n")
        #expect(lines.first == "GET OPTION FROM: \(Self.attendanceSN)")
        for expected in ["ATTLOGStamp=0", "OPERLOGStamp=0", "Delay=10", "TimeZone=8", "Realtime=1", "Encrypt=None", "TransInterval=1"] {
            #expect(lines.contains(Substring(expected)), "missing \(expected) in \(first.body)")
        }
        let upload = await f.send(.upload, ["SN": Self.attendanceSN, "table": "ATTLOG", "Stamp": "41230"], body: Self.attlog)
        #expect(upload == .init(body: "OK: 2"))
        let events = try await f.events()
        #expect(events.map(\.kind) == [.accessGranted, .accessGranted])
        #expect(events.map { $0.subject?.value } == ["1024", "2077"])
        #expect(events[0].occurredAt.rfc3339 == "2025-03-13T23:58:31.000Z" && events[0].device.id == "att-1")
        #expect(events[0].attributes?["verifyMode"] == .string("face"))
        #expect(try await f.queue.deviceCursor("att-1") == "ATTLOG=41230")
        let again = await f.send(.handshake, ["SN": Self.attendanceSN, "options": "all"])
        #expect(again.body.contains("\nATTLOGStamp=41230\n") && again.body.contains("\nOPERLOGStamp=0\n"), "\(again.body)")
        await f.finish()
    }

    @Test("a re-sent batch is stored once and acknowledged again")
    func resentBatch() async throws {
        let f = try Fixture()
        let query = ["SN": Self.attendanceSN, "table": "ATTLOG", "Stamp": "41230"]
        #expect(await f.send(.upload, query, body: Self.attlog).body == "OK: 2")
        #expect(await f.send(.upload, query, body: Self.attlog).body == "OK: 2")
        #expect(try await f.events().count == 2)
        #expect(try await f.queue.stats().duplicates == 2)
        await f.finish()
    }

    @Test("unknown serials and sources are refused and nothing is stored")
    func refusals() async throws {
        let f = try Fixture()
        let unknown = await f.send(.upload, ["SN": "NOPE123", "table": "ATTLOG"], body: Self.attlog)
        #expect(unknown.status == .forbidden && unknown.body.contains("serial 'NOPE123' is not configured"))
        let missing = await f.send(.handshake, ["options": "all"])
        #expect(missing.status == .badRequest && missing.body.contains("SN"))
        let wrongSource = await f.send(.upload, ["SN": Self.panelSN, "table": "rtlog"], body: Self.attlog, from: "10.0.0.9")
        #expect(wrongSource.status == .forbidden && wrongSource.body.contains("allow_from"))
        #expect(try await f.events().isEmpty)
        #expect(try await f.queue.stats().quarantined == 0)
        await f.finish()
    }

    @Test("malformed lines are quarantined one by one; the rest are stored and the batch acknowledged")
    func malformedLines() async throws {
        let f = try Fixture()
        let body = Array(
            ("1024\t2025-03-14 07:58:31\t0\t15\t0\n" + "1025\t2025-02-30 07:00:00\t0\t15\t0\n" + "1026\t2025-03-14\n"
                + "1027\t2025-03-14 08:00:00\t0\t1\t0\n").utf8) + [0xFF, 0xFE, 0x0A]
        let reply = await f.send(.upload, ["SN": Self.attendanceSN, "table": "ATTLOG", "Stamp": "9"], body: body, contentType: "text/plain; charset=utf-8")
        #expect(reply.body == "OK: 5")
        let events = try await f.events()
        #expect(events.map { $0.subject?.value } == ["1024", "1025", "1027"])
        // An impossible date does not lose the punch: the gateway's clock, flagged, the text kept.
        let flagged = try #require(events.first { $0.subject?.value == "1025" })
        #expect(flagged.timeSource == .gateway && flagged.source.deviceTime == "2025-02-30 07:00:00")
        #expect(flagged.timeReason?.contains("time '2025-02-30 07:00:00' is not a date") == true, "\(flagged.timeReason ?? "nil")")
        #expect(events.first?.timeSource == .device)
        let kept = try await f.queue.quarantineEntries(limit: 10)
        #expect(kept.count == 2)
        let reasons = kept.map(\.reason).joined(separator: " | ")
        #expect(reasons.contains("line 3 of ATTLOG: ATTLOG line has 2 fields"), "\(reasons)")
        #expect(reasons.contains("line 5 of ATTLOG: not valid utf-8 text"), "\(reasons)")
        #expect(kept.allSatisfy { $0.deviceID == "att-1" && $0.route == "/iclock/cdata?table=ATTLOG" })
        #expect(try await f.queue.deviceCursor("att-1") == "ATTLOG=9")
        await f.finish()
    }

    @Test("GBK bodies: a charset option, a charset hint, and auto-detection all decode names")
    func gbkNames() async throws {
        let f = try Fixture(privacy: "privacy: {names: keep}")
        let zhang: [UInt8] = [0xD5, 0xC5, 0xC8, 0xFD]  // 张三 in GBK
        let line = Array("USER PIN=1024\tName=".utf8) + zhang + Array("\tPri=0\tCard=0\n".utf8)
        // panel-1 is configured with charset: gbk.
        #expect(await f.send(.upload, ["SN": Self.panelSN, "table": "OPERLOG", "OpStamp": "5"], body: line).body == "OK: 1")
        // att-1 is on auto: not UTF-8, so GB18030.
        #expect(await f.send(.upload, ["SN": Self.attendanceSN, "table": "OPERLOG"], body: line).body == "OK: 1")
        let names = try await f.events().map { $0.attributes?["name"] }
        #expect(names == [.string("张三"), .string("张三")])
        #expect(try await f.queue.deviceCursor("panel-1") == "OPERLOG=5")
        // A UTF-8 hint on a GBK body is honoured: the line is quarantined, not mis-decoded.
        let hinted = await f.send(.upload, ["SN": Self.panelSN, "table": "OPERLOG"], body: line, contentType: "text/plain;charset=UTF-8")
        #expect(hinted.body == "OK: 1")
        #expect(try await f.queue.quarantineEntries(limit: 10).first?.reason.contains("not valid utf-8 text") == true)
        await f.finish()
    }

    @Test("names of roster lines are dropped unless the privacy policy keeps them")
    func namesDroppedByDefault() async throws {
        let f = try Fixture()
        let line = Array("USER PIN=1024\tName=Li Lei\tPri=0\tCard=0\n".utf8)
        #expect(await f.send(.upload, ["SN": Self.panelSN, "table": "OPERLOG", "OpStamp": "5"], body: line).body == "OK: 1")
        let event = try #require(try await f.events().first)
        #expect(event.attributes?["name"] == nil)
        #expect(event.attributes?["record"] == .string("user") && event.attributes?["privilege"] == .string("0"))
        let stored = (FileManager.default.contents(atPath: f.directory + "/queue.sqlite") ?? Data())
            + (FileManager.default.contents(atPath: f.directory + "/queue.sqlite-wal") ?? Data())
        #expect(stored.range(of: Data("Li Lei".utf8)) == nil, "the name reached the queue file")
        await f.finish()
    }

    @Test("rtlog and rtstate from an access panel: door events, denied card, state transitions only")
    func accessPanel() async throws {
        let f = try Fixture()
        let sn = Self.panelSN
        let rtlog = "time=2025-03-14 21:47:05\tpin=0\tcardno=10058399\teventaddr=2\tevent=27\tinoutstatus=1\tverifytype=4\tindex=5812\n"
        #expect(await f.send(.upload, ["SN": sn, "table": "rtlog"], body: Array(rtlog.utf8)).body == "OK: 1")
        #expect(await f.send(.upload, ["SN": sn, "table": "rtlog"], body: Array(rtlog.utf8)).body == "OK: 1")
        let closed = "time=2025-03-14 21:47:06\tsensor=01\trelay=00\talarm=00\n"
        let opened = "time=2025-03-14 21:47:09\tsensor=02\trelay=01\talarm=00\n"
        #expect(await f.send(.upload, ["SN": sn, "table": "rtstate"], body: Array(closed.utf8)).body == "OK: 1")
        #expect(await f.send(.upload, ["SN": sn, "table": "rtstate"], body: Array(closed.utf8)).body == "OK: 1")
        #expect(await f.send(.upload, ["SN": sn, "table": "rtstate"], body: Array(opened.utf8)).body == "OK: 1")
        let events = try await f.events()
        #expect(events.map(\.kind) == [.accessDenied, .doorOpened, .doorUnlocked], "\(events.map(\.kind))")
        #expect(events[0].subject?.type == .card && events[0].point == "door-2" && events[0].direction == .out)
        #expect(events[0].attributes?["reason"] == .string("unregistered"))
        await f.finish()
    }

    @Test("getrequest hands out queued commands; devicecmd reports are recorded; unknown tables are acknowledged")
    func commands() async throws {
        let f = try Fixture()
        #expect(await f.send(.getRequest, ["SN": Self.panelSN]).body == "OK")
        try f.driver.commands.enqueue("CONTROL DEVICE 01020103", for: "panel-1")
        #expect(await f.send(.getRequest, ["SN": Self.panelSN, "INFO": "Ver 8.0"]).body == "C:318:CONTROL DEVICE 01020103\n")
        #expect(await f.send(.getRequest, ["SN": Self.panelSN]).body == "OK")
        let report = await f.send(.deviceCommand, ["SN": Self.panelSN], body: Array("ID=318&Return=0&CMD=CONTROL DEVICE".utf8))
        #expect(report.body == "OK")
        #expect(f.driver.commands.commands(for: "panel-1").first?.result?.succeeded == true)
        let photo = await f.send(.upload, ["SN": Self.panelSN, "table": "ATTPHOTO"], body: [1, 2, 3])
        #expect(photo.body == "OK")
        let tabledata = await f.send(.upload, ["SN": Self.panelSN, "table": "tabledata", "tablename": "user", "count": "3"], body: [])
        #expect(tabledata.body == "user=3")
        #expect(try await f.events().isEmpty)
        await f.finish()
    }

    @Test("validate requires a serial; options are read with line numbers")
    func validation() throws {
        let driver = ZKTecoDriver()
        var device = DeviceConfig(
            id: "z", driver: "zkteco", vendor: "zkteco", type: .accessTerminal, timeZone: .gmt, allowFrom: [],
            offlineAfterSeconds: 300, enabled: true, serial: nil, options: [:])
        #expect(driver.validate(device: device).joined().contains("serial: required"))
        device.serial = "CGXK214760031"
        #expect(driver.validate(device: device).isEmpty)
        let found = DriverOptionFixture.diagnostics(
            driver: "zkteco", "charset: big5\nhandshake_time_zone: 99\ncolour: red\nuser_names: drop")
        let text = found.map(\.description).joined(separator: "\n")
        #expect(found.count == 3, "\(text)")
        #expect(text.contains("fixture.yaml:8:16: devices[0].options.charset: 'big5' is not valid (expected one of auto, utf-8"), "\(text)")
        #expect(text.contains("fixture.yaml:9:28: devices[0].options.handshake_time_zone: 99 is out of range (expected -12 to 14)"), "\(text)")
        #expect(text.contains("fixture.yaml:10:7: devices[0].options.colour: unknown option"), "\(text)")
        let typed = try #require(DriverOptionFixture.device(driver: "zkteco", "charset: GBK\nrealtime: off\nuser_names: drop\ninitial_stamp: 100"))
        let options = ZKTecoOptions(typed.options)
        #expect(options.charset == .fixed(.gbk) && !options.realtime && !options.keepUserNames && options.initialStamp == "100")
        #expect(options.delaySeconds == 10 && options.bitsPerDoor == 8)
    }
}
