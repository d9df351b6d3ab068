import GatehouseCore
import GatehouseIngest
import Logging
import ServiceLifecycle
import Synchronization

/// Runs the long-running work of drivers that poll or listen per device. A failing driver never
/// takes the daemon down: its device is marked down with the error and its task restarts after
/// a backoff (1 s doubling to 60 s). On reload, tasks of removed or changed devices are cancelled
/// and new ones started.
final class DriverSupervisor: Service {
    private enum Command {
        case start(DeviceConfig, any Driver, generation: Int)
    }

    private let context: DriverContext
    private let logger: Logger
    /// Device id → (config, generation); a task whose generation is no longer current stops.
    private let running = Mutex<[String: (config: DeviceConfig, generation: Int)]>([:])
    private let generation = Atomic<Int>(0)
    private let commands: AsyncStream<Command>
    private let commandSink: AsyncStream<Command>.Continuation

    init(context: DriverContext, logger: Logger) {
        self.context = context
        self.logger = logger
        (commands, commandSink) = AsyncStream.makeStream(of: Command.self)
    }

    /// Makes the running per-device tasks match `devices`.
    func apply(_ devices: [DeviceConfig]) {
        let wanted = devices.filter { device in
            device.enabled && (DriverRegistry.driver(named: device.driver)?.runsPerDevice ?? false)
        }
        let byID = Dictionary(wanted.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        running.withLock { current in
            for (id, entry) in current where byID[id] != entry.config { current[id] = nil }
        }
        for device in wanted where running.withLock({ $0[device.id] == nil }) {
            guard let driver = DriverRegistry.driver(named: device.driver) else { continue }
            let next = generation.add(1, ordering: .relaxed).newValue
            running.withLock { $0[device.id] = (device, next) }
            commandSink.yield(.start(device, driver, generation: next))
        }
    }

    private func isCurrent(_ id: String, _ generation: Int) -> Bool {
        running.withLock { $0[id]?.generation == generation }
    }

    func run() async throws {
        await withDiscardingTaskGroup { group in
            for await command in commands.cancelOnGracefulShutdown() {
                switch command {
                case .start(let device, let driver, let generation):
                    group.addTask { await self.supervise(device, driver, generation) }
                }
            }
            group.cancelAll()
        }
    }

    private func supervise(_ device: DeviceConfig, _ driver: any Driver, _ generation: Int) async {
        var backoff = 1.0
        while !Task.isCancelled, isCurrent(device.id, generation) {
            // Run until the work ends, the device is reconfigured, or the group is cancelled.
            let outcome: Result<Void, any Error> = await withTaskGroup(of: Result<Void, any Error>?.self) { group in
                group.addTask {
                    do {
                        try await driver.run(device: device, context: self.context)
                        return .success(())
                    } catch {
                        return .failure(error)
                    }
                }
                group.addTask {
                    while !Task.isCancelled, self.isCurrent(device.id, generation) {
                        try? await Task.sleep(for: .milliseconds(500))
                    }
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first ?? .success(())
            }
            guard !Task.isCancelled, isCurrent(device.id, generation) else { return }
            let reason: String
            switch outcome {
            case .success: reason = "driver \(driver.name) stopped"
            case .failure(let error): reason = "driver \(driver.name) failed: \(error)"
            }
            logger.warning("device \(device.id): \(reason); restarting in \(Int(backoff)) s", metadata: ["gatehouse.device": "\(device.id)"])
            await context.device(device).down(reason: reason)
            try? await Task.sleep(for: .seconds(backoff))
            backoff = min(backoff * 2, 60)
        }
    }
}
