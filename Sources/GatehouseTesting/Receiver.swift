import Foundation
import GatehouseCore
import GatehouseSimulation
import Logging

/// A `CentralReceiver` on 127.0.0.1 with a free port, serving until the returned task is cancelled.
public func startReceiver(hmacSecret: String? = "e2e-hmac") async throws -> (CentralReceiver, Task<Void, any Error>, Int) {
    var logger = Logger(label: "receiver")
    logger.logLevel = .warning
    let receiver = CentralReceiver(host: "127.0.0.1", port: 0, hmacSecret: hmacSecret, logger: logger)
    let task = Task { try await receiver.run() }
    let port = try await receiver.waitUntilRunning()
    return (receiver, task, port)
}

/// Runs `receiver` for the duration of `body`, which gets its port.
public func withReceiver<T: Sendable>(_ receiver: CentralReceiver, _ body: (Int) async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await receiver.run() }
        let port = try await receiver.waitUntilRunning()
        let result = try await body(port)
        group.cancelAll()
        return result
    }
}

extension CentralReceiver {
    /// The events the centre holds from `device`, leaving out the gateway's own reports about it
    /// (`device.online`, `device.clock-skew`…), which come and go with timing.
    public func deviceEvents(from device: String) throws -> [Event] {
        try snapshot.bodies.values.map { try EventCoding.decode(Data($0.utf8)) }
            .filter { !$0.kind.rawValue.hasPrefix("device.") && $0.device.id == device }
    }
}
