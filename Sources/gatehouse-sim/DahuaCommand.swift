import ArgumentParser
import Foundation
import GatehouseSimulation
import Logging

/// `gatehouse-sim dahua`: Dahua cameras serving the attach event stream with Digest auth,
/// firing motion and alarm-input events; or pushing RPC `notifyEventStream` envelopes.
struct DahuaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dahua",
        abstract: "Play Dahua cameras: serve eventManager.cgi?action=attach with Digest auth and fire events, or push RPC notifyEventStream envelopes.")
    @Option(help: "Cameras to run in this process, one port each.") var cameras = 1
    @Option(help: "Port of the first camera (127.0.0.1; 0: each picks a free one; N: N, N+1, …).") var port = 0
    @Option(help: "CGI username.") var username = "admin"
    @Option(help: "CGI password.") var password = "dahua123"
    @Option(help: "Fire a VideoMotion start or stop (alternately, multi-line data) on every camera this often, in seconds (0: never).") var fireEvery: Double = 1
    @Flag(help: "Write Content-Length: 0 on event parts, as some firmware does.") var lyingLength = false
    @Option(help: "Push this many TrafficJunction plate reads as notifyEventStream envelopes to this gateway URL instead of serving, e.g. http://127.0.0.1:8080/v1/dahua/gate-cam.") var pushURL: String?
    @Option(help: "Plate reads to push with --push-url.") var plates = 3
    @Option(help: "Seconds to keep serving before exiting (0: until interrupted).") var seconds: Double = 0

    func run() async throws {
        var logger = Logger(label: "dahua-camera")
        logger.logLevel = .warning
        if let pushURL {
            guard let host = URL(string: pushURL)?.host else { throw ValidationError("bad --push-url \(pushURL)") }
            try GatehouseSim.requireLoopback(host)
            let camera = DahuaCamera(username: username, password: password, logger: logger)
            var ok = 0
            for number in 0..<max(0, plates) {
                let (status, _) = await camera.push(DahuaCamera.notifyEventStream([DahuaCamera.plateRead(number: number)], id: number + 1), to: pushURL)
                if status == 200 { ok += 1 }
            }
            await camera.shutdown()
            print("pushed \(plates) notifyEventStream envelopes, \(ok) answered 200")
            if ok != plates { throw ExitCode(1) }
            return
        }
        guard (1...2000).contains(cameras) else { throw ValidationError("--cameras must be 1…2000 (got \(cameras))") }
        let fleet = (0..<cameras).map { index in
            DahuaCamera(username: username, password: password, serial: String(format: "SIM%06d", index), logger: logger)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, camera) in fleet.enumerated() {
                if lyingLength { camera.setPartStyle(.lyingLength) }
                group.addTask { try await camera.run(port: port == 0 ? 0 : port + index) }
            }
            for camera in fleet {
                let bound = try await camera.waitUntilRunning()
                // Written unbuffered: scripts read the ports while the cameras run.
                let line = "dahua camera \(camera.serial) on http://127.0.0.1:\(bound)/cgi-bin/eventManager.cgi?action=attach&codes=[All] (digest \(username))\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            }
            let started = ContinuousClock.now
            var active = false
            while seconds <= 0 || ContinuousClock.now - started < .milliseconds(Int64(seconds * 1000)) {
                let pause = fireEvery > 0 ? fireEvery : 1
                try await Task.sleep(for: .milliseconds(Int64(pause * 1000)))
                guard fireEvery > 0 else { continue }
                active.toggle()
                for camera in fleet { camera.fire([DahuaCamera.motion(active: active)]) }
            }
            group.cancelAll()
        }
        for camera in fleet { await camera.shutdown() }
    }
}
