import ArgumentParser
import Foundation
import GatehouseSimulation
import Logging

/// `gatehouse-sim rtsp-camera`: a camera's RTSP server for liveness probes; a behaviour name
/// on a line of standard input (normal, silent, refuse, slow, busy, not-found, wrong-password)
/// switches it at run time.
struct RTSPCameraCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rtsp-camera",
        abstract: "Play a camera's RTSP server (OPTIONS, DESCRIBE behind Digest) for liveness probes; a behaviour on a stdin line switches it: normal, silent, refuse, slow, busy, not-found, wrong-password.")
    @Option(help: "Port (127.0.0.1; 0: a free one).") var port = 0
    @Option(help: "Username.") var username = "viewer"
    @Option(help: "Password.") var password = "Cam!2025"
    @Option(help: "How DESCRIBE is protected: digest (Digest and Basic offered), basic or none.") var authentication = "digest"
    @Option(help: "Behaviour at start: normal, silent, refuse, slow, busy, not-found or wrong-password.") var behaviour = "normal"
    @Option(help: "Delay of the slow behaviour, in milliseconds.") var slowMilliseconds = 2000
    @Flag(help: "Close the connection after each 401, as some firmware does.") var closeAfterChallenge = false
    @Option(help: "Seconds to keep serving before exiting (0: until interrupted).") var seconds: Double = 0

    func run() async throws {
        let names = RTSPCamera.Behaviour.allCases.map(\.rawValue).joined(separator: ", ")
        guard let start = RTSPCamera.Behaviour(rawValue: behaviour) else { throw ValidationError("--behaviour must be one of \(names)") }
        guard let scheme = RTSPCamera.Authentication(rawValue: authentication) else { throw ValidationError("--authentication must be one of digest, basic, none") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
        var logger = Logger(label: "rtsp-camera")
        logger.logLevel = .warning
        let camera = RTSPCamera(
            username: username, password: password, authentication: scheme, behaviour: start, slowDelay: .milliseconds(Int64(slowMilliseconds)),
            closesAfterChallenge: closeAfterChallenge, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await camera.run(port: port) }
            let bound = try await camera.waitUntilRunning()
            // Written unbuffered: scripts read the URL while the camera runs.
            FileHandle.standardOutput.write(Data("rtsp camera on \(camera.url(port: bound)) (\(scheme.rawValue) \(username)), \(start.rawValue)\n".utf8))
            // Behaviour switches from standard input, one name per line, on a thread of its own:
            // a blocking read must not hold one of the few cooperative threads.
            let reader = Thread {
                while let line = readLine() {
                    let name = line.trimmingCharacters(in: .whitespaces)
                    if let next = RTSPCamera.Behaviour(rawValue: name) {
                        camera.behaviour = next
                        FileHandle.standardOutput.write(Data("now \(name)\n".utf8))
                    } else if !name.isEmpty {
                        FileHandle.standardError.write(Data("unknown behaviour '\(name)' (expected one of \(names))\n".utf8))
                    }
                }
            }
            reader.start()
            if seconds > 0 {
                try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                group.cancelAll()
            } else {
                try await group.next()
            }
        }
    }
}
