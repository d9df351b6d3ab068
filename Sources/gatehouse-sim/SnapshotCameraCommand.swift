import ArgumentParser
import Foundation
import GatehouseSimulation
import Logging

/// `gatehouse-sim snapshot-camera`: cameras serving HTTP snapshots behind Digest, for picture
/// health; `POST /control/picture?mode=…` on a camera's port switches what it shows.
struct SnapshotCameraCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot-camera",
        abstract: "Play cameras serving JPEG snapshots (/cgi-bin/snapshot.cgi, /ISAPI/Streaming/channels/101/picture) behind Digest: sharp, blurred, dark, covered or frozen, switchable with POST /control/picture?mode=….")
    @Option(help: "Cameras to run in this process, one port each.") var cameras = 1
    @Option(help: "Port of the first camera (127.0.0.1; 0: each picks a free one; N: N, N+1, …).") var port = 0
    @Option(help: "Username.") var username = "viewer"
    @Option(help: "Password.") var password = "Cam!2025"
    @Option(help: "How the snapshot URL is protected: digest, basic or none.") var authentication = "digest"
    @Option(help: "What the pictures show at start: sharp, blurred, dark, covered or frozen.") var picture = "sharp"
    @Option(help: "Picture width in pixels.") var width = 640
    @Option(help: "Picture height in pixels.") var height = 360
    @Option(help: "Seconds to keep serving before exiting (0: until interrupted).") var seconds: Double = 0

    func run() async throws {
        guard let start = SnapshotCamera.Picture(rawValue: picture) else {
            throw ValidationError("--picture must be one of \(SnapshotCamera.Picture.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let scheme = SnapshotCamera.Authentication(rawValue: authentication) else {
            throw ValidationError("--authentication must be one of digest, basic, none")
        }
        guard (1...2000).contains(cameras) else { throw ValidationError("--cameras must be 1…2000 (got \(cameras))") }
        guard (16...7680).contains(width), (16...4320).contains(height) else { throw ValidationError("--width 16…7680, --height 16…4320") }
        var logger = Logger(label: "snapshot-camera")
        logger.logLevel = .warning
        let fleet = (0..<cameras).map { _ in
            SnapshotCamera(username: username, password: password, width: width, height: height, picture: start, authentication: scheme, logger: logger)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, camera) in fleet.enumerated() {
                group.addTask { try await camera.run(port: port == 0 ? 0 : port + index) }
            }
            for camera in fleet {
                let bound = try await camera.waitUntilRunning()
                // Written unbuffered: scripts read the ports while the cameras run.
                let line = "snapshot camera on http://127.0.0.1:\(bound)/cgi-bin/snapshot.cgi?channel=1 (\(scheme.rawValue) \(username)), showing \(start.rawValue)\n"
                FileHandle.standardOutput.write(Data(line.utf8))
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
