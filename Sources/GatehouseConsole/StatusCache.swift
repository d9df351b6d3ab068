import GatehouseCore
import Synchronization

/// One status report serves every browser for a second: ten open live pages then cost one
/// report a second, not fifteen (each report reads the queue's figures and every sink's lag).
final class StatusCache: Sendable {
    private let cached = Mutex<(at: Timestamp, status: ConsoleStatus)?>(nil)
    private let clock: any TimerClock
    private let load: @Sendable () async throws -> ConsoleStatus
    static let maxAgeMilliseconds: Int64 = 1000

    init(clock: any TimerClock, load: @escaping @Sendable () async throws -> ConsoleStatus) {
        self.clock = clock
        self.load = load
    }

    func status() async throws -> ConsoleStatus {
        let now = clock.now
        if let hit = cached.withLock({ $0 }), now.milliseconds - hit.at.milliseconds < Self.maxAgeMilliseconds, now.milliseconds >= hit.at.milliseconds {
            return hit.status
        }
        let fresh = try await load()
        cached.withLock { $0 = (now, fresh) }
        return fresh
    }

    /// After a change (replay, reload) the next page must show its effect.
    func invalidate() { cached.withLock { $0 = nil } }
}
