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
        do {
            loaded = try GatehouseDaemon.loadConfig(path: config)
        } catch {
            FileHandle.standardError.write(Data("gatehouse: cannot start: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let logger = bootstrapLogging(level: loaded.logLevel)
        let daemon = GatehouseDaemon(config: loaded, configPath: config, logger: logger, registry: GatehouseDaemon.bootstrapMetrics())
        do {
            try await daemon.run()
        } catch {
            logger.critical("gatehouse stopped with an error: \(error)")
            throw ExitCode(1)
        }
    }
}

/// Logs go to standard error, which systemd sends to the journal.
func bootstrapLogging(level: String) -> Logger {
    let parsed = Logger.Level(rawValue: level) ?? .info
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = parsed
        return handler
    }
    var logger = Logger(label: "gatehouse")
    logger.logLevel = parsed
    return logger
}
