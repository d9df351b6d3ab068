import Foundation
import GRDB
import GatehouseCore

extension EventQueue {
    /// Current figures; cheap enough for every status line (no table scans).
    public func stats() async throws -> QueueStats {
        let (budget, _) = settingsSnapshot()
        let process = processCounters()
        let values = counterValues()
        var stats = try await pool.read { db -> QueueStats in
            let oldest = try Int64.fetchOne(db, sql: "SELECT received_ms FROM events ORDER BY seq LIMIT 1")
            let waiting = try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM quarantine WHERE replayed_ms IS NULL AND discarded_ms IS NULL") ?? 0
            var evicted: [String: Int64] = ["quarantine": values[Counter.evictedQuarantine] ?? 0]
            for priority in Priority.allCases { evicted[priority.rawValue] = values[Counter.evicted(priority.rank)] ?? 0 }
            return QueueStats(
                depth: values[Counter.queuedEvents] ?? 0,
                usedBytes: (values[Counter.queuedBytes] ?? 0) + (values[Counter.quarantineBytes] ?? 0),
                budgetBytes: budget, oldestReceivedAt: oldest.map(Timestamp.init(milliseconds:)), evicted: evicted,
                quarantined: values[Counter.quarantined] ?? 0, quarantineWaiting: waiting,
                duplicates: values[Counter.duplicates] ?? 0, dedupCollisions: values[Counter.dedupCollisions] ?? 0,
                fileBytes: 0, commits: process.commits, committedEvents: process.events)
        }
        stats.diskFull = diskFullReason
        stats.waitingAppends = waitingAppends
        stats.fileBytes = [path, path + "-wal"].reduce(Int64(0)) { total, file in
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int64) ?? nil
            return total + (size ?? 0)
        }
        return stats
    }

    /// Where a polled device's log was last read to.
    public func deviceCursor(_ deviceID: String) async throws -> String? {
        try await pool.read { db in
            try String.fetchOne(db, sql: "SELECT cursor FROM device_cursors WHERE device_id = ?", arguments: [deviceID])
        }
    }

    /// Deletes a device cursor (a device or camera no longer configured); no row is fine.
    public func deleteDeviceCursor(_ deviceID: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM device_cursors WHERE device_id = ?", arguments: [deviceID])
        }
    }

    /// Forgets dedup keys older than the window and returns freed pages to the file system
    /// when there are many and little is kept (EventQueue+Space).
    public func maintain(now: Timestamp? = nil) async throws {
        let now = now ?? clock.now
        let windowHours = dedupWindowHours()
        let cutoff = now.milliseconds - Int64(windowHours * 3_600_000)
        try await pool.write { db in
            // Every key is in `dedup` first, so one statement forgets the old ones.
            try self.recentDedup.fold(db)
            self.recentDedup.apply(afterCommitOf: db, added: [:], folded: true)
            try db.execute(sql: "DELETE FROM dedup WHERE seen_ms < ?", arguments: [cutoff])
        }
        if let done = try await pool.writeWithoutTransaction({ db in try self.compactIfWorthIt(db) }) { logger.notice("\(done)") }
    }
}
