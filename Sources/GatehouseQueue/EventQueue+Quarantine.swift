import Foundation
import GRDB
import GatehouseCore

extension EventQueue {
    /// Keeps input that could not be mapped, cut to the configured size, and returns its id.
    /// Throws `QueueFullError` when the budget cannot take it even after evicting older quarantine.
    @discardableResult
    public func quarantine(_ record: QuarantineRecord, receivedAt: Timestamp? = nil) async throws -> Int64 {
        let receivedAt = receivedAt ?? clock.now
        try await ensureSpace()
        let sealed = try seal(record)
        let budget = settingsSnapshot().budget
        let result = try await mappingDiskFull { try await self.pool.write { db -> (Int64?, [Int: (count: Int64, bytes: Int64)]) in
            var ledger = try self.ledger(db)
            let id = try self.insertQuarantine(sealed, receivedAt: receivedAt, budget: budget, db: db, ledger: &ledger)
            try ledger.save(db, to: self)
            return (id, ledger.evictions)
        } }
        report(result.1)
        guard let id = result.0 else {
            throw QueueFullError(description: "disk budget of \(budget) bytes is full; quarantine entry of \(sealed.payload.count) bytes refused")
        }
        logQuarantined(sealed, id: id)
        return id
    }

    /// A quarantine record as it is written: payload (cut to the configured size) and full
    /// reason sealed, reason redacted. Sealing happens before the write transaction.
    struct SealedQuarantine {
        let record: QuarantineRecord
        let payload: Data
        let reasonSealed: Data
        let redactedReason: String
        let keyID: String
    }

    func seal(_ record: QuarantineRecord) throws -> SealedQuarantine {
        let maxPayload = settingsSnapshot().maxPayload
        return SealedQuarantine(
            record: record, payload: try sealer.seal(Data(record.payload.prefix(maxPayload))),
            reasonSealed: try sealer.seal(Data(record.reason.utf8)), redactedReason: ValueRedactor.redactText(record.reason),
            keyID: sealer.keyID)
    }

    /// Inserts a sealed record inside the caller's transaction (so that a driver's cursor can
    /// move in the same one); nil when the budget cannot take it even after evicting older quarantine.
    func insertQuarantine(
        _ sealed: SealedQuarantine, receivedAt: Timestamp, budget: Int64, db: Database, ledger: inout Ledger
    ) throws -> Int64? {
        let size = Int64(sealed.payload.count)
        guard try makeRoom(size, forRank: -1, budget: budget, db: db, ledger: &ledger) else { return nil }
        let record = sealed.record
        try db.execute(
            sql: """
                INSERT INTO quarantine(received_ms, device_id, driver, route, content_type, remote, reason, payload, payload_bytes, key_id, reason_sealed)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                receivedAt.milliseconds, record.deviceID, record.driver, record.route, record.contentType,
                record.remote, sealed.redactedReason, sealed.payload, record.payload.count, sealed.keyID, sealed.reasonSealed,
            ])
        ledger.quarantineBytes += size
        ledger.quarantined += 1
        return db.lastInsertedRowID
    }

    /// The log line names the redacted reason only: the full one may quote a plate.
    func logQuarantined(_ sealed: SealedQuarantine, id: Int64) {
        logger.notice(
            "quarantined input: \(sealed.redactedReason)",
            metadata: [
                "gatehouse.device": "\(sealed.record.deviceID ?? "-")", "gatehouse.driver": "\(sealed.record.driver)",
                "quarantine.id": "\(id)",
            ])
    }

    /// Newest first. `pendingOnly` hides entries that were replayed or discarded.
    public func quarantineEntries(limit: Int = 50, pendingOnly: Bool = false, deviceID: String? = nil) async throws -> [QuarantineEntry] {
        try await pool.read { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if pendingOnly { conditions.append("replayed_ms IS NULL AND discarded_ms IS NULL") }
            if let deviceID {
                conditions.append("device_id = ?")
                arguments += [deviceID]
            }
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            arguments += [limit]
            return try Row.fetchAll(db, sql: "SELECT * FROM quarantine \(filter) ORDER BY id DESC LIMIT ?", arguments: arguments)
                .map(self.entry)
        }
    }

    public func quarantineEntry(id: Int64) async throws -> QuarantineEntry? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM quarantine WHERE id = ?", arguments: [id]).map(self.entry)
        }
    }

    /// Marks an entry replayed with the ids of the events it became; the payload is kept for audit
    /// until the budget needs the room.
    public func markReplayed(id: Int64, eventIDs: [EventID], at time: Timestamp? = nil) async throws {
        let time = time ?? clock.now
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE quarantine SET replayed_ms = ?, replayed_events = ? WHERE id = ?",
                arguments: [time.milliseconds, eventIDs.map(\.description).joined(separator: ","), id])
        }
    }

    public struct DiscardRefused: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// An operator gives up on a waiting entry: who, when and why are recorded on the row, the
    /// sealed payload and full reason are erased (their bytes leave the budget), and the SHA-256
    /// of the payload, its size, source and redacted reason stay. Returns the entry as it is now.
    @discardableResult
    public func discardQuarantine(id: Int64, by user: String, reason: String, at time: Timestamp? = nil) async throws -> QuarantineEntry {
        let time = time ?? clock.now
        let why = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !why.isEmpty else { throw DiscardRefused(description: "a discard needs a reason") }
        guard let entry = try await quarantineEntry(id: id) else { throw DiscardRefused(description: "no quarantine entry \(id)") }
        guard entry.isWaiting else {
            throw DiscardRefused(description: "quarantine entry \(id) is not waiting (\(entry.discarded == nil ? "replayed" : "already discarded"))")
        }
        // The digest of what could be opened; an entry sealed under another key has none to give.
        let digest = entry.unreadable == nil ? PayloadSealer.digest(entry.payload) : nil
        try await pool.write { db in
            var ledger = try self.ledger(db)
            let stored = try Int64.fetchOne(db, sql: "SELECT length(payload) FROM quarantine WHERE id = ? AND discarded_ms IS NULL", arguments: [id]) ?? 0
            try db.execute(
                sql: """
                    UPDATE quarantine SET payload = X'', reason_sealed = NULL, payload_sha256 = ?,
                        discarded_ms = ?, discarded_by = ?, discard_reason = ?
                    WHERE id = ? AND discarded_ms IS NULL AND replayed_ms IS NULL
                    """,
                arguments: [digest, time.milliseconds, user, why, id])
            guard db.changesCount == 1 else { throw DiscardRefused(description: "quarantine entry \(id) changed meanwhile; not discarded") }
            ledger.quarantineBytes -= stored
            try ledger.save(db, to: self)
        }
        logger.notice(
            "quarantine entry \(id) discarded by \(user)",
            metadata: ["quarantine.id": "\(id)", "quarantine.sha256": "\(digest ?? "-")", "console.user": "\(user)"])
        return try await quarantineEntry(id: id) ?? entry
    }

    /// Opens the sealed payload and reason; an entry sealed under another key keeps the
    /// redacted reason and says why its payload cannot be read.
    func entry(_ row: Row) -> QuarantineEntry {
        let replayed: String? = row["replayed_events"]
        let stored: Data = row["payload"]
        let keyID: String? = row["key_id"]
        let redactedReason: String = row["reason"]
        var payload = stored
        var reason = redactedReason
        var unreadable: String?
        let discardedAt: Int64? = row["discarded_ms"]
        if let keyID, discardedAt == nil {
            do {
                payload = try sealer.open(stored, keyID: keyID)
                if let sealedReason: Data = row["reason_sealed"] {
                    reason = String(decoding: try sealer.open(sealedReason, keyID: keyID), as: UTF8.self)
                }
            } catch {
                payload = Data()
                unreadable = error.description
            }
        }
        var entry = QuarantineEntry(
            id: row["id"], receivedAt: Timestamp(milliseconds: row["received_ms"]), deviceID: row["device_id"],
            driver: row["driver"], route: row["route"], contentType: row["content_type"], remote: row["remote"],
            reason: reason, payloadBytes: row["payload_bytes"], payload: payload,
            replayedAt: (row["replayed_ms"] as Int64?).map(Timestamp.init(milliseconds:)),
            replayedEvents: replayed.map { $0.split(separator: ",").map(String.init) })
        entry.redactedReason = redactedReason
        entry.keyID = keyID
        entry.unreadable = unreadable
        if let discardedAt {
            entry.payload = Data()
            entry.discarded = QuarantineEntry.Discard(
                at: Timestamp(milliseconds: discardedAt), by: row["discarded_by"] ?? "", reason: row["discard_reason"] ?? "")
            entry.payloadSHA256 = row["payload_sha256"]
        }
        return entry
    }

    /// Seals entries written in clear by a version before sealing, once, when the queue opens.
    func sealLegacyQuarantine() throws {
        let sealer = self.sealer
        let count = try pool.write { db -> Int in
            let rows = try Row.fetchAll(db, sql: "SELECT id, reason, payload FROM quarantine WHERE key_id IS NULL")
            for row in rows {
                let reason: String = row["reason"]
                let payload: Data = row["payload"]
                try db.execute(
                    sql: "UPDATE quarantine SET payload = ?, reason_sealed = ?, reason = ?, key_id = ? WHERE id = ?",
                    arguments: [
                        try sealer.seal(payload), try sealer.seal(Data(reason.utf8)), ValueRedactor.redactText(reason),
                        sealer.keyID, row["id"] as Int64,
                    ])
            }
            return rows.count
        }
        if count > 0 {
            logger.notice("sealed \(count) quarantine entries kept in clear by an earlier version", metadata: ["quarantine.key": "\(sealer.keyID)"])
        }
    }
}
