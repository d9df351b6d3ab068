import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseDaemon
import Logging

/// `gatehouse run`: the daemon, as systemd starts it.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the gateway daemon.")

    @Option(name: .shortAndLong, help: "The config file.")
    var config: String = defaultConfigPath

    func run() async throws {
        let loaded: GatehouseConfig
        let checks: ConfigChecks
        do {
            loaded = try GatehouseDaemon.loadConfig(path: config)
            checks = ConfigChecks(config: loaded, path: config)
            if !checks.errors.isEmpty { throw ConfigError(checks.errors) }
        } catch {
            FileHandle.standardError.write(Data("gatehouse: cannot start: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let (logger, logLevel) = bootstrapLogging(level: loaded.logLevel)
        for warning in checks.warnings { logger.warning("\(warning)") }
        let daemon = GatehouseDaemon(
            config: loaded, configPath: config, logger: logger, registry: GatehouseDaemon.bootstrapMetrics(), logLevel: logLevel)
        do {
            try await daemon.run()
        } catch {
            logger.critical("gatehouse stopped with an error: \(error)")
            throw ExitCode(1)
        }
    }
}

/// Logs go to standard error, which systemd sends to the journal, at a level SIGHUP can change.
func bootstrapLogging(level: String) -> (Logger, LogLevelControl) {
    let control = LogLevelControl(Logger.Level(rawValue: level) ?? .info)
    control.bootstrap()
    return (Logger(label: "gatehouse"), control)
}
