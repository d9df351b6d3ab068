import ArgumentParser
import Foundation
import GatehouseSimulation
import Logging

/// `gatehouse-sim onvif`: one or many ONVIF cameras with the PullPoint event service, each on
/// its own loopback port, optionally toggling a motion alarm so a client has something to pull.
struct ONVIFCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "onvif",
        abstract: "Play ONVIF cameras: device and PullPoint event services with WS-Security, expiring subscriptions, quirks.")
    @Option(help: "Port of the first camera (127.0.0.1); the others take the next ones. 0 picks free ports.") var port = 0
    @Option(help: "How many cameras to run in this process.") var cameras = 1
    @Option(help: "Vendor behaviour: \(ONVIFCamera.Vendor.allCases.map(\.rawValue).joined(separator: ", ")).") var vendor = "generic"
    @Option(help: "ONVIF username.") var username = "gateway"
    @Option(help: "ONVIF password.") var password = "Demo#2025"
    @Option(help: "Camera clock minus real time, in seconds.") var clockOffset: Double = 0
    @Option(help: "Toggle VideoSource/MotionAlarm on every camera this often, in seconds (0: never).") var alarmEvery: Double = 0
    @Option(help: "Seconds to serve before exiting (0: until interrupted).") var seconds: Double = 0

    func run() async throws {
        guard let vendor = ONVIFCamera.Vendor(rawValue: vendor) else {
            throw ValidationError("--vendor must be one of \(ONVIFCamera.Vendor.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard cameras >= 1 else { throw ValidationError("--cameras must be at least 1") }
        var logger = Logger(label: "onvif-camera")
        logger.logLevel = .warning
        let fleet = (0..<cameras).map { _ in
            ONVIFCamera(username: username, password: password, vendor: vendor, clockOffsetSeconds: clockOffset, logger: logger)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, camera) in fleet.enumerated() {
                group.addTask { try await camera.run(port: port == 0 ? 0 : port + index) }
            }
            var ports: [Int] = []
            for camera in fleet { ports.append(try await camera.waitUntilRunning()) }
            // Written unbuffered: scripts read the ports from a pipe while the cameras run.
            let lines = ports.map { "onvif camera on http://127.0.0.1:\($0)/onvif/device_service (\(vendor.rawValue), user \(username))\n" }
            FileHandle.standardOutput.write(Data(lines.joined().utf8))
            group.addTask {
                guard alarmEvery > 0 else { return }
                var active = true
                while !Task.isCancelled {
                    try await Task.sleep(for: .milliseconds(Int64(alarmEvery * 1000)))
                    for camera in fleet { camera.alarm("tns1:VideoSource/MotionAlarm", active: active) }
                    active.toggle()
                }
            }
            if seconds > 0 {
                try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                group.cancelAll()
            } else {
                try await group.next()
            }
        }
    }
}
