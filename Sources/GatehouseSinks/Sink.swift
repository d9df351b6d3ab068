import Crypto
import Foundation
import GatehouseQueue

/// Something that forwards batches of queued events to a target; it only encodes and sends,
/// while `SinkRunner` owns the cursor, batching, retries and statistics.
public protocol Sink: Sendable {
    /// The configured sink name; the queue keeps one cursor per name.
    var name: String { get }
    /// Encodes and sends one batch. Never throws: every outcome is a `DeliveryResult`.
    func send(_ batch: SinkBatch) async -> DeliveryResult
    /// Releases connections and file handles; called once, after the last `send`.
    func shutdown() async
}

/// The events of one delivery attempt and the key the target can use to drop a repeated attempt.
public struct SinkBatch: Sendable {
    public let events: [StoredEvent]
    /// Stable across retries of the same events (it is derived from their sequence numbers).
    public let idempotencyKey: String

    public init(events: [StoredEvent], idempotencyKey: String) {
        self.events = events
        self.idempotencyKey = idempotencyKey
    }

    /// A batch keyed `<sink>-<first seq>-<count>-<digest of all seqs>`: readable in a log,
    /// and distinct for different event sets even when their first seq and count agree.
    public init(sink: String, events: [StoredEvent]) {
        var hasher = SHA256()
        for event in events {
            withUnsafeBytes(of: event.seq.bigEndian) { hasher.update(bufferPointer: $0) }
        }
        let digest = hasher.finalize().prefix(8).map { String(format: "%02x", $0) }.joined()
        self.init(events: events, idempotencyKey: "\(sink)-\(events.first?.seq ?? 0)-\(events.count)-\(digest)")
    }
}

/// The closed set of outcomes of one send.
public enum DeliveryResult: Sendable, Equatable {
    /// The target acknowledged the whole batch; the cursor may advance past it.
    case delivered
    /// Try again later (target down, overloaded, network error); `after` is the target's own hint in seconds.
    case retryable(after: Double?, reason: String)
    /// The target refuses this content; retrying it unchanged cannot help.
    case rejected(reason: String)
    /// The sink cannot work as configured (bad credentials, wrong URL); an operator must act.
    case fatal(reason: String)
}
