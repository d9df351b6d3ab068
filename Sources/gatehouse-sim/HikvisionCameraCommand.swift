import ArgumentParser
import Foundation
import GatehouseSimulation
import Logging

/// `gatehouse-sim hikvision-camera`: Hikvision cameras or NVRs serving alertStream with Digest
/// (many in one process for benchmarks), or pushing listening-mode alerts to the gateway.
struct HikvisionCameraCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hikvision-camera",
        abstract: "Play Hikvision cameras/NVRs: serve ISAPI alertStream (Digest) and fire alarms, or push EventNotificationAlert to a URL.")
    @Option(help: "Port of the first device (127.0.0.1; 0 picks free ports). Device i listens on port+i.") var port = 0
    @Option(help: "How many devices to run in this process.") var count = 1
    @Option(help: "Video channels per device (more than 1 plays an NVR).") var channels = 1
    @Option(help: "ISAPI username.") var username = "admin"
    @Option(help: "ISAPI password.") var password = "hik12345"
    @Option(help: "Seconds between videoloss keep-alives (0: none).") var heartbeatSeconds = 5.0
    @Option(help: "Fire an alarm of this eventType (e.g. VMD, fielddetection, IO) every --alarm-every seconds.") var alarm: String?
    @Option(help: "Seconds between alarm toggles (active, then inactive).") var alarmEvery = 2.0
    @Option(help: "Push to this gateway URL instead of serving, e.g. http://127.0.0.1:8080/v1/hikvision-camera/cam-1.") var pushURL: String?
    @Option(help: "Push body format: xml, json or multipart.") var format = "xml"
    @Option(help: "Alerts to push.") var pushes = 1
    @Option(help: "Seconds to keep serving before exiting (0: until interrupted).") var seconds = 0.0

    func run() async throws {
        var logger = Logger(label: "hikvision-camera")
        logger.logLevel = .warning
        let heartbeat: Duration? = heartbeatSeconds > 0 ? .milliseconds(Int64(heartbeatSeconds * 1000)) : nil
        let cameras = (0..<max(1, count)).map { _ in
            HikvisionCamera(username: username, password: password, channels: channels, heartbeatInterval: heartbeat, logger: logger)
        }
        if let pushURL {
            guard let host = URL(string: pushURL)?.host else { throw ValidationError("bad --push-url \(pushURL)") }
            try GatehouseSim.requireLoopback(host)
            guard let pushFormat = HikvisionCamera.Format(rawValue: format) else {
                throw ValidationError("--format must be xml, json or multipart (got \(format))")
            }
            let alert = HikvisionCamera.Alert(eventType: alarm ?? "fielddetection")
            let statuses = await cameras[0].push(Array(repeating: alert, count: max(1, pushes)), to: pushURL, format: pushFormat)
            for camera in cameras { await camera.shutdown() }
            let ok = statuses.filter { $0 == 200 }.count
            print("pushed \(statuses.count) alerts, \(ok) answered 200")
            if ok != statuses.count { throw ExitCode(1) }
            return
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, camera) in cameras.enumerated() {
                group.addTask { try await camera.run(port: port == 0 ? 0 : port + index) }
            }
            for camera in cameras {
                let bound = try await camera.waitUntilRunning()
                // Written unbuffered: scripts read the port from a pipe, where print() would hold it back.
                let line = "alertStream on http://127.0.0.1:\(bound)/ISAPI/Event/notification/alertStream (digest \(username), \(channels) channel(s))\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            }
            if let alarm {
                group.addTask {
                    var active = true
                    while true {
                        try await Task.sleep(for: .milliseconds(Int64(alarmEvery * 1000)))
                        for camera in cameras {
                            camera.fire(HikvisionCamera.Alert(eventType: alarm, active: active, channel: 1, ioPort: alarm == "IO" ? 1 : nil))
                        }
                        active.toggle()
                    }
                }
            }
            if seconds > 0 {
                try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                group.cancelAll()
            }
            while let _ = try? await group.next() {}
        }
        for camera in cameras { await camera.shutdown() }
    }
}
