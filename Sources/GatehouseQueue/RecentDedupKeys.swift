import GRDB
import Synchronization

/// Dedup keys committed since the last fold, looked up in memory.
///
/// They are stored in `dedup_log`, a table written in insertion order, so a commit touches its
/// right-most page only; the keyed `dedup` table (a B-tree ordered by device and key, where each
/// new key lands on a page of its own) is written once per fold, in key order, thousands of keys
/// at a time, instead of one scattered page per event. A lookup asks this map and `dedup`.
final class RecentDedupKeys: Sendable {
    struct Key: Hashable, Sendable {
        let device: String
        let key: String
    }

    struct Entry: Sendable {
        let fingerprint: String
        let eventID: String
    }

    /// Keys kept in `dedup_log` before a group commit moves them to `dedup`: a fold then writes
    /// few pages per key, and the map stays small (about 150 bytes a key).
    static let foldThreshold = 4096

    private let entries = Mutex<(byKey: [Key: [Entry]], count: Int)>(([:], 0))

    var count: Int { entries.withLock { $0.count } }

    func lookup(_ key: Key) -> [Entry] { entries.withLock { $0.byKey[key] ?? [] } }

    /// Loads what `dedup_log` holds (at open).
    func load(_ db: Database) throws {
        var byKey: [Key: [Entry]] = [:]
        var count = 0
        let rows = try Row.fetchCursor(db, sql: "SELECT device_id, key, fingerprint, event_id FROM dedup_log")
        while let row = try rows.next() {
            byKey[Key(device: row[0], key: row[1]), default: []].append(Entry(fingerprint: row[2], eventID: row[3]))
            count += 1
        }
        entries.withLock { $0 = (byKey, count) }
    }

    /// Moves every key of `dedup_log` into `dedup` inside the caller's transaction; the map is
    /// emptied when (and only if) that transaction commits.
    func fold(_ db: Database) throws {
        try db.execute(sql: """
            INSERT OR IGNORE INTO dedup(device_id, key, fingerprint, event_id, seen_ms)
                SELECT device_id, key, fingerprint, event_id, seen_ms FROM dedup_log ORDER BY device_id, key, fingerprint;
            DELETE FROM dedup_log;
            """)
    }

    /// Applies a transaction's changes once it has committed (run on the writer, before any
    /// other write), so the map never holds a key whose event was not stored.
    func apply(afterCommitOf db: Database, added: [Key: [Entry]], folded: Bool) {
        guard folded || !added.isEmpty else { return }
        db.afterNextTransaction { _ in
            self.entries.withLock { state in
                if folded { state = ([:], 0) }
                for (key, new) in added {
                    state.byKey[key, default: []].append(contentsOf: new)
                    state.count += new.count
                }
            }
        }
    }
}
