import Foundation
import GatehouseCore
import GatehouseIngest

/// Checks of a loaded config against this machine and for risky but valid choices, which the
/// pure loader leaves alone: `check-config` and start-up refuse on `errors`, and print `warnings`.
public struct ConfigChecks: Sendable {
    public var errors: [ConfigDiagnostic] = []
    public var warnings: [ConfigDiagnostic] = []

    public init(config: GatehouseConfig, path: String) {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        if let problem = Self.stateDirectoryProblem(config.stateDirectory) {
            let line = ConfigLoader.line(ofTopLevelKey: "state_directory", in: text) ?? 0
            errors.append(ConfigDiagnostic(file: path, line: line, column: 1, key: "state_directory", message: problem))
        }
        let drivers = DriverRegistry.makeAll()
        for (index, device) in config.devices.enumerated() where device.enabled {
            // Polled devices are reached by the gateway; only pushing devices can be impersonated.
            guard let driver = drivers.named(device.driver), !driver.runsPerDevice else { continue }
            guard device.auth == nil, device.allowFrom.isEmpty, config.ingest.allowFrom.isEmpty else { continue }
            warnings.append(
                ConfigDiagnostic(
                    file: path, line: device.line, column: 5, key: "devices[\(index)]",
                    message: "warning: device '\(device.id)' has neither auth nor allow_from: anyone who can reach the ingest listener can send events as it (set auth: {token: …} or allow_from: [its address])"))
        }
    }

    /// Why the queue could not live in `path`, or nil when it can.
    static func stateDirectoryProblem(_ path: String) -> String? {
        let files = FileManager.default
        let hint = "expected a directory this user (uid \(getuid())) may write; under systemd, StateDirectory= creates it for the service's user, so run check-config as that user"
        var isDirectory: ObjCBool = false
        if files.fileExists(atPath: path, isDirectory: &isDirectory) {
            if !isDirectory.boolValue { return "'\(path)' is a file, not a directory (\(hint))" }
            return access(path, W_OK | X_OK) == 0 ? nil : "'\(path)' is not writable (\(hint))"
        }
        // Missing: the daemon creates it, so the nearest existing parent must be writable.
        var parent = path
        repeat {
            parent = (parent as NSString).deletingLastPathComponent
            if parent.isEmpty { parent = "." }
        } while !files.fileExists(atPath: parent, isDirectory: &isDirectory) && parent != "/" && parent != "."
        if !isDirectory.boolValue { return "'\(path)' cannot be created: '\(parent)' is a file (\(hint))" }
        return access(parent, W_OK | X_OK) == 0 ? nil : "'\(path)' does not exist and cannot be created: '\(parent)' is not writable (\(hint))"
    }
}
