import GatehouseCore
import Logging
import Synchronization

/// Logs dedup collisions — a different event under a dedup key seen before — at most once a
/// minute per device, with the count since the last line: a camera whose counter restarted
/// collides on every read for a while, and one line per read would drown the status log.
final class DedupCollisionLog: Sendable {
    private let state = Mutex<[String: (lastMs: Int64?, pending: Int)]>([:])
    static let intervalMs: Int64 = 60_000

    func note(device: String, key: String, logger: Logger, now: Timestamp) {
        let count = state.withLock { all -> Int? in
            var entry = all[device] ?? (lastMs: nil, pending: 0)
            entry.pending += 1
            defer { all[device] = entry }
            if let last = entry.lastMs, now.milliseconds - last < Self.intervalMs { return nil }
            let count = entry.pending
            entry = (now.milliseconds, 0)
            return count
        }
        guard let count else { return }
        logger.warning(
            "dedup key reused with different content: \(count) event(s) from device \(device) stored as new events (latest key \(key)); the device's counter restarted, repeats a placeholder, or its log was cleared",
            metadata: ["gatehouse.device": "\(device)", "gatehouse.dedup_collisions": "\(count)"])
    }
}
