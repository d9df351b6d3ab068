import Foundation
extension CentralReceiver {
    /// How the receiver answers, switchable while it runs.
    public enum Mode: Sendable, Equatable {
        /// Records every event and answers 200.
        case accept
        /// Answers 503 with `Retry-After: 1`, recording nothing: the central store is down.
        case unavailable
        /// Refuses, with `status`, any batch that holds one of `ids`, recording nothing of it.
        case reject(ids: Set<String>, status: Int = 400)
    }

    /// What the receiver has seen so far.
    public struct Snapshot: Sendable {
        /// Event ids received at least once.
        public var uniqueIDs: Set<String>
        public var uniqueCount: Int { uniqueIDs.count }
        /// Events accepted, counting repeats.
        public var totalReceived: Int
        /// Events accepted more than once (`totalReceived - uniqueCount`).
        public var duplicateCount: Int { totalReceived - uniqueCount }
        /// Ids in the order they were accepted, repeats included.
        public var arrivalOrder: [String]
        /// How often each id was accepted.
        public var counts: [String: Int]
        /// The latest JSON text received per id (empty when bodies are not kept).
        public var bodies: [String: String]
        /// When each id was first accepted (only while bodies are kept): benchmarks measure
        /// delivery delay from it.
        public var firstArrivedAt: [String: Date] = [:]
        /// Requests answered, whatever the answer.
        public var requests: Int
        /// Requests answered 200.
        public var acceptedRequests: Int
        /// Requests refused with 401 (bad bearer token or signature).
        public var unauthorizedRequests: Int
        /// The idempotency header of the latest accepted request.
        public var lastIdempotencyKey: String?
        /// The `Content-Encoding` of the latest accepted request (`gzip` or nil).
        public var lastContentEncoding: String?
    }

    /// Cheap figures for benchmarks that poll while a large backlog drains (no copies of ids).
    public struct Progress: Sendable {
        public var uniqueCount: Int
        public var totalReceived: Int
        /// When the first event with priority alarm arrived.
        public var firstAlarmAt: Date?
    }

    struct State {
        var mode: Mode = .accept
        var counts: [String: Int] = [:]
        var arrivalOrder: [String] = []
        var bodies: [String: String] = [:]
        var totalReceived = 0
        var requests = 0
        var acceptedRequests = 0
        var unauthorizedRequests = 0
        var lastIdempotencyKey: String?
        var lastContentEncoding: String?
        var firstAlarmAt: Date?
        var firstArrivedAt: [String: Date] = [:]

        var snapshot: Snapshot {
            var snapshot = Snapshot(
                uniqueIDs: Set(counts.keys), totalReceived: totalReceived, arrivalOrder: arrivalOrder, counts: counts,
                bodies: bodies, requests: requests, acceptedRequests: acceptedRequests,
                unauthorizedRequests: unauthorizedRequests, lastIdempotencyKey: lastIdempotencyKey,
                lastContentEncoding: lastContentEncoding)
            snapshot.firstArrivedAt = firstArrivedAt
            return snapshot
        }
    }
}
