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
    /// A device to start, with the generation of its `running` entry: a device stopped (or
    /// changed) before `run` got to it is not started.
    private struct Start {
        let device: DeviceConfig
        let driver: any Driver
        let generation: Int
    }

    /// A device's entry: its config and, once `run` started it, the task that supervises it.
    private struct Running {
        let config: DeviceConfig
        let generation: Int
        var task: Task<Void, Never>?
    }

    private struct State {
        var running: [String: Running] = [:]
        /// Tasks of stopped devices until they have wound down, so shutdown waits for them too.
        var stopping: [Int: Task<Void, Never>] = [:]
        var nextGeneration = 0
        var shutDown = false
    }

    private let context: DriverContext
    /// This run's driver instances by name.
    private let drivers: [String: any Driver]
    private let logger: Logger
    private let state = Mutex(State())
    private let starts: AsyncStream<Start>
    private let startSink: AsyncStream<Start>.Continuation

    init(context: DriverContext, drivers: [any Driver], logger: Logger) {
        self.context = context
        self.drivers = Dictionary(drivers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.logger = logger
        (starts, startSink) = AsyncStream.makeStream(of: Start.self)
    }

    /// Makes the running per-device tasks match `devices`; `connectConcurrency` (reloaded
    /// `connect_concurrency`) applies to the next device that connects.
    func apply(_ devices: [DeviceConfig], connectConcurrency: Int? = nil) {
        if let connectConcurrency { context.connectWaves.update(limit: connectConcurrency) }
        let wanted = devices.filter { device in
            device.enabled && (drivers[device.driver]?.runsPerDevice ?? false)
        }
        let byID = Dictionary(wanted.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let toStart = state.withLock { state -> [Start] in
            for (id, entry) in state.running where byID[id] != entry.config {
                state.running[id] = nil
                if let task = entry.task {
                    task.cancel()
                    state.stopping[entry.generation] = task
                }
            }
            var toStart: [Start] = []
            for device in wanted where state.running[device.id] == nil {
                guard let driver = drivers[device.driver] else { continue }
                state.nextGeneration += 1
                state.running[device.id] = Running(config: device, generation: state.nextGeneration)
                toStart.append(Start(device: device, driver: driver, generation: state.nextGeneration))
            }
            return toStart
        }
        for start in toStart { startSink.yield(start) }
    }

    func run() async throws {
        for await start in starts.cancelOnGracefulShutdown() {
            state.withLock { state in
                guard !state.shutDown, state.running[start.device.id]?.generation == start.generation else { return }
                // One task per device, not a task group per device with a second task waiting for
                // the stop signal: every held camera's tasks keep their async frames allocated
                // (issue 10's memory aim). A device is stopped by cancelling its task, which
                // needs its handle, so it is an unstructured task; `run` still owns it: it
                // cancels and awaits every one before returning. Made under the lock, so the
                // handle is stored before the task can end and remove it.
                state.running[start.device.id]?.task = Task {
                    await self.supervise(start.device, start.driver)
                    self.ended(start.generation)
                }
            }
        }
        let tasks = state.withLock { state -> [Task<Void, Never>] in
            state.shutDown = true
            defer {
                state.running = [:]
                state.stopping = [:]
            }
            return state.running.values.compactMap(\.task) + Array(state.stopping.values)
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    /// A stopped device's task has wound down.
    private func ended(_ generation: Int) {
        state.withLock { _ = $0.stopping.removeValue(forKey: generation) }
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
