import GatehouseCore
import Logging
import Synchronization

/// Counts what happens per key (a device, an eviction class) and lets one log line through per key
/// and interval, carrying what happened since the last line: a camera whose counter restarted
/// collides on every read, a full budget evicts on every commit, and one line each would drown
/// the status log. The totals stay exact in the queue's counters and the status line.
final class IntervalSummary<Key: Hashable & Sendable>: Sendable {
    struct Entry {
        var lastMs: Int64?
        var count: Int64 = 0
        var bytes: Int64 = 0
    }
    private let state = Mutex<[Key: Entry]>([:])
    let intervalMs: Int64

    init(intervalMs: Int64 = 60_000) { self.intervalMs = intervalMs }

    /// Adds to `key`'s totals; returns the totals to log now (and starts a new interval), or nil
    /// while the interval since the key's last line runs.
    func note(_ key: Key, count: Int64 = 1, bytes: Int64 = 0, now: Timestamp) -> (count: Int64, bytes: Int64)? {
        state.withLock { all in
            var entry = all[key] ?? Entry()
            entry.count += count
            entry.bytes += bytes
            defer { all[key] = entry }
            if let last = entry.lastMs, now.milliseconds - last < intervalMs { return nil }
            let due = (entry.count, entry.bytes)
            entry = Entry(lastMs: now.milliseconds)
            return due
        }
    }
}

/// Logs dedup collisions — a different event under a dedup key seen before — at most once a
/// minute per device, with the count since the last line.
final class DedupCollisionLog: Sendable {
    private let summary = IntervalSummary<String>()

    func note(device: String, key: String, logger: Logger, now: Timestamp) {
        guard let (count, _) = summary.note(device, now: now) else { return }
        logger.warning(
            "dedup key reused with different content: \(count) event(s) from device \(device) stored as new events (latest key \(key)); the device's counter restarted, repeats a placeholder, or its log was cleared",
            metadata: ["gatehouse.device": "\(device)", "gatehouse.dedup_collisions": "\(count)"])
    }
}
