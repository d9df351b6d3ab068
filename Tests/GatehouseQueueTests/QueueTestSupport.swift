import Foundation
@testable import GatehouseCore
@testable import GatehouseQueue
import Logging
import Testing

let eventIDs = EventIDGenerator()

/// One event; `padding` adds that many characters in an attribute so bodies have a known size.
func makeEvent(
    _ kind: EventKind = .accessGranted, device: String = "door-1", dedupKey: String? = nil,
    priority: Priority? = nil, padding: Int = 0, receivedAt: Timestamp = .now, fingerprint: String? = nil
) -> Event {
    Event(
        id: eventIDs.next(), kind: kind, occurredAt: receivedAt, receivedAt: receivedAt, site: "s",
        device: DeviceRef(id: device, vendor: "v", type: .doorController), priority: priority,
        attributes: padding > 0 ? ["pad": .string(String(repeating: "x", count: padding))] : nil,
        source: Source(driver: "test", dedupKey: dedupKey, fingerprint: fingerprint))
}

func isRefused(_ outcome: AppendOutcome) -> Bool {
    if case .refused = outcome { return true }
    return false
}

/// The id of a stored event's JSON.
func storedID(_ event: StoredEvent) throws -> EventID {
    try EventCoding.decode(event.body).id
}

extension EventQueue {
    /// Everything `sink` has not delivered, in forwarding order.
    func everything(sink: String) async throws -> [StoredEvent] {
        try nextBatch(sink: sink, maxEvents: 1_000_000, maxBytes: .max)
    }

    /// Bytes the budget should be charged for what is actually stored (events and quarantine).
    func recomputedUsage(sink: String = "__audit__") async throws -> Int64 {
        let events = try await everything(sink: sink)
        let quarantine = try await quarantineEntries(limit: 1_000_000)
        return events.reduce(Int64(0)) { $0 + Int64($1.body.count + EventQueue.rowOverhead) }
            + quarantine.reduce(Int64(0)) { $0 + Int64($1.payload.count + ($1.keyID == nil ? 0 : PayloadSealer.overhead)) }
    }
}
