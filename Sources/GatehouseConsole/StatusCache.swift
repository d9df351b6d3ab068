import GatehouseCore
import GatehouseQueue
import Synchronization

/// What every browser asks for within a second is read once: ten open live pages then cost one
/// status report (queue figures, every sink's lag) and one read of each live event feed a
/// second, not one per poll. Keyed, for feeds with different filters; on the console's clock.
final class SharedForASecond<Value: Sendable>: Sendable {
    private let cached = Mutex<[String: (at: Timestamp, value: Value)]>([:])
    private let clock: any TimerClock
    static var maxAgeMilliseconds: Int64 { 1000 }
    /// Distinct keys kept at most (feeds are keyed by their filter, which a visitor chooses).
    static var maxKeys: Int { 64 }

    init(clock: any TimerClock) { self.clock = clock }

    func value(_ key: String = "", load: () async throws -> Value) async throws -> Value {
        let now = clock.now
        if let hit = cached.withLock({ $0[key] }), now.milliseconds - hit.at.milliseconds < Self.maxAgeMilliseconds, now.milliseconds >= hit.at.milliseconds {
            return hit.value
        }
        let fresh = try await load()
        cached.withLock {
            if $0.count >= Self.maxKeys { $0.removeAll() }
            $0[key] = (now, fresh)
        }
        return fresh
    }

    /// After a change (replay, reload) the next page must show its effect.
    func invalidate() { cached.withLock { $0.removeAll() } }
}

/// The status report, shared for a second.
final class StatusCache: Sendable {
    private let shared: SharedForASecond<ConsoleStatus>
    private let load: @Sendable () async throws -> ConsoleStatus

    init(clock: any TimerClock, load: @escaping @Sendable () async throws -> ConsoleStatus) {
        shared = SharedForASecond(clock: clock)
        self.load = load
    }

    func status() async throws -> ConsoleStatus { try await shared.value(load: load) }

    func invalidate() { shared.invalidate() }
}
