import GatehouseCore
import GatehouseIngest
import Logging
import ServiceLifecycle
import Synchronization

/// Runs the long-running work of drivers that poll or listen per device. A failing driver never
/// takes the daemon down: its device is marked down with the error and its task restarts after
/// a backoff (1 s doubling to 60 s) on the drivers' clock, so a test advances it instead of waiting. On reload, exactly the tasks of removed or changed devices
/// (matched by id) are cancelled and new ones started; unchanged devices keep running untouched.
final class DriverSupervisor: Service {
    private enum Command {
        case start(DeviceConfig, any Driver, stopped: AsyncStream<Never>)
    }

    /// A running device task and the handle that cancels it: finishing `stop` ends its stream,
    /// which cancels that task alone.
    private struct Running {
        let config: DeviceConfig
        let stop: AsyncStream<Never>.Continuation
    }

    private let context: DriverContext
    /// This run's driver instances by name.
    private let drivers: [String: any Driver]
    private let logger: Logger
    private let running = Mutex<[String: Running]>([:])
    private let commands: AsyncStream<Command>
    private let commandSink: AsyncStream<Command>.Continuation

    init(context: DriverContext, drivers: [any Driver], logger: Logger) {
        self.context = context
        self.drivers = Dictionary(drivers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.logger = logger
        (commands, commandSink) = AsyncStream.makeStream(of: Command.self)
    }

    /// Makes the running per-device tasks match `devices`.
    func apply(_ devices: [DeviceConfig]) {
        let wanted = devices.filter { device in
            device.enabled && (drivers[device.driver]?.runsPerDevice ?? false)
        }
        let byID = Dictionary(wanted.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let stale = running.withLock { current -> [Running] in
            let stale = current.filter { byID[$0.key] != $0.value.config }
            for id in stale.keys { current[id] = nil }
            return Array(stale.values)
        }
        for entry in stale { entry.stop.finish() }
        for device in wanted where running.withLock({ $0[device.id] == nil }) {
            guard let driver = drivers[device.driver] else { continue }
            let (stopped, stop) = AsyncStream.makeStream(of: Never.self)
            running.withLock { $0[device.id] = Running(config: device, stop: stop) }
            commandSink.yield(.start(device, driver, stopped: stopped))
        }
    }

    func run() async throws {
        await withDiscardingTaskGroup { group in
            for await command in commands.cancelOnGracefulShutdown() {
                switch command {
                case .start(let device, let driver, let stopped):
                    group.addTask {
                        // Whichever ends first: the device's work, or `apply` stopping it.
                        await withTaskGroup(of: Void.self) { perDevice in
                            perDevice.addTask { await self.supervise(device, driver) }
                            perDevice.addTask { for await _ in stopped {} }
                            await perDevice.next()
                            perDevice.cancelAll()
                        }
                    }
                }
            }
            group.cancelAll()
        }
    }

    private func supervise(_ device: DeviceConfig, _ driver: any Driver) async {
        var backoff = 1.0
        while !Task.isCancelled {
            let reason: String
            do {
                try await driver.run(device: device, context: context)
                reason = "driver \(driver.name) stopped"
            } catch {
                reason = "driver \(driver.name) failed: \(error)"
            }
            guard !Task.isCancelled else { return }
            logger.warning("device \(device.id): \(reason); restarting in \(Int(backoff)) s", metadata: ["gatehouse.device": "\(device.id)"])
            await context.device(device).down(reason: reason)
            try? await context.clock.sleep(for: .seconds(backoff))
            backoff = min(backoff * 2, 60)
        }
    }
}
