import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseTesting
import Logging
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The uhppote driver through the built daemon: simulated controllers on loopback UDP, the
/// central stand-in as the centre.
@Suite("uhppote end to end", .serialized)
struct UHPPOTEEndToEndTests {
    static let shanghai = TimeZone(identifier: "Asia/Shanghai") ?? .gmt

    /// A controller plus how the daemon should talk to it.
    struct Controller {
        let id: String
        let sim: UHPPOTEController
        let port: Int
        var options: [String: String]
    }

    static func controller(
        _ id: String, serial: UInt32, capacity: Int = 1000, drop: Double = 0, replyDelayMs: Int = 0, options: [String: String]
    ) async throws -> Controller {
        var o = UHPPOTEController.Options(serial: serial)
        o.capacity = capacity
        o.pushDropProbability = drop
        o.replyDelayMilliseconds = replyDelayMs
        var logger = Logger(label: "sim")
        logger.logLevel = .warning
        let sim = UHPPOTEController(options: o, logger: logger)
        let port = try await sim.start()
        return Controller(id: id, sim: sim, port: port, options: options)
    }

    static func writeConfig(directory: String, receiverPort: Int, controllers: [Controller], extraSinks: String = "") throws -> String {
        var devices = ""
        for c in controllers {
            let options = c.options.sorted { $0.key < $1.key }.map { "          \($0.key): \"\($0.value)\"" }.joined(separator: "\n")
            devices += """

                  - id: \(c.id)
                    driver: uhppote
                    type: door-controller
                    vendor: uhppote
                    serial: "\(c.sim.serial)"
                    address: 127.0.0.1:\(c.port)
                    time_zone: Asia/Shanghai
                    options:
                \(options)
                """
        }
        // The shared site config, with these controllers in place of the generic devices.
        var site = TestSite(directory: directory, receiverPort: receiverPort)
        site.devices = 0
        site.extraDevices = devices
        site.sinkExtra = extraSinks
        return try site.write()
    }

    static func scratch(_ name: String = #function) -> String {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-uhppote-\(safe)-\(UUID().uuidString.prefix(8))").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The centre's events, decoded once per id.
    static func events(_ receiver: CentralReceiver) -> [Event] {
        receiver.snapshot.bodies.values.compactMap { try? EventCoding.decode(Data($0.utf8)) }
    }

    static func records(_ receiver: CentralReceiver, device: String) -> [Event] {
        events(receiver).filter { $0.device.id == device && ($0.kind == .accessGranted || $0.kind == .accessDenied) }
    }

    static func index(_ e: Event) -> Int? {
        if case .number(let n) = e.attributes?["eventIndex"] { return Int(n) }
        return nil
    }


    /// door-a and door-b, both pushing to one listener port, with a long poll interval: after the
    /// first round only a push can make the driver read quickly.
    static func pushingControllers(serials: (UInt32, UInt32)) async throws -> (a: Controller, b: Controller, listen: Int) {
        let listen = try LoopbackPort.free(Int32(SOCK_DGRAM.rawValue))
        let options = [
            "poll_interval_seconds": "60", "timeout_ms": "300", "listen_port": "\(listen)", "listen_host": "127.0.0.1",
            "set_listener": "127.0.0.1:\(listen)",
        ]
        let a = try await Self.controller("door-a", serial: serials.0, options: options)
        let b = try await Self.controller("door-b", serial: serials.1, options: options)
        return (a, b, listen)
    }

    @Test("swipes on two controllers arrive as access events, woken by pushes")
    func swipesFromTwoControllers() async throws {
        let (receiver, receiverTask, receiverPort) = try await startReceiver()
        defer { receiverTask.cancel() }
        let (a, b, listen) = try await Self.pushingControllers(serials: (423_187_757, 423_187_758))
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (daemon, _, _) = try await DaemonProcess.start(
            configPath: try Self.writeConfig(directory: directory, receiverPort: receiverPort, controllers: [a, b]))
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { a.sim.listener != nil && b.sim.listener != nil }, "set_listener was not applied")
        #expect(a.sim.listener == "127.0.0.1:\(listen)")

        for i in 0..<10 {
            a.sim.swipe(card: 8_165_537 + UInt32(i), door: 2, granted: i % 3 != 0, direction: 1)
            b.sim.swipe(card: 10_058_399, door: 1, granted: true, direction: 2)
        }
        let arrived = await eventually(timeout: .seconds(30), poll: .milliseconds(50)) {
            Self.records(receiver, device: "door-a").count == 10 && Self.records(receiver, device: "door-b").count == 10
        }
        #expect(arrived, "centre has \(Self.records(receiver, device: "door-a").count) + \(Self.records(receiver, device: "door-b").count) of 20\n\(daemon.log.suffix(2000))")

        let fromA = Self.records(receiver, device: "door-a").sorted { (Self.index($0) ?? 0) < (Self.index($1) ?? 0) }
        #expect(fromA.map { Self.index($0) } == (1...10).map { $0 })
        for (i, e) in fromA.enumerated() {
            #expect(e.kind == (i % 3 != 0 ? .accessGranted : .accessDenied))
            #expect(e.subject?.type == .card && e.subject?.value == String(8_165_537 + i))
            #expect(e.point == "door-2" && e.direction == .in)
            #expect(e.source.driver == "uhppote" && e.source.dedupKey == "423187757:\(i + 1)")
            #expect(abs(e.occurredAt.seconds - e.receivedAt.seconds) < 10, "occurredAt \(e.occurredAt) read in the wrong zone?")
        }
        #expect(fromA.filter { $0.kind == .accessDenied }.allSatisfy { $0.attributes?["reason"] == .string("denied: no privilege") })
        #expect(Self.records(receiver, device: "door-b").allSatisfy { $0.point == "door-1" && $0.direction == .out })
        #expect(Self.events(receiver).contains { $0.kind == .deviceOnline && $0.device.id == "door-a" })
        #expect(a.sim.stats.pushesSent >= 10)
        #expect(try await daemon.stop() == 0)
        await a.sim.stop()
        await b.sim.stop()
    }

    @Test("reload restarts exactly the device and the sink whose config changed, matched by id")
    func reloadRestartsOnlyWhatChanged() async throws {
        let (receiver, receiverTask, receiverPort) = try await startReceiver()
        defer { receiverTask.cancel() }
        let controllers = try await Self.pushingControllers(serials: (423_187_761, 423_187_762))
        var a = controllers.a
        let b = controllers.b
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func outbox(keep: Int) -> String {
            "  - {name: outbox, type: file, path: \(directory)/outbox/events.ndjson, keep_files: \(keep)}"
        }
        let config = try Self.writeConfig(directory: directory, receiverPort: receiverPort, controllers: [a, b], extraSinks: outbox(keep: 3))
        let (daemon, _, _) = try await DaemonProcess.start(configPath: config)
        // The driver logs this line each time it starts work on a controller.
        func starts(_ c: Controller) -> Int { daemon.log.components(separatedBy: "uhppote controller \(c.sim.serial) at").count - 1 }
        func sinkStarts(_ name: String) -> Int { daemon.log.components(separatedBy: "sink \(name): started").count - 1 }
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { starts(a) == 1 && starts(b) == 1 }, "\(daemon.log.suffix(2000))")
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { sinkStarts("central") == 1 && sinkStarts("outbox") == 1 })

        a.options["timeout_ms"] = "400"
        _ = try Self.writeConfig(directory: directory, receiverPort: receiverPort, controllers: [a, b], extraSinks: outbox(keep: 4))
        daemon.sendSignal(SIGHUP)
        #expect(await daemon.waitForLog("config reloaded from"), "\(daemon.log.suffix(2000))")
        #expect(daemon.log.contains("device door-a changed") && !daemon.log.contains("device door-b changed"))
        #expect(daemon.log.contains("sink outbox changed") && !daemon.log.contains("sink central changed"))
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { starts(a) == 2 && sinkStarts("outbox") == 2 }, "\(daemon.log.suffix(2000))")

        // door-b kept its task: a swipe there still arrives, and it was never started again.
        b.sim.swipe(card: 10_058_399, door: 1, granted: true, direction: 1)
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { Self.records(receiver, device: "door-b").count == 1 }, "\(daemon.log.suffix(2000))")
        #expect(starts(b) == 1 && sinkStarts("central") == 1, "\(daemon.log.suffix(2000))")
        #expect(try await daemon.stop() == 0)
        await a.sim.stop()
        await b.sim.stop()
    }

    @Test("every push lost: periodic log reads still deliver every record")
    func lostPushesRecovered() async throws {
        let (receiver, receiverTask, receiverPort) = try await startReceiver()
        defer { receiverTask.cancel() }
        let listen = try LoopbackPort.free(Int32(SOCK_DGRAM.rawValue))
        let a = try await Self.controller(
            "door-a", serial: 1001, drop: 1.0,
            options: ["poll_interval_seconds": "1", "listen_port": "\(listen)", "listen_host": "127.0.0.1", "set_listener": "127.0.0.1:\(listen)"])
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (daemon, _, _) = try await DaemonProcess.start(
            configPath: try Self.writeConfig(directory: directory, receiverPort: receiverPort, controllers: [a]))
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { a.sim.listener != nil })
        for i in 0..<25 { a.sim.swipe(card: UInt32(5000 + i)) }
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { Self.records(receiver, device: "door-a").count == 25 })
        #expect(a.sim.stats.pushesDropped == 25 && a.sim.stats.pushesSent == 0)
        #expect(Set(Self.records(receiver, device: "door-a").compactMap(Self.index)) == Set(1...25))
        #expect(try await daemon.stop() == 0)
        await a.sim.stop()
    }

    @Test("kill -9 in the middle of a log read, restart: no gap and no duplicate by record index")
    func crashMidRead() async throws {
        let (receiver, receiverTask, receiverPort) = try await startReceiver()
        defer { receiverTask.cancel() }
        let total = 1500
        // 3 ms per reply stretches the read of 1,500 records over several seconds.
        let a = try await Self.controller("door-a", serial: 2002, capacity: 5000, replyDelayMs: 3, options: ["poll_interval_seconds": "0.5"])
        for i in 0..<total { a.sim.swipe(card: UInt32(100_000 + i), door: UInt8(1 + i % 4)) }
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = try Self.writeConfig(directory: directory, receiverPort: receiverPort, controllers: [a])
        let (first, _, _) = try await DaemonProcess.start(configPath: config)
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { Self.records(receiver, device: "door-a").count >= 200 })
        await first.kill9()
        let atKill = Self.records(receiver, device: "door-a").count
        #expect(atKill < total, "the read finished before the kill (\(atKill)); the test did not interrupt it")

        let (second, _, _) = try await DaemonProcess.start(configPath: config)
        #expect(await eventually(timeout: .seconds(60), poll: .milliseconds(50)) { Self.records(receiver, device: "door-a").count >= total }, "\(second.log.suffix(2000))")
        try await Task.sleep(for: .seconds(1.5))  // anything re-read would arrive by now
        let records = Self.records(receiver, device: "door-a")
        let byIndex = Dictionary(grouping: records, by: { Self.index($0) ?? -1 })
        #expect(Set(byIndex.keys) == Set(1...total), "missing indexes: \(Set(1...total).subtracting(byIndex.keys).sorted().prefix(10))")
        let duplicated = byIndex.filter { $0.value.count > 1 }.keys.sorted()
        #expect(duplicated.isEmpty, "indexes stored more than once: \(duplicated.prefix(10))")
        #expect(second.log.contains("resuming after log index"), "\(second.log.suffix(1500))")
        #expect(try await second.stop() == 0)
        await a.sim.stop()
    }

    @Test("ring buffer overwrote unread records: one device.log-gap with the right count")
    func logGap() async throws {
        let (receiver, receiverTask, receiverPort) = try await startReceiver()
        defer { receiverTask.cancel() }
        let a = try await Self.controller("door-a", serial: 3003, capacity: 50, options: ["poll_interval_seconds": "0.3"])
        for i in 0..<10 { a.sim.swipe(card: UInt32(i + 1)) }
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = try Self.writeConfig(directory: directory, receiverPort: receiverPort, controllers: [a])
        var (daemon, _, _) = try await DaemonProcess.start(configPath: config)
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { Self.records(receiver, device: "door-a").count == 10 })
        #expect(try await daemon.stop() == 0)

        // While the gateway is down, 100 more swipes: the 50-slot buffer keeps 61–110, so 11–60 are lost.
        for i in 10..<110 { a.sim.swipe(card: UInt32(i + 1)) }
        (daemon, _, _) = try await DaemonProcess.start(configPath: config)
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { Self.records(receiver, device: "door-a").count == 60 }, "\(daemon.log.suffix(2000))")
        let isGap = { (e: Event) in e.kind == .deviceLogGap && e.device.id == "door-a" }
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { Self.events(receiver).contains(where: isGap) })
        let gaps = Self.events(receiver).filter(isGap)
        #expect(gaps.count == 1, "\(gaps.count) log-gap events")
        #expect(gaps.first?.attributes?["count"] == .number(50))
        #expect(gaps.first?.attributes?["firstIndex"] == .number(11) && gaps.first?.attributes?["lastIndex"] == .number(60))
        #expect(Set(Self.records(receiver, device: "door-a").compactMap(Self.index)) == Set(1...10).union(61...110))
        #expect(try await daemon.stop() == 0)
        await a.sim.stop()
    }

    @Test("a controller that stops answering is reported offline in time while the other keeps flowing")
    func offline() async throws {
        let (receiver, receiverTask, receiverPort) = try await startReceiver()
        defer { receiverTask.cancel() }
        // A reply timeout a loaded machine does not miss: door-b must never look offline.
        let options = ["poll_interval_seconds": "0.5", "timeout_ms": "1000", "retries": "0", "offline_after_missed_replies": "3"]
        let a = try await Self.controller("door-a", serial: 4004, options: options)
        let b = try await Self.controller("door-b", serial: 4005, options: options)
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (daemon, _, admin) = try await DaemonProcess.start(
            configPath: try Self.writeConfig(directory: directory, receiverPort: receiverPort, controllers: [a, b]))
        let online = { (id: String) in Self.events(receiver).filter { $0.kind == .deviceOnline && $0.device.id == id }.count }
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { online("door-a") >= 1 && online("door-b") >= 1 })

        let onlineBefore = online("door-a")
        a.sim.setSilent(true)
        // 3 missed replies of 1 s with a 0.5 s poll interval: about 4.5 s; a busy box takes longer.
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { Self.events(receiver).contains { $0.kind == .deviceOffline && $0.device.id == "door-a" } })
        let offlineEvent = Self.events(receiver).first { $0.kind == .deviceOffline && $0.device.id == "door-a" }
        #expect(offlineEvent?.attributes?["reason"] == .string("no reply to 3 requests"), "\(String(describing: offlineEvent?.attributes))")
        let status = try await RobustnessTests.status(adminPort: admin)
        let devices = try #require(status["devices"] as? [[String: Any]])
        let doorA = devices.first { $0["id"] as? String == "door-a" }
        #expect(doorA?["state"] as? String == "down" && (doorA?["reason"] as? String ?? "").hasPrefix("no reply to"), "\(devices)")
        #expect(devices.first { $0["id"] as? String == "door-b" }?["state"] as? String == "up")

        for i in 0..<5 { b.sim.swipe(card: UInt32(700 + i)) }
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { Self.records(receiver, device: "door-b").count == 5 }, "door-b stalled behind the silent door-a")
        #expect(Self.events(receiver).contains { $0.kind == .deviceOffline && $0.device.id == "door-b" } == false)

        a.sim.setSilent(false)
        a.sim.swipe(card: 42)
        #expect(await eventually(timeout: .seconds(30), poll: .milliseconds(50)) { online("door-a") > onlineBefore && Self.records(receiver, device: "door-a").count == 1 })
        #expect(try await daemon.stop() == 0)
        await a.sim.stop()
        await b.sim.stop()
    }

    @Test("records whose time is not a time arrive with the gateway's clock, flagged, and the log keeps flowing")
    func unreadableRecordTimes() async throws {
        let (receiver, receiverTask, receiverPort) = try await startReceiver()
        defer { receiverTask.cancel() }
        let c = try await Self.controller("door-t", serial: 5005, options: ["poll_interval_seconds": "0.3", "timeout_ms": "300"])
        c.sim.swipe(card: 801)
        // 30 February, and a byte that is not BCD; the second is also the newest event in get-status.
        c.sim.swipe(card: 802, rawTime: [0x20, 0x25, 0x02, 0x30, 0x10, 0x00, 0x00])
        c.sim.swipe(card: 803, rawTime: [0x20, 0x25, 0x1A, 0x14, 0x10, 0x00, 0x00])
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (daemon, _, admin) = try await DaemonProcess.start(
            configPath: try Self.writeConfig(directory: directory, receiverPort: receiverPort, controllers: [c]))
        #expect(await eventually(timeout: .seconds(10), poll: .milliseconds(50)) { Self.records(receiver, device: "door-t").count == 3 })
        c.sim.swipe(card: 804)
        #expect(await eventually(timeout: .seconds(10), poll: .milliseconds(50)) { Self.records(receiver, device: "door-t").count == 4 }, "the log stalled behind a bad record")
        let byIndex = Dictionary(Self.records(receiver, device: "door-t").compactMap { e in Self.index(e).map { ($0, e) } }) { a, _ in a }
        #expect(byIndex[1]?.timeSource == .device && byIndex[4]?.timeSource == .device)
        for (index, text) in [(2, "2025-02-30 10:00:00"), (3, "0x20251a14100000")] {
            let e = try #require(byIndex[index])
            #expect(e.timeSource == .gateway && e.source.deviceTime == text, "\(e)")
            #expect(e.timeReason?.contains("device time unreadable") == true, "\(e.timeReason ?? "nil")")
            #expect(abs(e.occurredAt.milliseconds - e.receivedAt.milliseconds) == 0)
        }
        // Nothing was quarantined and nothing was asked for over and over.
        let status = try await RobustnessTests.status(adminPort: admin)
        let queue = try #require(status["queue"] as? [String: Any])
        #expect(queue["quarantined"] as? Int == 0, "\(queue)")
        #expect(c.sim.stats.requests[0xB0, default: 0] < 40, "get-event requests: \(c.sim.stats.requests[0xB0, default: 0])")
        #expect(try await daemon.stop() == 0)
        await c.sim.stop()
    }

    @Test("an unreadable controller clock is reported and set; a set the controller ignores is neither re-sent each poll nor called corrected")
    func unreadableClock() async throws {
        let (receiver, receiverTask, receiverPort) = try await startReceiver()
        defer { receiverTask.cancel() }
        let options = ["poll_interval_seconds": "0.2", "timeout_ms": "300", "set_time": "true"]
        let obeys = try await Self.controller("door-obeys", serial: 5006, options: options)
        let stubborn = try await Self.controller("door-stubborn", serial: 5007, options: options)
        let reset: [UInt8] = [0x20, 0x25, 0x02, 0x30, 0x00, 0x00, 0x00]
        obeys.sim.setRawClock(reset)
        stubborn.sim.setRawClock(reset)
        stubborn.sim.setIgnoresSetTime(true)
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (daemon, _, _) = try await DaemonProcess.start(
            configPath: try Self.writeConfig(directory: directory, receiverPort: receiverPort, controllers: [obeys, stubborn]))
        let skew = { (id: String) in Self.events(receiver).filter { $0.kind == .deviceClockSkew && $0.device.id == id } }
        #expect(await eventually(timeout: .seconds(10), poll: .milliseconds(50)) { !skew("door-obeys").isEmpty && !skew("door-stubborn").isEmpty })
        let fixed = try #require(skew("door-obeys").first)
        #expect(fixed.attributes?["corrected"] == .bool(true) && fixed.attributes?["unreadableClock"] == .bool(true), "\(fixed)")
        #expect(abs(obeys.sim.clockOffsetSeconds) < 5)
        let refused = try #require(skew("door-stubborn").first)
        #expect(refused.attributes?["corrected"] == .bool(false), "\(refused)")
        // Several more clock checks pass; the ignored set-time is not sent again within the report interval.
        let checks = stubborn.sim.stats.requests[0x32, default: 0]
        #expect(await eventually(timeout: .seconds(20), poll: .milliseconds(50)) { stubborn.sim.stats.requests[0x32, default: 0] >= checks + 3 })
        #expect(stubborn.sim.stats.requests[0x30, default: 0] == 1)
        #expect(skew("door-stubborn").count == 1)
        #expect(try await daemon.stop() == 0)
        await obeys.sim.stop()
        await stubborn.sim.stop()
    }
}
