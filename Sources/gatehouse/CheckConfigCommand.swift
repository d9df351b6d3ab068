import ArgumentParser
import Foundation
import GatehouseDaemon

/// `gatehouse check-config FILE`: validates without opening a socket or the queue.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate a config file; exit 1 with every error found.")

    @Argument(help: "The config file to check.")
    var file: String = defaultConfigPath

    func run() throws {
        do {
            let config = try GatehouseDaemon.loadConfig(path: file)
            print("\(file): OK — site \(config.site), \(config.devices.count) devices, \(config.sinks.count) sinks")
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
