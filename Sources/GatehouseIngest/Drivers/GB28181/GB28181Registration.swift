import Foundation
import GatehouseCore

/// One channel (camera, alarm input) of a device, from its Catalog and catalog notifications.
struct GB28181Channel: Codable, Sendable, Equatable {
    var name: String
    /// `ON`, `OFF`, `VLOST` (video lost) or `DEFECT` (faulty); nil until the device says.
    var status: String?
}

/// What survives a gateway restart of one device's registration (the device's cursor in the
/// queue): devices keep sending keepalives without registering again until their registration
/// runs out, so a restart must neither refuse them nor announce them online a second time.
struct GB28181SavedRegistration: Codable, Sendable, Equatable {
    var registered: Bool
    var online: Bool
    var expiresAt: Timestamp?
    var transport: String
    /// The address the device registered from (MESSAGEs must come from its IP) and where it spoke last.
    var registeredHost: String?
    var host: String?
    var port: Int?
    var utf8: Bool
    var channels: [String: GB28181Channel]

    static let prefix = "gb28181-registration:"

    var encoded: String {
        let data = (try? JSONEncoder().encode(self)) ?? Data()
        return Self.prefix + String(decoding: data, as: UTF8.self)
    }

    static func decode(_ cursor: String?) -> GB28181SavedRegistration? {
        guard let cursor, cursor.hasPrefix(prefix) else { return nil }
        return try? JSONDecoder().decode(GB28181SavedRegistration.self, from: Data(cursor.dropFirst(prefix.count).utf8))
    }
}

/// Answers already sent to UDP requests, by transaction (top Via branch, Call-ID, CSeq): a
/// retransmission gets the same answer again and is never handled twice (RFC 3261 §17.2.2; a
/// device retransmits for up to 32 s, so entries live that long). Bounded: a flood forgets the oldest.
struct GB28181TransactionCache {
    enum Entry {
        /// Being handled (an alarm waits for the queue commit): retransmissions wait for its answer.
        case inProgress(since: Timestamp, waiting: [@Sendable ([UInt8]) -> Void])
        case answered([UInt8], at: Timestamp)
        var time: Timestamp {
            switch self {
            case .inProgress(let t, _), .answered(_, let t): t
            }
        }
    }

    static let lifetimeSeconds = 32.0
    static let capacity = 8192

    private(set) var entries: [String: Entry] = [:]

    static func key(_ message: SIPMessage) -> String? {
        guard let via = message.header("via"), let branch = SIPMessage.parameter("branch", in: via),
            let callID = message.header("call-id"), let cseq = message.header("cseq")
        else { return nil }
        return "\(branch) \(callID) \(cseq)"
    }

    /// Registers a new transaction and returns true; false when `key` is a retransmission: then
    /// `send` gets the answer, at once when there is one, else when the first is answered.
    mutating func begin(_ key: String, now: Timestamp, send: @escaping @Sendable ([UInt8]) -> Void) -> Bool {
        if let entry = entries[key], now.seconds - entry.time.seconds <= Self.lifetimeSeconds {
            switch entry {
            case .answered(let bytes, _): send(bytes)
            case .inProgress(let since, let waiting): entries[key] = .inProgress(since: since, waiting: waiting + [send])
            }
            return false
        }
        if entries.count >= Self.capacity {
            entries = entries.filter { now.seconds - $0.value.time.seconds <= Self.lifetimeSeconds }
            if entries.count >= Self.capacity {
                let keep = entries.sorted { $0.value.time > $1.value.time }.prefix(Self.capacity / 2)
                entries = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
            }
        }
        entries[key] = .inProgress(since: now, waiting: [])
        return true
    }

    /// Keeps the first final answer of a transaction being handled; returns the retransmissions waiting for it.
    mutating func answered(_ key: String, bytes: [UInt8], now: Timestamp) -> [@Sendable ([UInt8]) -> Void] {
        guard case .inProgress(_, let waiting) = entries[key] else { return [] }
        entries[key] = .answered(bytes, at: now)
        return waiting
    }

    /// A transaction handled without an answer (an alarm the queue refused): its retransmission is handled anew.
    mutating func end(_ key: String) {
        if case .inProgress = entries[key] { entries[key] = nil }
    }
}
