import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseDaemon

/// `gatehouse check-config FILE`: validates without opening a socket or the queue.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a config file; exit 1 with every error found. Warnings are printed and do not fail.")

    @Argument(help: "The config file to check.")
    var file: String = defaultConfigPath

    func run() throws {
        do {
            let config = try GatehouseDaemon.loadConfig(path: file)
            let checks = ConfigChecks(config: config, path: file)
            for warning in checks.warnings { FileHandle.standardError.write(Data("\(warning)\n".utf8)) }
            guard checks.errors.isEmpty else {
                FileHandle.standardError.write(Data("\(ConfigError(checks.errors))\n".utf8))
                throw ExitCode(1)
            }
            let warned = checks.warnings.isEmpty ? "" : ", \(checks.warnings.count) warning\(checks.warnings.count == 1 ? "" : "s")"
            print("\(file): OK — site \(config.site), \(config.devices.count) devices, \(config.sinks.count) sinks\(warned)")
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
