import GatehouseCore
import GatehouseQueue
import GatehouseSinks
import Logging
import ServiceLifecycle
import Synchronization

/// Owns one `SinkRunner` per configured sink. On reload it stops runners of removed or
/// changed sinks (each finishes its in-flight batch) and starts new ones; queued events stay.
final class SinkSupervisor: Service {
    private struct Entry {
        let config: SinkConfig
        let runner: SinkRunner
        let sink: any Sink
    }

    private enum Command {
        case start(SinkRunner, any Sink)
    }

    private let queue: EventQueue
    private let logger: Logger
    /// The daemon's clock, handed to every runner for its backoffs.
    private let clock: any TimerClock
    private let entries = Mutex<[String: Entry]>([:])
    private let failures = Mutex<[String: String]>([:])
    private let commands: AsyncStream<Command>
    private let commandSink: AsyncStream<Command>.Continuation

    init(queue: EventQueue, clock: any TimerClock, logger: Logger) {
        self.queue = queue
        self.clock = clock
        self.logger = logger
        (commands, commandSink) = AsyncStream.makeStream(of: Command.self)
    }

    var statuses: [SinkStatus] { entries.withLock { $0.values.map(\.runner.status) }.sorted { $0.name < $1.name } }
    var failed: [String: String] { failures.withLock { $0 } }

    /// Makes the running sinks match `configs`; returns a description of what changed.
    @discardableResult
    func apply(_ configs: [SinkConfig]) async throws -> [String] {
        var changes: [String] = []
        try await queue.registerSinks(configs.map(\.name))
        let wanted = Dictionary(configs.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let stale = entries.withLock { current -> [Entry] in
            let stale = current.values.filter { wanted[$0.config.name] != $0.config }
            for entry in stale { current[entry.config.name] = nil }
            return stale
        }
        for entry in stale {
            entry.runner.stop()
            changes.append(wanted[entry.config.name] == nil ? "sink \(entry.config.name) removed" : "sink \(entry.config.name) changed")
        }
        failures.withLock { $0 = $0.filter { wanted[$0.key] != nil } }
        for config in configs where entries.withLock({ $0[config.name] == nil }) {
            do {
                let sink = try SinkRegistry.make(config, logger: logger)
                let runner = SinkRunner(sink: sink, config: config, queue: queue, logger: logger, clock: clock)
                entries.withLock { $0[config.name] = Entry(config: config, runner: runner, sink: sink) }
                failures.withLock { $0[config.name] = nil }
                commandSink.yield(.start(runner, sink))
                if !stale.contains(where: { $0.config.name == config.name }) { changes.append("sink \(config.name) added") }
            } catch {
                failures.withLock { $0[config.name] = "\(error)" }
                logger.error("sink \(config.name) cannot start: \(error)", metadata: ["sink.name": "\(config.name)"])
            }
        }
        return changes
    }

    func run() async throws {
        await withDiscardingTaskGroup { group in
            for await command in commands.cancelOnGracefulShutdown() {
                switch command {
                case .start(let runner, let sink):
                    group.addTask {
                        await runner.run()
                        await sink.shutdown()
                    }
                }
            }
            // Graceful shutdown: every runner finishes its in-flight batch, then returns.
            for entry in entries.withLock({ Array($0.values) }) { entry.runner.stop() }
        }
    }
}
