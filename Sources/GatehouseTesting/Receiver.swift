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

/// `withReceiver` for a store that comes back on the port it had: the port was free, but on a
/// shared machine another process may hold it for a moment (the kernel hands released ports out
/// again), so a receiver that cannot bind is replaced by a fresh one from `make` until it can,
/// for up to `timeout`. Errors from `body` are not retried.
public func withReceiver<T: Sendable>(
    reusing port: Int, timeout: Duration = .seconds(60), make: (Int) -> CentralReceiver, _ body: (CentralReceiver) async throws -> T
) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    while true {
        let receiver = make(port)
        do {
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await receiver.run() }
                do { _ = try await receiver.waitUntilRunning() } catch { throw ReceiverNotBound(error: error) }
                let result = try await body(receiver)
                group.cancelAll()
                return result
            }
        } catch let failed as ReceiverNotBound {
            guard "\(failed.error)".contains("Address already in use"), ContinuousClock.now < deadline else { throw failed.error }
            try await Task.sleep(for: .milliseconds(200))
        }
    }
}

/// A receiver that could not bind its port, as `withReceiver(reusing:)` sees it.
private struct ReceiverNotBound: Error { let error: any Error }

extension CentralReceiver {
    /// The events the centre holds from `device`, leaving out the gateway's own reports about it
    /// (`device.online`, `device.clock-skew`…), which come and go with timing.
    public func deviceEvents(from device: String) throws -> [Event] {
        try snapshot.bodies.values.map { try EventCoding.decode(Data($0.utf8)) }
            .filter { !$0.kind.rawValue.hasPrefix("device.") && $0.device.id == device }
    }
}
