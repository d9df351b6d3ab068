import ArgumentParser

/// `gatehouse-bench`: measures the gateway from outside (HTTP load, process sampling) and the
/// plain-SQLite ceiling it is compared against. See benchmarks/README.md.
@main
struct GatehouseBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse-bench",
        abstract: "Load generator and measurements for the Gatehouse daemon.",
        subcommands: [HTTPLoadCommand.self, SQLiteCeilingCommand.self, ProcCommand.self, CamerasCommand.self, GB28181Command.self]
    )
}
