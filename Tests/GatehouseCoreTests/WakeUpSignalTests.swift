import GatehouseCore
import Testing

@Suite("WakeUpSignal")
struct WakeUpSignalTests {
    // The waits' time limits run on a ManualClock that never moves, so only the signal can end
    // them: no bound on how long the machine takes (a 30 s bound failed on a starved CI box).
    // A broken signal hangs the wait, and the time limit fails the test.

    @Test("a signal sent while nobody waits ends the next wait", .timeLimit(.minutes(1)))
    func pendingSignalIsKept() async {
        let wake = WakeUpSignal()
        wake.signal()
        await wake.wait(timeout: .seconds(60), clock: ManualClock())
    }

    @Test("a signal ends a running wait, with or without a time limit", .timeLimit(.minutes(1)))
    func signalEndsRunningWait() async {
        let wake = WakeUpSignal()
        let signaller = Task {
            // Signals until the waiter has gone through both waits, however late it starts waiting.
            while !Task.isCancelled {
                wake.signal()
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        await wake.wait(timeout: .seconds(60), clock: ManualClock())
        await wake.wait()
        signaller.cancel()
    }

    @Test("a wait without a signal ends at its time limit and leaves no signal behind", .timeLimit(.minutes(1)))
    func timeLimitEndsWait() async {
        let wake = WakeUpSignal()
        let quiet = ContinuousClock.now
        await wake.wait(timeout: .milliseconds(100), clock: MachineClock())
        #expect(ContinuousClock.now - quiet >= .milliseconds(90))
        // The expiry consumed nothing: a later signal still wakes exactly one wait.
        wake.signal()
        await wake.wait(timeout: .seconds(60), clock: ManualClock())
    }

    @Test("cancelling the waiting task ends a wait that has no time limit")
    func cancellationEndsWait() async {
        let wake = WakeUpSignal()
        let waiter = Task {
            await wake.wait()
            return Task.isCancelled
        }
        waiter.cancel()
        #expect(await waiter.value, "the wait returned only because the task was cancelled")
    }
}

@Suite("ManualClock")
struct ManualClockTests {
    @Test("a wait's time limit runs on the injected clock, and a wait that ends early frees its timer")
    func waitOnInjectedClock() async {
        let clock = ManualClock()
        let wake = WakeUpSignal()
        let waiter = Task { await wake.wait(timeout: .seconds(60), clock: clock) }
        while clock.pendingTimers == 0 { await Task.yield() }
        clock.advance(by: .seconds(59))
        #expect(clock.pendingTimers == 1, "59 of 60 seconds must not end the wait")
        clock.advance(by: .seconds(1))
        await waiter.value
        #expect(clock.pendingTimers == 0)

        // Ended by a signal: the timer is cancelled at once, not left until its deadline.
        let signalled = Task { await wake.wait(timeout: .seconds(60), clock: clock) }
        while clock.pendingTimers == 0 { await Task.yield() }
        wake.signal()
        await signalled.value
        #expect(clock.pendingTimers == 0, "a wait that ended early must not leave its timer behind")
    }
}
