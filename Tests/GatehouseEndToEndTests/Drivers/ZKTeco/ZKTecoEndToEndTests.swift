import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseTesting
import Testing

/// ZKTeco PUSH devices against the built daemon, with the central stand-in as the centre.
@Suite("ZKTeco PUSH end to end", .serialized)
struct ZKTecoEndToEndTests {
    static let attendanceSN = "CGXK214760031"
    static let panelSN = "DGD9190019050335"
    static let gbkSN = "GBK0000000001"

    /// A config with three zkteco devices: an attendance terminal (charset auto), an access panel
    /// and a terminal whose firmware writes GBK (charset: gbk).
    static func writeConfig(_ site: TestSite) throws -> String {
        let yaml = """
            site: e2e
            state_directory: \(site.directory)/state
            status_interval_seconds: 1
            log_level: info
            ingest:
              host: 127.0.0.1
              port: 0
            admin:
              host: 127.0.0.1
              port: 0
            devices:
              - id: att-1
                driver: zkteco
                vendor: zkteco
                type: access-terminal
                serial: \(attendanceSN)
                time_zone: Asia/Shanghai
              - id: panel-1
                driver: zkteco
                vendor: zkteco
                type: door-controller
                serial: \(panelSN)
                allow_from: [127.0.0.1]
              - id: gbk-1
                driver: zkteco
                vendor: zkteco
                type: access-terminal
                serial: \(gbkSN)
                options: {charset: gbk}
            sinks:
              - name: central
                type: http
                url: http://127.0.0.1:\(site.receiverPort)/ingest
                hmac_secret: "e2e-hmac"
                backoff_initial_seconds: 0.05
                backoff_max_seconds: 0.5
            """
        try yaml.write(toFile: site.configPath, atomically: true, encoding: .utf8)
        return site.configPath
    }

    /// The events the centre has that came from devices (not health or clock reports), by kind.
    static func deviceEvents(_ receiver: CentralReceiver) throws -> [Event] {
        try receiver.snapshot.bodies.values.map { try EventCoding.decode(Data($0.utf8)) }
            .filter { !$0.kind.rawValue.hasPrefix("device.") }
            .sorted { $0.id.description < $1.id.description }
    }

    /// Polls the centre until `condition` holds for the device events, bounded.
    static func waitForEvents(_ receiver: CentralReceiver, timeout: Double = 20, _ condition: ([Event]) -> Bool) async throws -> [Event] {
        _ = await eventually(timeout: .seconds(timeout), poll: .milliseconds(50)) { condition(try deviceEvents(receiver)) }
        return try deviceEvents(receiver)
    }

    @Test("handshake, uploads, a re-sent batch, GBK names, an unknown SN and malformed lines")
    func protocolSession() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        let site = TestSite(receiverPort: port)
        defer { site.remove() }
        let (daemon, ingest, admin) = try await DaemonProcess.start(configPath: try Self.writeConfig(site))
        let url = "http://127.0.0.1:\(ingest)"
        let terminal = ZKTecoDevice(configuration: .init(serial: Self.attendanceSN, baseURL: url))
        let panel = ZKTecoDevice(configuration: .init(serial: Self.panelSN, baseURL: url))
        let gbk = ZKTecoDevice(configuration: .init(serial: Self.gbkSN, baseURL: url, charset: .gbk))
        let stranger = ZKTecoDevice(configuration: .init(serial: "UNKNOWN0001", baseURL: url))

        // Handshake: nothing stored yet, so the stamps ask for everything.
        let (_, first) = await terminal.handshake()
        #expect(first?["ATTLOGStamp"] == "0" && first?["Realtime"] == "1" && first?["TimeZone"] == "8", "\(String(describing: first))")

        // The attendance upload of the notes, then the same batch again (as after a lost reply).
        let punches = ["1024\t2025-03-14 07:58:31\t0\t15\t0\t0\t0\t0", "2077\t2025-03-14 08:02:10\t255\t4\t0\t0\t0\t0"]
        #expect(await terminal.upload(table: "ATTLOG", lines: punches, stamp: "41230").body == "OK: 2")
        #expect(await terminal.upload(table: "ATTLOG", lines: punches, stamp: "41230").body == "OK: 2")
        let (_, second) = await terminal.handshake()
        #expect(second?["ATTLOGStamp"] == "41230", "the stored stamp is offered so the device re-sends only what is missing")

        // Access panel: the denied card of the notes.
        let denied = "time=2025-03-14 21:47:05\tpin=0\tcardno=10058399\teventaddr=2\tevent=27\tinoutstatus=1\tverifytype=4\tindex=5812"
        #expect(await panel.upload(table: "rtlog", lines: [denied]).body == "OK: 1")

        // GBK firmware: a user record with a Chinese name.
        #expect(await gbk.upload(table: "OPERLOG", lines: ZKTecoDevice.userLines([("1024", "张三")]), stamp: "7").body == "OK: 1")

        // An unknown serial is refused and nothing of it is stored.
        let (refused, options) = await stranger.handshake()
        #expect(refused.status == 403 && options == nil && refused.body.contains("UNKNOWN0001"), "\(refused)")
        let refusedUpload = await stranger.upload(table: "ATTLOG", lines: ["5555\t2025-03-14 09:00:00\t0\t1\t0"])
        #expect(refusedUpload.status == 403)

        // A malformed line is quarantined, the good ones stored (an impossible date with the
        // gateway's clock, flagged), the batch acknowledged.
        let mixed = ["3001\t2025-03-14 09:00:00\t0\t1\t0", "3002\t2025-02-30 09:00:00\t0\t1\t0", "3003\tgarbage"]
        #expect(await terminal.upload(table: "ATTLOG", lines: mixed, stamp: "41233").body == "OK: 3")
        // …and the daemon keeps serving.
        #expect(await panel.poll().isEmpty)

        let events = try await Self.waitForEvents(receiver) { $0.count >= 6 }
        let granted = events.filter { $0.kind == .accessGranted }
        #expect(granted.compactMap { $0.subject?.value }.sorted() == ["1024", "2077", "3001", "3002"], "re-sent punches stored once")
        let flagged = try #require(granted.first { $0.subject?.value == "3002" })
        #expect(flagged.timeSource == .gateway && flagged.source.deviceTime == "2025-02-30 09:00:00", "\(flagged)")
        let face = try #require(granted.first { $0.subject?.value == "1024" })
        #expect(face.subject?.type == .person && face.occurredAt.rfc3339 == "2025-03-13T23:58:31.000Z" && face.device.id == "att-1")
        #expect(face.attributes?["verifyMode"] == .string("face") && face.source.driver == "zkteco")
        let card = try #require(events.first { $0.kind == .accessDenied })
        #expect(card.subject?.type == .card && card.subject?.value == "10058399" && card.point == "door-2" && card.direction == .out)
        #expect(card.occurredAt.rfc3339 == "2025-03-14T13:47:05.000Z" && card.attributes?["reason"] == .string("unregistered"))
        let user = try #require(events.first { $0.kind == .vendorOther })
        // The name was read (the GBK line decoded) but dropped: the default policy keeps no names.
        #expect(user.attributes?["name"] == nil && user.attributes?["record"] == .string("user") && user.device.id == "gbk-1")
        #expect(events.count == 6, "\(events.map(\.kind))")
        #expect(!events.contains { $0.subject?.value == "5555" })

        let queue = try await RobustnessTests.status(adminPort: admin)["queue"] as? [String: Any]
        #expect((queue?["quarantined"] as? Int) == 1, "\(String(describing: queue))")
        #expect((queue?["duplicates"] as? Int) == 2, "\(String(describing: queue))")
        let list = try await DaemonProcess.runTool(["quarantine", "list", "--config", site.configPath])
        #expect(list.stdout.contains("ATTLOG line has 2 fields") && list.stdout.contains("att-1"), "\(list)")

        for device in [terminal, panel, gbk, stranger] { await device.shutdown() }
        #expect(try await daemon.stop() == 0)
    }

    @Test("the simulator's session: batches acknowledged after commit, a repeated session stores nothing new")
    func simulatorSession() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        let site = TestSite(receiverPort: port)
        defer { site.remove() }
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: try Self.writeConfig(site))
        let device = ZKTecoDevice(configuration: .init(serial: Self.panelSN, baseURL: "http://127.0.0.1:\(ingest)", batchSize: 40))
        let tally = await device.run(records: 100, realtime: 30)
        #expect(tally.acknowledgedRecords == 130 && tally.failedBatches == 0 && tally.batches == 4, "\(tally)")
        let events = try await Self.waitForEvents(receiver) { $0.count >= 130 }
        #expect(events.count == 130)
        #expect(events.filter { $0.kind == .accessDenied }.count == 15)

        // The same session again (as after a device reset): the handshake offers the stored stamp, re-sent records are duplicates.
        let (_, options) = await device.handshake()
        #expect(options?["ATTLOGStamp"] == "100")
        let again = await device.run(records: 100, realtime: 30)
        #expect(again.acknowledgedRecords == 130)
        try await Task.sleep(for: .milliseconds(500))
        #expect(try Self.deviceEvents(receiver).count == 130)

        // A batch the gateway does not answer OK (an unknown SN here) is re-sent up to the attempt limit.
        let stranger = ZKTecoDevice(
            configuration: .init(serial: "UNKNOWN0002", baseURL: "http://127.0.0.1:\(ingest)", maxAttempts: 3, retryDelay: .milliseconds(10)))
        let replies = await stranger.uploadUntilAcknowledged(table: "ATTLOG", lines: ["1\t2025-03-14 09:00:00\t0\t1\t0"])
        #expect(replies.map(\.status) == [403, 403, 403])
        await stranger.shutdown()
        await device.shutdown()
        #expect(try await daemon.stop() == 0)
    }
}
