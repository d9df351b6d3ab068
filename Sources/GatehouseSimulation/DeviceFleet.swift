import Foundation
import Logging
import Synchronization

/// A set of simulated devices pushing at a steady overall rate until stopped or `duration` ends.
public final class DeviceFleet: Sendable {
    /// One simulated device.
    public struct Device: Sendable {
        public var id: String
        public var role: TrafficGenerator.Role
        public var token: String?

        public init(id: String, role: TrafficGenerator.Role, token: String?) {
            self.id = id
            self.role = role
            self.token = token
        }
    }

    /// What the fleet sent and what the gateway acknowledged.
    public struct Tally: Sendable, Equatable {
        public var sent = 0
        public var acknowledged = 0
        public var refused = 0
        public var failed = 0

        public init() {}
    }

    let devices: [Device]
    let pusher: DevicePusher
    let eventsPerSecond: Double
    let logger: Logger
    /// Makes this run's dedup keys its own, so a run on a queue kept from an earlier one is not
    /// taken for that run's devices reusing their record ids.
    let runTag: String?
    private let tally = Mutex(Tally())
    /// Devices told to stop sending, as if unplugged: the gateway must notice on its own.
    private let silenced = Mutex(Set<String>())

    public init(devices: [Device], pusher: DevicePusher, eventsPerSecond: Double, runTag: String? = nil, logger: Logger) {
        self.devices = devices
        self.runTag = runTag
        self.pusher = pusher
        self.eventsPerSecond = eventsPerSecond
        self.logger = logger
    }

    public var counts: Tally { tally.withLock { $0 } }

    /// Stops `deviceID` sending until `resume(_:)`, as a device that lost power or its link.
    public func silence(_ deviceID: String) { _ = silenced.withLock { $0.insert(deviceID) } }

    /// Lets a silenced device send again.
    public func resume(_ deviceID: String) { _ = silenced.withLock { $0.remove(deviceID) } }

    /// Pushes until the task is cancelled or `duration` has passed.
    public func run(duration: Duration? = nil) async {
        guard !devices.isEmpty, eventsPerSecond > 0 else { return }
        let clock = ContinuousClock()
        let deadline = duration.map { clock.now.advanced(by: $0) }
        let perDevice = eventsPerSecond / Double(devices.count)
        await withTaskGroup(of: Void.self) { group in
            for (index, device) in devices.enumerated() {
                group.addTask {
                    var generator = TrafficGenerator(seed: UInt64(index + 1) &* 0x9E37_79B9)
                    var sequence = 0
                    let interval = Duration.seconds(1 / perDevice)
                    var next = clock.now
                    while !Task.isCancelled {
                        if let deadline, clock.now >= deadline { return }
                        next = next.advanced(by: interval)
                        if self.silenced.withLock({ $0.contains(device.id) }) {
                            try? await Task.sleep(until: next, clock: clock)
                            continue
                        }
                        sequence += 1
                        var event = generator.event(role: device.role, deviceID: device.id, sequence: sequence)
                        if let runTag = self.runTag { event["dedupKey"] = "\(device.id)-\(runTag)-\(sequence)" }
                        let reply = await self.pusher.push(deviceID: device.id, token: device.token, body: TrafficGenerator.body([event]))
                        self.tally.withLock {
                            $0.sent += 1
                            switch reply.status {
                            case 200: $0.acknowledged += 1
                            case 503: $0.refused += 1
                            default: $0.failed += 1
                            }
                        }
                        if reply.status != 200 && reply.status != 503 {
                            self.logger.debug("push from \(device.id) failed: \(reply.status) \(reply.error ?? reply.body)")
                        }
                        try? await Task.sleep(until: next, clock: clock)
                    }
                }
            }
        }
    }
}
