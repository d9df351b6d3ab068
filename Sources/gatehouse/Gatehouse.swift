import ArgumentParser
import GatehouseCore

/// The `gatehouse` command: the daemon and the tools operators run beside it.
@main
struct Gatehouse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "Edge gateway for barrier gates, plate cameras, door controllers and IP cameras.",
        version: GatehouseVersion.current,
        subcommands: [
            RunCommand.self, CheckConfigCommand.self, StatusCommand.self, QuarantineCommand.self, DemoCommand.self,
            AdaptersCommand.self,
            DiscoverCommand.self,
            ConsoleCommand.self,
        ],
        defaultSubcommand: RunCommand.self)
}

/// Where the config lives unless `--config` says otherwise.
let defaultConfigPath = "/etc/gatehouse/gatehouse.yaml"
