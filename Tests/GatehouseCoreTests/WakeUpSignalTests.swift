import GatehouseCore
import Testing

@Suite("WakeUpSignal")
struct WakeUpSignalTests {
    // Limits of a minute only bound the test: returning well before them can only mean the signal
    // (or the cancellation) ended the wait. A bound of a second or two failed on a loaded CI machine.

    @Test("a signal sent while nobody waits ends the next wait")
    func pendingSignalIsKept() async {
        let wake = WakeUpSignal()
        wake.signal()
        let started = ContinuousClock.now
        await wake.wait(timeout: .seconds(60), clock: MachineClock())
        #expect(ContinuousClock.now - started < .seconds(30), "a pending signal must end the next wait")
    }

    @Test("a signal ends a running wait, with or without a time limit")
    func signalEndsRunningWait() async {
        let wake = WakeUpSignal()
        let started = ContinuousClock.now
        let signaller = Task {
            // Signals until the waiter has gone through both waits, however late it starts waiting.
            while !Task.isCancelled {
                wake.signal()
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        await wake.wait(timeout: .seconds(60), clock: MachineClock())
        await wake.wait()
        signaller.cancel()
        #expect(ContinuousClock.now - started < .seconds(30), "a signal must end a running wait")
    }

    @Test("a wait without a signal ends at its time limit and leaves no signal behind")
    func timeLimitEndsWait() async {
        let wake = WakeUpSignal()
        let quiet = ContinuousClock.now
        await wake.wait(timeout: .milliseconds(100), clock: MachineClock())
        #expect(ContinuousClock.now - quiet >= .milliseconds(90))
        // The expiry consumed nothing: a later signal still wakes exactly one wait.
        wake.signal()
        let next = ContinuousClock.now
        await wake.wait(timeout: .seconds(60), clock: MachineClock())
        #expect(ContinuousClock.now - next < .seconds(30))
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
