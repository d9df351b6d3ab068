import Foundation
import GRDB
import GatehouseCore

extension EventQueue {
    /// Keeps input that could not be mapped, cut to the configured size, and returns its id.
    /// Throws `QueueFullError` when the budget cannot take it even after evicting older quarantine.
    @discardableResult
    public func quarantine(_ record: QuarantineRecord, receivedAt: Timestamp = .now) async throws -> Int64 {
        let (budget, _) = settingsSnapshot()
        let result = try await pool.write { db -> (Int64?, [Int: (count: Int64, bytes: Int64)]) in
            var ledger = try Ledger(db)
            guard let id = try self.storeQuarantine(record, receivedAt: receivedAt, budget: budget, db: db, ledger: &ledger) else {
                return (nil, [:])
            }
            try ledger.save(db)
            return (id, ledger.evictions)
        }
        report(result.1)
        guard let id = result.0 else {
            throw QueueFullError(description: "disk budget of \(budget) bytes is full; quarantine entry of \(record.payload.count) bytes refused")
        }
        logQuarantined([record])
        return id
    }

    /// Writes one entry inside the caller's transaction, evicting older quarantine if the budget
    /// needs it; nil when it does not fit.
    func storeQuarantine(
        _ record: QuarantineRecord, receivedAt: Timestamp, budget: Int64, db: Database, ledger: inout Ledger
    ) throws -> Int64? {
        let payload = record.payload.prefix(settingsSnapshot().maxPayload)
        let size = Int64(payload.count)
        guard try makeRoom(size, forRank: -1, budget: budget, db: db, ledger: &ledger) else { return nil }
        try db.execute(
            sql: """
                INSERT INTO quarantine(received_ms, device_id, driver, route, content_type, remote, reason, payload, payload_bytes)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                receivedAt.milliseconds, record.deviceID, record.driver, record.route, record.contentType,
                record.remote, record.reason, Data(payload), record.payload.count,
            ])
        ledger.quarantineBytes += size
        ledger.quarantined += 1
        return db.lastInsertedRowID
    }

    func logQuarantined(_ records: [QuarantineRecord]) {
        for record in records {
            logger.notice(
                "quarantined input: \(record.reason)",
                metadata: ["gatehouse.device": "\(record.deviceID ?? "-")", "gatehouse.driver": "\(record.driver)"])
        }
    }

    /// Newest first. `pendingOnly` hides entries that were replayed.
    public func quarantineEntries(limit: Int = 50, pendingOnly: Bool = false, deviceID: String? = nil) async throws -> [QuarantineEntry] {
        try await pool.read { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if pendingOnly { conditions.append("replayed_ms IS NULL") }
            if let deviceID {
                conditions.append("device_id = ?")
                arguments += [deviceID]
            }
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            arguments += [limit]
            return try Row.fetchAll(db, sql: "SELECT * FROM quarantine \(filter) ORDER BY id DESC LIMIT ?", arguments: arguments)
                .map(Self.entry)
        }
    }

    public func quarantineEntry(id: Int64) async throws -> QuarantineEntry? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM quarantine WHERE id = ?", arguments: [id]).map(Self.entry)
        }
    }

    /// Marks an entry replayed with the ids of the events it became; the payload is kept for audit
    /// until the budget needs the room.
    public func markReplayed(id: Int64, eventIDs: [EventID], at time: Timestamp = .now) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE quarantine SET replayed_ms = ?, replayed_events = ? WHERE id = ?",
                arguments: [time.milliseconds, eventIDs.map(\.description).joined(separator: ","), id])
        }
    }

    static func entry(_ row: Row) -> QuarantineEntry {
        let replayed: String? = row["replayed_events"]
        return QuarantineEntry(
            id: row["id"], receivedAt: Timestamp(milliseconds: row["received_ms"]), deviceID: row["device_id"],
            driver: row["driver"], route: row["route"], contentType: row["content_type"], remote: row["remote"],
            reason: row["reason"], payloadBytes: row["payload_bytes"], payload: row["payload"],
            replayedAt: (row["replayed_ms"] as Int64?).map(Timestamp.init(milliseconds:)),
            replayedEvents: replayed.map { $0.split(separator: ",").map(String.init) })
    }
}
