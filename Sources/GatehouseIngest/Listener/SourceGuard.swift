import Foundation
import GatehouseCore
import Hummingbird
import Synchronization

/// Listener-wide checks before any route runs: the source allow-list and a per-source
/// token-bucket rate limit, so one flooding device cannot starve the others.
public final class SourceGuard: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: Double
    }

    private struct State {
        var allowFrom: [AddressRange]
        var ratePerSecond: Double
        var burst: Double
        var buckets: [String: Bucket] = [:]
        var lastSweep: Double?

        /// Forgets sources whose bucket has refilled to the burst: such a bucket is the same as none,
        /// so forgetting is exact, and the table holds only sources heard from within about one
        /// refill time (an NVR or relay behind one address is one entry). Sweeps at most once per
        /// refill time, so a request costs O(1) on average.
        mutating func forgetIdle(now: Double) {
            let refill = max(1, burst / ratePerSecond)
            if let lastSweep, now - lastSweep < refill { return }
            lastSweep = now
            buckets = buckets.filter { $0.value.tokens + (now - $0.value.updated) * ratePerSecond < burst }
        }
    }

    private let state: Mutex<State>
    /// Refills the buckets; the daemon's one clock.
    private let clock: any TimerClock

    public init(config: IngestListenerConfig, clock: any TimerClock) {
        self.clock = clock
        state = Mutex(State(allowFrom: config.allowFrom, ratePerSecond: config.rateLimitPerSecond, burst: Double(config.rateLimitBurst)))
    }

    public func update(config: IngestListenerConfig) {
        state.withLock {
            $0.allowFrom = config.allowFrom
            $0.ratePerSecond = config.rateLimitPerSecond
            $0.burst = Double(config.rateLimitBurst)
        }
    }

    /// Sources with a bucket in the table (tests).
    var trackedSources: Int { state.withLock { $0.buckets.count } }

    /// Nil when the request may proceed.
    public func check(_ address: String?, now: Double? = nil) -> Rejection? {
        let now = now ?? clock.now.seconds
        return state.withLock { s in
            guard s.allowFrom.admits(address) else {
                return Rejection(.forbidden, "source-not-allowed", "source address \(address ?? "unknown") is not in ingest.allow_from")
            }
            guard s.ratePerSecond > 0, let address else { return nil }
            var bucket = s.buckets[address] ?? Bucket(tokens: s.burst, updated: now)
            bucket.tokens = min(s.burst, bucket.tokens + (now - bucket.updated) * s.ratePerSecond)
            bucket.updated = now
            defer {
                s.buckets[address] = bucket
                s.forgetIdle(now: now)
            }
            guard bucket.tokens >= 1 else {
                let wait = Int(((1 - bucket.tokens) / s.ratePerSecond).rounded(.up))
                return Rejection(
                    .tooManyRequests, "rate-limited",
                    "more than \(Int(s.ratePerSecond)) requests/s from \(address); slow down", retryAfterSeconds: max(1, wait))
            }
            bucket.tokens -= 1
            return nil
        }
    }
}

/// Runs `SourceGuard` in front of every route.
struct SourceGuardMiddleware: RouterMiddleware {
    typealias Context = IngestRequestContext
    let guard_: SourceGuard

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let rejection = guard_.check(context.remoteIP) { return rejection.response }
        return try await next(request, context)
    }
}
