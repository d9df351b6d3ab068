import Foundation
import GatehouseSimulation
import Glibc
import GatehouseTesting
import Logging
import Testing

/// `connect_concurrency` through the built daemon: ONVIF, Hikvision and Dahua cameras all take
/// their turn, never more connecting at once than the limit, and every one is held in the end.
/// The daemon reports each wave of connects (debug level); nothing here depends on speed. A
/// reload changes the limit.
@Suite("camera connect waves end to end", .serialized)
struct CameraConnectWavesTests {
    @Test("12 cameras of three drivers with connect_concurrency 2: all held, at most 2 connecting at once, every connect counted; SIGHUP changes the limit")
    func boundedConnects() async throws {
        let (_, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        var logger = Logger(label: "camera-sims")
        logger.logLevel = .warning
        let onvif = (0..<4).map { _ in
            ONVIFCamera(password: "Demo#2025", createdWindowSeconds: 60, maxHold: .milliseconds(300), logger: logger)
        }
        let hikvision = (0..<4).map { _ in HikvisionCamera(username: "admin", password: "hik12345", logger: logger) }
        let dahua = (0..<4).map { _ in DahuaCamera(logger: logger) }
        let servers = onvif.map { c in Task { try await c.run() } } + hikvision.map { c in Task { try await c.run() } }
            + dahua.map { c in Task { try await c.run() } }
        defer { for server in servers { server.cancel() } }
        var devices = ""
        for (index, camera) in onvif.enumerated() {
            devices += """
                  - {id: onvif-\(index), driver: onvif, type: camera, address: "127.0.0.1:\(try await camera.waitUntilRunning())", auth: {username: gateway, password: "Demo#2025", scheme: digest}}

                """
        }
        for (index, camera) in hikvision.enumerated() {
            devices += """
                  - {id: hik-\(index), driver: hikvision-camera, type: camera, address: "127.0.0.1:\(try await camera.waitUntilRunning())", auth: {username: admin, password: hik12345, scheme: digest}, options: {mode: stream}}

                """
        }
        for (index, camera) in dahua.enumerated() {
            devices += """
                  - {id: dahua-\(index), driver: dahua, type: camera, address: "127.0.0.1:\(try await camera.waitUntilRunning())", auth: {username: admin, password: dahua123, scheme: digest}}

                """
        }
        var site = TestSite(receiverPort: port)
        defer { site.remove() }
        site.devices = 0
        site.logLevel = "debug"
        site.extra = "connect_concurrency: 2"
        site.extraDevices = devices
        let (daemon, _, _) = try await DaemonProcess.start(configPath: try site.write())
        let held = {
            onvif.allSatisfy { $0.liveSubscriptions > 0 } && hikvision.allSatisfy { $0.openStreams > 0 } && dahua.allSatisfy { $0.openStreams > 0 }
        }
        #expect(await eventually(timeout: .seconds(60)) { held() }, "\(daemon.log.suffix(3000))")
        // The last wave is reported once its last camera's slot is given back, after the camera counted it as held.
        #expect(await eventually(timeout: .seconds(30)) { Self.waves(in: daemon.log).reduce(0) { $0 + $1.connects } >= 12 }, "\(daemon.log.suffix(3000))")
        let waves = Self.waves(in: daemon.log)
        #expect(waves.allSatisfy { $0.mostAtOnce <= 2 && $0.mostAtOnce >= 1 }, "\(waves)")
        // A reload takes a new limit (for the next devices that connect) and says so.
        site.extra = "connect_concurrency: 4"
        _ = try site.write()
        daemon.sendSignal(SIGHUP)
        #expect(await eventually(timeout: .seconds(30)) { daemon.log.contains("connect concurrency 2 → 4") }, "\(daemon.log.suffix(3000))")
        #expect(try await daemon.stop() == 0)
        for camera in hikvision { await camera.shutdown() }
        for camera in dahua { await camera.shutdown() }
    }

    /// Every "devices connected: N, at most M at once" the daemon logged.
    static func waves(in log: String) -> [(connects: Int, mostAtOnce: Int)] {
        log.split(separator: "\n").compactMap { line in
            guard let range = line.range(of: "devices connected: ") else { return nil }
            let numbers = line[range.upperBound...].split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
            return numbers.count == 2 ? (numbers[0], numbers[1]) : nil
        }
    }
}
