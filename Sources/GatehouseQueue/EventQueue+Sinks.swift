import Foundation
import GRDB
import GatehouseCore

extension EventQueue {
    /// Makes the queue track exactly these sinks: new ones start at the oldest queued event,
    /// cursors of sinks no longer configured are dropped so they stop holding events back.
    public func registerSinks(_ names: [String]) async throws {
        let cursors = try await pool.write { db -> [String: [Int: Int64]] in
            let placeholders = names.map { _ in "?" }.joined(separator: ",")
            if names.isEmpty {
                try db.execute(sql: "DELETE FROM sink_cursors")
            } else {
                try db.execute(
                    sql: "DELETE FROM sink_cursors WHERE sink NOT IN (\(placeholders))",
                    arguments: StatementArguments(names))
            }
            for name in names {
                for priority in Priority.allCases {
                    try db.execute(
                        sql: "INSERT INTO sink_cursors(sink, priority, seq) VALUES (?, ?, 0) ON CONFLICT DO NOTHING",
                        arguments: [name, priority.rank])
                }
            }
            var cursors: [String: [Int: Int64]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT sink, priority, seq FROM sink_cursors") {
                cursors[row[0], default: [:]][row[1]] = row[2]
            }
            return cursors
        }
        sinkCursorsReplace(cursors)
        try await pruneDelivered()
    }

    /// The most bytes of event bodies `nextBatch` returns by default.
    public static let batchMaxBytes = 4 << 20

    /// The next events this sink has not delivered: alarms first, then access, then telemetry,
    /// each priority in insertion order. Bounded by count and bytes so memory never follows the backlog.
    /// `after` (highest seq per priority rank) skips events already read but not yet acknowledged,
    /// so a runner can read its next batch while the current one is being delivered.
    ///
    /// Read on the caller's thread: a reader of the pool is never held up by the writer (WAL),
    /// and an index range read costs less than the two thread hand-offs of GRDB's asynchronous
    /// read, which a sink paid up to three times per batch (see docs/benchmarks.md, "Thread
    /// hand-offs per alarm").
    public func nextBatch(
        sink: String, maxEvents: Int, maxBytes: Int = EventQueue.batchMaxBytes, after: [Int: Int64] = [:]
    ) throws -> [StoredEvent] {
        let cursor = sinkCursor(sink).merging(after, uniquingKeysWith: max)
        return try pool.read { db in
            var batch: [StoredEvent] = []
            var bytes = 0
            for priority in Priority.forwardingOrder {
                let remaining = maxEvents - batch.count
                guard remaining > 0, bytes < maxBytes else { break }
                let rows = try Row.fetchCursor(
                    db, sql: "SELECT seq, body FROM events WHERE priority = ? AND seq > ? ORDER BY seq LIMIT ?",
                    arguments: [priority.rank, cursor[priority.rank] ?? 0, remaining])
                while let row = try rows.next() {
                    let body: Data = row[1]
                    batch.append(StoredEvent(seq: row[0], priority: priority, body: body))
                    bytes += body.count
                    if bytes >= maxBytes { break }
                }
            }
            return batch
        }
    }

    /// Records that `sink`'s target acknowledged `events` (a prefix of what `nextBatch` gave),
    /// then deletes events that every sink has delivered.
    public func acknowledge(sink: String, _ events: [StoredEvent]) async throws {
        guard !events.isEmpty else { return }
        let highest = events.reduce(into: [Int: Int64]()) { $0[$1.priority.rank] = max($0[$1.priority.rank] ?? 0, $1.seq) }
        // The delivery is a fact before it is on disk: the cursor in memory moves first, so that a
        // full disk (which refuses the write) cannot make the sink send the same batch again and
        // again. Every write stores the whole cursor, so the next one that fits catches up; a
        // crash before then re-delivers once, a duplicate the centre drops by event id.
        sinkCursorsAdvance(sink: sink, to: highest)
        let ranks = Array(highest.keys)
        if owe(sink: sink, ranks: ranks, events: events.count) { return }
        try await recordAlone(sink: sink, ranks: ranks)
    }

    /// Records a delivery in a transaction of its own: the committer is not running (tools, tests,
    /// shutdown), or the disk is full.
    private func recordAlone(sink: String, ranks: [Int]) async throws {
        if diskState.withLock({ $0.fullSince == nil }) {
            do {
                try await pool.write { db in
                    var ledger = try self.ledger(db)
                    try self.recordDeliveries(sinks: [sink], ranks: Set(ranks), db: db, ledger: &ledger)
                    try ledger.save(db, to: self)
                }
                await compactAfterDiskFull()
                return
            } catch where Self.isDiskFull(error) {
                // Recorded in two steps below, so the cursor is kept even if the deletes find no room.
            }
        }
        let cursor = sinkCursor(sink)
        do {
            try await pool.write { db in try self.writeCursor(sink: sink, cursor, db: db) }
        } catch where Self.isDiskFull(error) {
            _ = noteDiskFull(error)
            return
        }
        do {
            try await pruneDelivered(ranks: ranks)
        } catch is QueueDiskFullError {
            // Deleted by a later acknowledgement once there is room; the delivery itself is recorded.
        }
    }

    // MARK: - Delivery records
    //
    // A delivery is a fact once the centre acknowledged it: the sink's cursor in memory moves at
    // once and the sink reads on from there. Writing it down (the cursor, and deleting what every
    // sink delivered) can wait: the group committer adds it to a commit once
    // `deliveryRecordEvents` are owed, or when `deliveryRecordSeconds` have passed, and at shutdown.
    // Each record then deletes whole leaves of events at once instead of a few rows from one leaf,
    // and most commits write no cursor, delete or free-list page. A crash before the record
    // re-delivers at most those events: duplicates the centre drops by event id, never a loss.
    // Until then the delivered events still count in the depth and the budget.

    /// Owed events that make the next commit write the delivery records.
    static let deliveryRecordEvents = 512
    /// How long a delivery record may wait for a commit.
    static let deliveryRecordSeconds: Double = 1

    static func deliveryRecordDue(_ owed: OwedDeliveries, now: Double, closing: Bool) -> Bool {
        guard !owed.isEmpty else { return false }
        return closing || owed.events >= deliveryRecordEvents || now - (owed.since ?? now) >= deliveryRecordSeconds
    }

    /// Writes what the committer still owes, each sink alone (after `run()` or a failed commit).
    func recordOwedDeliveries() async {
        let owed = pending.withLock { state -> OwedDeliveries in
            defer { state.owed = OwedDeliveries() }
            return state.owed
        }
        for sink in owed.sinks.sorted() {
            do {
                try await recordAlone(sink: sink, ranks: Array(owed.ranks))
            } catch {
                logger.warning("could not record a sink's delivery; it is sent again after a restart", metadata: ["gatehouse.sink": "\(sink)", "error": "\(error)"])
            }
        }
    }

    private func writeCursor(sink: String, _ cursor: [Int: Int64], db: Database) throws {
        let update = try db.cachedStatement(sql: "UPDATE sink_cursors SET seq = max(seq, ?) WHERE sink = ? AND priority = ?")
        for (rank, seq) in cursor { try update.execute(arguments: [seq, sink, rank]) }
    }

    /// Stores the in-memory cursors of `sinks` and deletes what every sink delivered in `ranks`,
    /// inside the caller's transaction.
    func recordDeliveries(sinks: Set<String>, ranks: Set<Int>, db: Database, ledger: inout Ledger) throws {
        for sink in sinks { try writeCursor(sink: sink, sinkCursor(sink), db: db) }
        try deleteDelivered(floors: floors(ranks: Array(ranks)), db: db, ledger: &ledger)
    }

    /// The slowest sink's cursor per rank: everything at or below it was delivered everywhere.
    private func floors(ranks: [Int]) -> [(Int, Int64)] {
        let all = sinkCursorsSnapshot()
        guard !all.isEmpty else { return [] }
        return ranks.map { rank in (rank, all.values.map { $0[rank] ?? 0 }.min() ?? 0) }
    }

    /// Deletes events at or below the slowest sink's cursor of their priority.
    func pruneDelivered(ranks: [Int] = Priority.allCases.map(\.rank)) async throws {
        let floors = floors(ranks: ranks)
        guard !floors.isEmpty else { return }
        try await mappingDiskFull {
            try await pool.write { db in
                var ledger = try self.ledger(db)
                try self.deleteDelivered(floors: floors, db: db, ledger: &ledger)
                try ledger.save(db, to: self)
            }
        }
        await compactAfterDiskFull()
    }

    private func deleteDelivered(floors: [(Int, Int64)], db: Database, ledger: inout Ledger) throws {
        for (rank, floor) in floors where floor > 0 {
            let row = try Row.fetchOne(
                db, sql: "SELECT COUNT(*), COALESCE(SUM(length(body)), 0) FROM events WHERE priority = ? AND seq <= ?",
                arguments: [rank, floor])
            let count: Int64 = row?[0] ?? 0
            guard count > 0 else { continue }
            let bytes: Int64 = row?[1] ?? 0
            try db.execute(sql: "DELETE FROM events WHERE priority = ? AND seq <= ?", arguments: [rank, floor])
            ledger.queuedEvents -= count
            ledger.queuedByRank[rank, default: 0] -= count
            ledger.queuedBytes -= bytes + count * Int64(Self.rowOverhead)
            ledger.deleted = true
        }
    }

    /// Events this sink has still to deliver. Cheap with any backlog (status lines, /readyz and
    /// start-up ask for it): per priority, from the queued counter and the first and last seq (index
    /// look-ups), counting rows only on the shorter side of the cursor, which is empty for the
    /// slowest sink (what it delivered is deleted) and for a sink whose centre is down.
    public func lag(sink: String) async throws -> Int64 {
        let cursor = sinkCursor(sink)
        let counters = counterValues()
        return try await pool.read { db in
            var total: Int64 = 0
            for priority in Priority.allCases {
                let rank = priority.rank
                let after = cursor[rank] ?? 0
                // Two queries: SQLite answers MIN or MAX alone from the index end, but both at once by a scan.
                guard
                    let low = try Int64.fetchOne(db, sql: "SELECT MIN(seq) FROM events WHERE priority = ?", arguments: [rank]),
                    let high = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM events WHERE priority = ?", arguments: [rank]),
                    after < high
                else { continue }
                let queued = counters[Counter.queued(rank)] ?? 0
                if after < low {
                    total += queued
                } else if high - after <= after - low {
                    total += try Int64.fetchOne(
                        db, sql: "SELECT COUNT(*) FROM events WHERE priority = ? AND seq > ?", arguments: [rank, after]) ?? 0
                } else {
                    total += queued - (try Int64.fetchOne(
                        db, sql: "SELECT COUNT(*) FROM events WHERE priority = ? AND seq <= ?", arguments: [rank, after]) ?? 0)
                }
            }
            return total
        }
    }
}
