import Foundation
import GatehouseCore
import GRDB

/// What the console's event search asks of the events still in the queue.
public struct EventFilter: Sendable, Equatable {
    public var kind: String?
    public var deviceID: String?
    /// Received at or after / before, gateway clock.
    public var from: Timestamp?
    public var until: Timestamp?
    /// Only events queued after this sequence number (the live feed's "since last poll").
    public var afterSeq: Int64?
    public var limit: Int

    public init(kind: String? = nil, deviceID: String? = nil, from: Timestamp? = nil, until: Timestamp? = nil, afterSeq: Int64? = nil, limit: Int = 100) {
        self.kind = kind
        self.deviceID = deviceID
        self.from = from
        self.until = until
        self.afterSeq = afterSeq
        self.limit = limit
    }
}

extension EventQueue {
    /// Newest first. Bodies are as stored: the privacy policy was applied before they were written.
    public func browse(_ filter: EventFilter) async throws -> [StoredEvent] {
        try await pool.read { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let deviceID = filter.deviceID {
                conditions.append("device_id = ?")
                arguments += [deviceID]
            }
            if let from = filter.from {
                conditions.append("received_ms >= ?")
                arguments += [from.milliseconds]
            }
            if let until = filter.until {
                conditions.append("received_ms < ?")
                arguments += [until.milliseconds]
            }
            if let afterSeq = filter.afterSeq {
                conditions.append("seq > ?")
                arguments += [afterSeq]
            }
            if let kind = filter.kind {
                // The body is JSON text in a BLOB; CAST keeps SQLite from reading it as JSONB.
                conditions.append("json_extract(CAST(body AS TEXT), '$.kind') = ?")
                arguments += [kind]
            }
            let filterSQL = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            arguments += [max(1, min(filter.limit, 1000))]
            return try Row.fetchAll(db, sql: "SELECT seq, priority, body FROM events \(filterSQL) ORDER BY seq DESC LIMIT ?", arguments: arguments)
                .map { row in
                    let rank: Int = row["priority"]
                    return StoredEvent(seq: row["seq"], priority: Priority(rank: rank) ?? .telemetry, body: row["body"])
                }
        }
    }
}
