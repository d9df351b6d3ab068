import GRDB
import GatehouseCore
import Synchronization

/// The queue's running totals (depth and bytes per priority, quarantine, duplicates, evictions)
/// and its sequence, held in memory and written to `counters` only when a commit needs them there.
///
/// A commit that only inserts events (every group commit of a busy box) changes nothing but the
/// queued figures and the sequence, and both can be rebuilt from the rows: `counters` holds
/// `last_seq`, the highest sequence number those figures include, and at open every event above it
/// is counted back in. So such a commit writes no counters page. Any commit that deletes (deliveries,
/// evictions), touches the quarantine or counts a duplicate or collision writes them, and so does an
/// insert-only commit once `persistInterval` has passed (bounding what open has to count) and the
/// shutdown. A crash therefore loses no figure: the rebuilt totals are exact.
///
/// The sequence (`events.seq`, the unit sink cursors and the console's feed count in) is handed out
/// here instead of by AUTOINCREMENT, whose `sqlite_sequence` row was another page in every commit.
/// It never goes back: at open it continues above `last_seq`, the newest event and every sink
/// cursor, so a sink never sees a smaller number than one it delivered, even after the newest
/// events were deleted.
extension EventQueue {
    /// How long an insert-only commit may leave the stored counters behind (open counts the events since).
    static let persistInterval: Double = 10

    struct Totals {
        /// Every counter as of the last commit (`Counter` names).
        var values: [String: Int64] = [:]
        /// The highest sequence number given to a committed event.
        var lastSeq: Int64 = 0
        /// What `counters` holds, `Counter.lastSeq` included.
        var stored: [String: Int64] = [:]
        var storedAt: Double = 0
        /// The writer connection's `PRAGMA data_version` when these totals were taken from the
        /// file: it changes when another process commits (a `gatehouse quarantine` tool beside the
        /// daemon), whose rows and counters the totals in memory do not know.
        var dataVersion: Int64 = -1
    }

    /// Running totals taken from memory at the start of a write transaction; `save` hands them back
    /// once the transaction has committed (and writes them to `counters` when needed).
    struct Ledger {
        var queuedEvents: Int64
        var queuedBytes: Int64
        var quarantineBytes: Int64
        var duplicates: Int64
        var collisions: Int64
        var quarantined: Int64
        /// Queued events per priority rank, so a sink's lag needs no count over the backlog.
        var queuedByRank: [Int: Int64] = [:]
        var evictions: [Int: (count: Int64, bytes: Int64)] = [:]  // rank → ; -1 is quarantine
        /// Dedup keys stored in this transaction, seen by its later events and added to
        /// `recentDedup` once it commits.
        var newDedup: [RecentDedupKeys.Key: [RecentDedupKeys.Entry]] = [:]
        /// The last sequence number handed out (in this transaction or before).
        private(set) var lastSeq: Int64
        /// Events were deleted: the stored counters must follow in this transaction, because open
        /// only adds what lies above `last_seq`.
        var deleted = false
        private let base: Totals

        init(_ totals: Totals) {
            base = totals
            let values = totals.values
            lastSeq = totals.lastSeq
            queuedEvents = values[Counter.queuedEvents] ?? 0
            queuedBytes = values[Counter.queuedBytes] ?? 0
            quarantineBytes = values[Counter.quarantineBytes] ?? 0
            duplicates = values[Counter.duplicates] ?? 0
            collisions = values[Counter.dedupCollisions] ?? 0
            quarantined = values[Counter.quarantined] ?? 0
            for priority in Priority.allCases { queuedByRank[priority.rank] = values[Counter.queued(priority.rank)] ?? 0 }
        }

        var usedBytes: Int64 { queuedBytes + quarantineBytes }

        mutating func nextSeq() -> Int64 {
            lastSeq += 1
            return lastSeq
        }

        var values: [String: Int64] {
            var values = base.values
            values[Counter.queuedEvents] = queuedEvents
            values[Counter.queuedBytes] = queuedBytes
            values[Counter.quarantineBytes] = quarantineBytes
            values[Counter.duplicates] = duplicates
            values[Counter.dedupCollisions] = collisions
            values[Counter.quarantined] = quarantined
            for (rank, count) in queuedByRank { values[Counter.queued(rank)] = count }
            for (rank, eviction) in evictions {
                let name = rank < 0 ? Counter.evictedQuarantine : Counter.evicted(rank)
                values[name, default: 0] += eviction.count
            }
            return values
        }

        /// Whether this transaction changed a figure that cannot be rebuilt from the rows at open.
        var mustStore: Bool {
            deleted || !evictions.isEmpty || quarantineBytes != base.values[Counter.quarantineBytes] ?? 0
                || quarantined != base.values[Counter.quarantined] ?? 0 || duplicates != base.values[Counter.duplicates] ?? 0
                || collisions != base.values[Counter.dedupCollisions] ?? 0
        }

        /// Writes the counters that changed since they were last stored, when this transaction must
        /// or `persistInterval` has passed, and hands the totals to `queue` once the transaction commits.
        func save(_ db: Database, to queue: EventQueue, force: Bool = false) throws {
            let values = values
            let now = queue.clock.now.seconds
            let store = force || mustStore || now - base.storedAt >= EventQueue.persistInterval
            var all = values
            all[Counter.lastSeq] = lastSeq
            if store { try EventQueue.writeCounters(all, over: base.stored, db) }
            let stored = all
            let lastSeq = lastSeq
            db.afterNextTransaction { _ in
                queue.totals.withLock { totals in
                    totals.values = values
                    totals.lastSeq = lastSeq
                    if store {
                        totals.stored = stored
                        totals.storedAt = now
                    }
                }
            }
        }
    }

    /// The running totals for a write transaction on `db` (the writer). When another process
    /// committed since this one's last transaction, they are first read again from the file, with
    /// the recent dedup keys: its events are counted and numbered, and none gets a sequence
    /// number already taken.
    func ledger(_ db: Database) throws -> Ledger {
        let version = try Int64.fetchOne(db, sql: "PRAGMA data_version") ?? 0
        if totals.withLock({ $0.dataVersion != version }) {
            var loaded = try Self.loadTotals(db)
            loaded.dataVersion = version
            try recentDedup.load(db)
            totals.withLock { $0 = loaded }
        }
        return Ledger(totals.withLock { $0 })
    }

    /// The counters as committed.
    func counterValues() -> [String: Int64] { totals.withLock { $0.values } }

    /// Reads `counters` at open, counts back in the events stored above `last_seq` since the counters
    /// were last written (a crash, or insert-only commits), and stores the result when it differs.
    static func loadTotals(_ db: Database) throws -> Totals {
        var stored: [String: Int64] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT name, value FROM counters") { stored[row[0]] = row[1] }
        var values = stored
        let mark = stored[Counter.lastSeq] ?? 0
        values[Counter.lastSeq] = nil
        let since = try Row.fetchAll(
            db, sql: "SELECT priority, COUNT(*), COALESCE(SUM(length(body)), 0) FROM events WHERE seq > ? GROUP BY priority",
            arguments: [mark])
        for row in since {
            let rank: Int = row[0]
            let count: Int64 = row[1]
            let bytes: Int64 = row[2]
            values[Counter.queuedEvents, default: 0] += count
            values[Counter.queued(rank), default: 0] += count
            values[Counter.queuedBytes, default: 0] += bytes + count * Int64(rowOverhead)
        }
        let newest = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM events") ?? 0
        let delivered = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM sink_cursors") ?? 0
        let lastSeq = max(mark, newest, delivered)
        var all = values
        all[Counter.lastSeq] = lastSeq
        try writeCounters(all, over: stored, db)
        return Totals(values: values, lastSeq: lastSeq, stored: all, storedAt: 0)
    }

    /// Writes the counters whose value differs from what `counters` holds.
    static func writeCounters(_ values: [String: Int64], over stored: [String: Int64], _ db: Database) throws {
        let statement = try db.cachedStatement(
            sql: "INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value")
        for (name, value) in values where stored[name] != value { try statement.execute(arguments: [name, value]) }
    }

    /// Writes the totals if an insert-only commit left them behind (at shutdown).
    func storeTotals() async throws {
        guard totals.withLock({ totals in totals.stored[Counter.lastSeq] != totals.lastSeq }) else { return }
        try await pool.write { db in
            try self.ledger(db).save(db, to: self, force: true)
        }
    }
}
