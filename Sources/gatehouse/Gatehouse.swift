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

    /// The malloc settings go first, before the runtime starts its threads: a thread that has
    /// allocated keeps the arena it got, whatever the limit says later.
    static func main() async {
        AllocatorTuning.apply()
        await main(nil)
    }
}

/// Where the config lives unless `--config` says otherwise.
let defaultConfigPath = "/etc/gatehouse/gatehouse.yaml"
