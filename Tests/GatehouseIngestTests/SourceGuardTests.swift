import Foundation
import Testing

@testable import GatehouseCore
@testable import GatehouseIngest

/// The per-source token bucket and allow-list, driven by an injected clock so that no
/// assertion depends on how fast the machine runs the requests.
@Suite("source guard")
struct SourceGuardTests {
    static func ingest(rate: Double, burst: Int, allowFrom: [String] = []) -> IngestListenerConfig {
        IngestListenerConfig(
            host: "127.0.0.1", port: 0, maxBodyBytes: 1 << 20, idleTimeoutSeconds: 30, requestTimeoutSeconds: 10,
            allowFrom: allowFrom.compactMap(AddressRange.init), rateLimitPerSecond: rate, rateLimitBurst: burst)
    }

    @Test("a burst is admitted, the next request gets 429 with Retry-After, and the bucket refills at the rate")
    func bucketDrainsAndRefills() throws {
        let guard_ = SourceGuard(config: Self.ingest(rate: 2, burst: 3), clock: MachineClock())
        let t0 = 1_000_000.0
        for _ in 0..<3 { #expect(guard_.check("10.0.0.7", now: t0) == nil) }
        let rejection = try #require(guard_.check("10.0.0.7", now: t0))
        #expect(rejection.status == .tooManyRequests && rejection.code == "rate-limited")
        #expect(rejection.retryAfterSeconds == 1)
        // Another source has its own bucket.
        #expect(guard_.check("10.0.0.8", now: t0) == nil)
        // Half a second at 2/s is one token: one request, then refused again.
        #expect(guard_.check("10.0.0.7", now: t0 + 0.5) == nil)
        #expect(guard_.check("10.0.0.7", now: t0 + 0.5) != nil)
        // A long pause refills only up to the burst.
        for _ in 0..<3 { #expect(guard_.check("10.0.0.7", now: t0 + 3600) == nil) }
        #expect(guard_.check("10.0.0.7", now: t0 + 3600) != nil)
    }

    @Test("sources idle until their bucket refilled are forgotten, and a drained one is still limited")
    func idleSourcesForgotten() throws {
        let guard_ = SourceGuard(config: Self.ingest(rate: 1, burst: 2), clock: ManualClock())
        for n in 0..<1000 { #expect(guard_.check("10.1.\(n / 250).\(n % 250)", now: 0) == nil) }
        #expect(guard_.trackedSources == 1000)
        // 10.9.9.9 drains its bucket just before the sweep.
        #expect(guard_.check("10.9.9.9", now: 2.9) == nil)
        #expect(guard_.check("10.9.9.9", now: 2.9) == nil)
        #expect(guard_.check("10.9.9.9", now: 2.9) != nil)
        // Three seconds later every one-request source has refilled to the burst: forgotten.
        #expect(guard_.check("10.2.0.1", now: 3) == nil)
        #expect(guard_.trackedSources == 2)
        #expect(guard_.check("10.9.9.9", now: 3) != nil, "forgetting never lets a drained source through early")
        #expect(guard_.check("10.1.0.0", now: 3) == nil)
        #expect(guard_.check("10.1.0.0", now: 3) == nil)
        #expect(guard_.check("10.1.0.0", now: 3) != nil, "a forgotten source comes back with exactly a full burst")
    }

    @Test("Retry-After says how long one token takes at a slow rate")
    func retryAfterAtASlowRate() throws {
        // One token per 8 s (a power of two, so the arithmetic is exact).
        let guard_ = SourceGuard(config: Self.ingest(rate: 0.125, burst: 1), clock: MachineClock())
        #expect(guard_.check("10.0.0.7", now: 50) == nil)
        #expect(try #require(guard_.check("10.0.0.7", now: 50)).retryAfterSeconds == 8)
        #expect(try #require(guard_.check("10.0.0.7", now: 54)).retryAfterSeconds == 4)
        #expect(guard_.check("10.0.0.7", now: 58) == nil)
    }

    @Test("rate 0 turns the limit off; the allow-list refuses other sources with 403")
    func offAndAllowList() throws {
        let open = SourceGuard(config: Self.ingest(rate: 0, burst: 1), clock: MachineClock())
        for _ in 0..<100 { #expect(open.check("10.0.0.7", now: 0) == nil) }
        let guarded = SourceGuard(config: Self.ingest(rate: 0, burst: 1, allowFrom: ["192.168.10.0/24"]), clock: MachineClock())
        #expect(guarded.check("192.168.10.21", now: 0) == nil)
        #expect(try #require(guarded.check("10.0.0.7", now: 0)).code == "source-not-allowed")
    }

    @Test("a reload to a smaller burst applies to sources already seen")
    func updateApplies() {
        let guard_ = SourceGuard(config: Self.ingest(rate: 1, burst: 100), clock: MachineClock())
        #expect(guard_.check("10.0.0.7", now: 0) == nil)
        guard_.update(config: Self.ingest(rate: 1, burst: 2))
        #expect(guard_.check("10.0.0.7", now: 0) == nil)
        #expect(guard_.check("10.0.0.7", now: 0) == nil)
        #expect(guard_.check("10.0.0.7", now: 0) != nil)
    }
}
