import GatehouseCore
import Testing

/// `TimerClock.sleep` on a `ManualClock`: it ends when time is advanced past it, not before, and
/// cancellation ends it at once and frees its timer.
@Suite("TimerClock sleep")
struct TimerClockSleepTests {
    @Test("a sleep ends only once the clock has been advanced past it")
    func endsWhenAdvanced() async throws {
        let clock = ManualClock()
        let sleeper = Task { try await clock.sleep(for: .seconds(30)) }
        try await Self.waitForTimers(clock, count: 1)
        clock.advance(by: .seconds(29))
        #expect(clock.pendingTimers == 1, "not due yet")
        clock.advance(by: .seconds(1))
        try await sleeper.value
        #expect(clock.pendingTimers == 0)
    }

    @Test("cancelling a sleeping task ends it with CancellationError and frees its timer")
    func cancellation() async throws {
        let clock = ManualClock()
        let sleeper = Task { try await clock.sleep(for: .seconds(3600)) }
        try await Self.waitForTimers(clock, count: 1)
        sleeper.cancel()
        await #expect(throws: CancellationError.self) { try await sleeper.value }
        #expect(clock.pendingTimers == 0)
    }

    @Test("a task cancelled before it sleeps does not wait at all")
    func cancelledBefore() async {
        let clock = ManualClock()
        let sleeper = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await clock.sleep(for: .seconds(3600))
        }
        await #expect(throws: CancellationError.self) { try await sleeper.value }
        #expect(clock.pendingTimers == 0)
    }

    /// Bounded wait for the sleeper to register its timer (no assumption about speed).
    static func waitForTimers(_ clock: ManualClock, count: Int) async throws {
        for _ in 0..<10_000 where clock.pendingTimers < count { await Task.yield() }
        for _ in 0..<500 where clock.pendingTimers < count { try await Task.sleep(for: .milliseconds(10)) }
        #expect(clock.pendingTimers == count)
    }
}
