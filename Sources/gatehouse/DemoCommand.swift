import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseDaemon
import GatehouseSimulation
import Logging
import Synchronization

/// `gatehouse demo`: the daemon on embedded defaults, fed by simulated devices, forwarding
/// to a local stand-in for the central store, printing its status lines; a scripted story
/// (`DemoStory`) plays on top of the traffic and a closing summary says what it showed.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Run the gateway on embedded defaults with simulated devices.")

    @Option(help: "Where the demo keeps its config, queue, outbox and what the centre received.")
    var dir: String = "./demo-data"

    @Option(help: "Events per second from all simulated devices together.")
    var rate: Double = 20

    @Option(help: "Stop after this many seconds (default: run until Ctrl-C).")
    var duration: Double?

    @Option(help: "Ingest listener port (0: any free port).") var ingestPort = 18080
    @Option(help: "Admin listener port (0: any free port).") var adminPort = 19108
    @Option(help: "Port of the local stand-in for the central store (0: any free port).") var receiverPort = 18090

    func run() async throws {
        // The demo runs for an operator in real time: its waits and stamps are the machine's clock
        // on purpose (no daemon decision reads them; the daemon it starts has its own clock).
        let started = ContinuousClock.now
        // Absolute: the generated config names its paths, and relative ones would be read against
        // the config file's own directory.
        let directory = URL(fileURLWithPath: dir).standardizedFileURL.path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let configPath = (directory as NSString).appendingPathComponent("gatehouse.yaml")
        let centreFile = (directory as NSString).appendingPathComponent("central/received.ndjson")
        let plan = DemoStory.Plan(duration: duration, eventsPerSecond: rate)
        // Time-based, so record ids in a queue kept from an earlier run are not reused.
        let runTag = String(Int(Date().timeIntervalSince1970), radix: 36)
        // The level the generated config sets; logging is bootstrapped once, before the centre starts.
        let (logger, logLevel) = bootstrapLogging(level: "info")
        let registry = GatehouseDaemon.bootstrapMetrics()
        let receiver = CentralReceiver(
            host: "127.0.0.1", port: receiverPort, hmacSecret: "demo-hmac-secret", recordFile: centreFile,
            logger: logger.withLabel("central"))
        let (listeners, announce) = AsyncStream.makeStream(of: (name: String, port: Int).self)
        // The run's duration counts from when the devices start, not from before the daemon is
        // listening: on a busy machine start-up alone can take a good part of a short run.
        let (devicesStarted, devicesStart) = AsyncStream.makeStream(of: Void.self)
        let parts = DemoParts()
        if let duration, !plan.full {
            say("gatehouse demo: --duration \(Int(duration)) is too short for the whole story (it needs \(Int(DemoStory.Plan.minimumSeconds)) s): no device goes down and the centre stays up")
        }
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
            let centrePort = try await receiver.waitUntilRunning()
            let ports = DemoConfig.Ports(ingest: ingestPort, admin: adminPort, receiver: centrePort)
            let yaml = DemoConfig.yaml(directory: directory, ports: ports, storyOfflineAfterSeconds: plan.offlineAfterSeconds)
            try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
            let config = try GatehouseDaemon.loadConfig(path: configPath)
            let daemon = GatehouseDaemon(
                config: config, configPath: configPath, logger: logger, registry: registry, logLevel: logLevel,
                onListening: { name, port in announce.yield((name, port)) })
            group.addTask {
                // The devices start once both listeners are bound, so none of them counts as down for a slow start.
                var bound: [String: Int] = [:]
                for await listener in listeners {
                    bound[listener.name] = listener.port
                    if bound["ingest"] != nil, bound["admin"] != nil { break }
                }
                guard let ingest = bound["ingest"], let admin = bound["admin"] else { return }
                say("""
                    gatehouse demo: config \(configPath)
                      ingest   http://127.0.0.1:\(ingest)/v1/devices/<device>/events
                      status   swift run gatehouse status --admin http://127.0.0.1:\(admin)   (or curl http://127.0.0.1:\(admin)/metrics)
                      outbox   \(directory)/outbox/events.ndjson
                      centre   \(centreFile)
                    Ctrl-C stops it cleanly.
                    """)
                let pusher = DevicePusher(baseURL: "http://127.0.0.1:\(ingest)")
                let fleet = DeviceFleet(
                    devices: DemoConfig.devices.map {
                        .init(id: $0.id, role: TrafficGenerator.Role(rawValue: $0.role) ?? .doorController, token: DemoConfig.token(for: $0.id))
                    },
                    pusher: pusher, eventsPerSecond: rate, runTag: runTag, logger: logger)
                let story = DemoStory(plan: plan, fleet: fleet, pusher: pusher, receiver: receiver, adminPort: admin, runTag: runTag)
                parts.set(fleet: fleet, story: story, pusher: pusher)
                devicesStart.finish()
                await withTaskGroup(of: Void.self) { scenes in
                    scenes.addTask { await fleet.run() }
                    scenes.addTask { await story.run() }
                }
            }
            group.addTask {
                guard let duration else { return }
                for await _ in devicesStarted {}
                try await Task.sleep(for: .seconds(duration))
                if let story = parts.story {
                    if plan.full, !story.record.finished {
                        say("gatehouse demo: the story is still running after \(Int(duration)) s (a busy machine); waiting up to 120 s for it to end")
                        await story.waitUntilFinished(timeout: .seconds(120))
                    }
                    // The devices fall quiet and the sinks deliver what is queued, so the summary's
                    // figures agree with each other; then the daemon stops as on SIGTERM.
                    for device in DemoConfig.devices { story.fleet.silence(device.id) }
                    await story.waitUntilDelivered(timeout: .seconds(60))
                }
                kill(getpid(), SIGTERM)
            }
            try await daemon.run()
            announce.finish()
            group.cancelAll()
        }
        await parts.pusher?.shutdown()
        let summary = DemoSummary(
            seconds: (ContinuousClock.now - started) / .seconds(1), story: parts.story?.record ?? DemoStory.Record(),
            fleet: parts.fleet?.counts ?? DeviceFleet.Tally(), centre: receiver.snapshot,
            files: [
                ("config", configPath),
                ("queue", (directory as NSString).appendingPathComponent("state/\(GatehouseDaemon.queueFileName)")),
                ("outbox", (directory as NSString).appendingPathComponent("outbox/events.ndjson")),
                ("centre", centreFile),
                ("quarantine", "gatehouse quarantine list --config \(configPath)"),
            ])
        say(summary.text)
    }
}

/// What the demo builds once its listeners are bound, for the closing summary.
final class DemoParts: Sendable {
    private let parts = Mutex<(fleet: DeviceFleet, story: DemoStory, pusher: DevicePusher)?>(nil)

    func set(fleet: DeviceFleet, story: DemoStory, pusher: DevicePusher) { parts.withLock { $0 = (fleet, story, pusher) } }
    var fleet: DeviceFleet? { parts.withLock { $0?.fleet } }
    var story: DemoStory? { parts.withLock { $0?.story } }
    var pusher: DevicePusher? { parts.withLock { $0?.pusher } }
}

extension Logger {
    func withLabel(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = logLevel
        return logger
    }
}
