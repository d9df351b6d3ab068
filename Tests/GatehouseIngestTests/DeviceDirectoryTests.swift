import Foundation
@testable import GatehouseCore
import Logging
import Testing

@testable import GatehouseIngest

/// Device health on an injected clock: `waiting` after a (re)start, `device.offline` once for a
/// device that never came up, and the usual up → down → up.
@Suite("DeviceDirectory health")
struct DeviceDirectoryTests {
    static let start = Timestamp(milliseconds: 1_800_000_000_000)

    static func device(_ id: String, offlineAfter: Double = 60) -> DeviceConfig {
        DeviceConfig(
            id: id, driver: "generic-json", vendor: "generic", type: .doorController, timeZone: .gmt, allowFrom: [],
            offlineAfterSeconds: offlineAfter, enabled: true, serial: nil, options: [:])
    }

    static func directory(_ devices: [DeviceConfig]) -> DeviceDirectory {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return DeviceDirectory(devices: devices, logger: logger, clock: ManualClock(start: start))
    }

    @Test("after a restart a silent device is waiting, not down, and raises no event")
    func waitingAfterRestart() throws {
        let directory = Self.directory([Self.device("door-1")])
        let health = try #require(directory.healthSnapshot.first)
        #expect(health.state == .waiting)
        #expect(health.reason == "waiting since restart")
        #expect(directory.sweep(now: Self.start.adding(seconds: 60)).isEmpty, "within offline_after it must keep waiting")
        #expect(directory.healthSnapshot.first?.state == .waiting)
    }

    @Test("a device that never came up within offline_after goes down once, with a transition for device.offline")
    func neverCameUp() throws {
        let directory = Self.directory([Self.device("door-1"), Self.device("door-2", offlineAfter: 600)])
        let transitions = directory.sweep(now: Self.start.adding(seconds: 61))
        #expect(transitions.map(\.device.id) == ["door-1"])
        let down = try #require(transitions.first?.health)
        #expect(down.state == .down)
        #expect(down.reason == "nothing received within 60 s of start")
        #expect(directory.sweep(now: Self.start.adding(seconds: 120)).isEmpty, "device.offline is raised once, not every sweep")
        #expect(directory.healthSnapshot.map(\.state) == [.down, .waiting])
    }

    @Test("first traffic brings a waiting device up; silence after that takes it down; traffic brings it back")
    func upDownUp() throws {
        let directory = Self.directory([Self.device("door-1")])
        let up = try #require(directory.markSeen("door-1", events: 1, at: Self.start.adding(seconds: 5)))
        #expect(up.health.state == .up)
        #expect(directory.sweep(now: Self.start.adding(seconds: 60)).isEmpty)
        let down = try #require(directory.sweep(now: Self.start.adding(seconds: 70)).first)
        #expect(down.health.state == .down && down.health.reason == "no data for 60 s")
        #expect(directory.markSeen("door-1", events: 1, at: Self.start.adding(seconds: 80))?.health.state == .up)
    }

    @Test("a driver error marks a waiting device down at once (one transition), a down one stays without another")
    func driverErrorWhileWaiting() {
        let directory = Self.directory([Self.device("gate-1")])
        let first = directory.markDown("gate-1", reason: "no reply", at: Self.start.adding(seconds: 1))
        #expect(first?.health.state == .down)
        #expect(directory.markDown("gate-1", reason: "no reply again", at: Self.start.adding(seconds: 2)) == nil)
        #expect(directory.healthSnapshot.first?.reason == "no reply again")
    }

    @Test("a device added by reload waits, and says so")
    func addedByReload() {
        let clock = ManualClock(start: Self.start)
        let directory = DeviceDirectory(devices: [Self.device("door-1")], logger: Logger(label: "test"), clock: clock)
        clock.advance(by: .seconds(10))
        let changes = directory.replace([Self.device("door-1"), Self.device("door-2")])
        #expect(directory.healthSnapshot.last?.since == Self.start.adding(seconds: 10), "stamped by the directory's clock")
        #expect(changes.added == ["door-2"])
        #expect(directory.healthSnapshot.last?.state == .waiting)
        #expect(directory.healthSnapshot.last?.reason == "waiting since added by reload")
    }

    @Test("a restart does not announce again what the centre was told: up and sending, or down and silent, stay quiet; down then sending is announced")
    func restartRemembersWhatWasAnnounced() async throws {
        let devices = """
              - {id: door-1, driver: generic-json, type: door-controller, offline_after_seconds: 60}
              - {id: door-2, driver: generic-json, type: door-controller, offline_after_seconds: 60}
            """
        let firstClock = ManualClock(start: Self.start)
        let before = try IngestFixture(devices: devices, clock: firstClock)
        firstClock.advance(by: .seconds(30))
        _ = try await before.device("door-1").submit([EventDraft(kind: .accessGranted, dedupKey: "record-1")])
        // The status tick: door-2 never came up; what was announced is stored with its event.
        await before.pipeline.report(before.pipeline.devices.sweep(now: Self.start.adding(seconds: 61)))
        await before.finish(keeping: true)

        let clock = ManualClock(start: Self.start.adding(seconds: 120))
        let after = try IngestFixture(devices: devices, clock: clock, reopening: before.directory)
        defer { try? FileManager.default.removeItem(atPath: after.directory) }
        await after.pipeline.resumeHealth()
        clock.advance(by: .seconds(30))
        _ = try await after.device("door-1").submit([EventDraft(kind: .accessGranted, dedupKey: "record-2")])
        #expect(after.pipeline.devices.healthSnapshot.first?.state == .up)
        let silent = after.pipeline.devices.sweep(now: Self.start.adding(seconds: 181))
        #expect(silent.isEmpty, "door-2 is down as announced before the restart")
        #expect(after.pipeline.devices.healthSnapshot.last?.state == .down)
        _ = try await after.device("door-2").submit([EventDraft(kind: .accessGranted, dedupKey: "record-3")])
        let health = try await after.events().filter { $0.kind == .deviceOnline || $0.kind == .deviceOffline }
        #expect(health.map { "\($0.kind.rawValue) \($0.device.id)" } == ["device.online door-1", "device.offline door-2", "device.online door-2"])
        await after.finish()
    }
}
