import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseDaemon
import GatehouseSimulation
import Logging

/// `gatehouse demo`: the daemon on embedded defaults, fed by simulated devices, forwarding
/// to a local stand-in for the central store, printing its status lines.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Run the gateway on embedded defaults with simulated devices.")

    @Option(help: "Where the demo keeps its config, queue, outbox and what the centre received.")
    var dir: String = "./demo-data"

    @Option(help: "Events per second from all simulated devices together.")
    var rate: Double = 20

    @Option(help: "Stop after this many seconds (default: run until Ctrl-C).")
    var duration: Double?

    @Option(help: "Ingest listener port.") var ingestPort = 18080
    @Option(help: "Admin listener port.") var adminPort = 19108
    @Option(help: "Port of the local stand-in for the central store.") var receiverPort = 18090

    func run() async throws {
        // Absolute: the generated config names its paths, and relative ones would be read against
        // the config file's own directory.
        let directory = URL(fileURLWithPath: dir).standardizedFileURL.path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let configPath = (directory as NSString).appendingPathComponent("gatehouse.yaml")
        let ports = DemoConfig.Ports(ingest: ingestPort, admin: adminPort, receiver: receiverPort)
        try DemoConfig.yaml(directory: directory, ports: ports).write(toFile: configPath, atomically: true, encoding: .utf8)
        let config = try GatehouseDaemon.loadConfig(path: configPath)
        let (logger, logLevel) = bootstrapLogging(level: config.logLevel)
        let registry = GatehouseDaemon.bootstrapMetrics()

        let receiver = CentralReceiver(
            host: "127.0.0.1", port: receiverPort, hmacSecret: "demo-hmac-secret",
            recordFile: (directory as NSString).appendingPathComponent("central/received.ndjson"),
            logger: logger.withLabel("central"))
        let pusher = DevicePusher(baseURL: "http://127.0.0.1:\(ingestPort)")
        let fleet = DeviceFleet(
            devices: DemoConfig.devices.map {
                .init(id: $0.id, role: TrafficGenerator.Role(rawValue: $0.role) ?? .doorController, token: DemoConfig.token(for: $0.id))
            },
            pusher: pusher, eventsPerSecond: rate, logger: logger)
        print("""
            gatehouse demo: config \(configPath)
              ingest   http://127.0.0.1:\(ingestPort)/v1/devices/<device>/events
              status   swift run gatehouse status --admin http://127.0.0.1:\(adminPort)   (or curl http://127.0.0.1:\(adminPort)/metrics)
              outbox   \(directory)/outbox/events.ndjson
              centre   \(directory)/central/received.ndjson
            Ctrl-C stops it cleanly.
            """)
        let daemon = GatehouseDaemon(config: config, configPath: configPath, logger: logger, registry: registry, logLevel: logLevel)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await receiver.run()
                } catch is CancellationError {
                } catch {
                    // The demo goes on without its centre (events wait in the queue), but says why.
                    logger.error("the demo's stand-in for the central store stopped: \(error)")
                }
            }
            group.addTask {
                // Give the listeners a moment, then start the devices.
                try await Task.sleep(for: .seconds(1))
                await fleet.run()
            }
            group.addTask {
                if let duration {
                    try await Task.sleep(for: .seconds(duration))
                    kill(getpid(), SIGTERM)
                }
            }
            try await daemon.run()
            group.cancelAll()
        }
        await pusher.shutdown()
        let tally = fleet.counts
        let central = receiver.snapshot
        print("demo finished: devices sent \(tally.sent), gateway acknowledged \(tally.acknowledged); centre received \(central.uniqueCount) unique events")
    }
}

extension Logger {
    func withLabel(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = logLevel
        return logger
    }
}
