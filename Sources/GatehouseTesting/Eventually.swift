/// Polls `condition` every `poll` until it holds or `timeout` passes; returns whether it held.
/// Bounded rather than timed: a slow machine gets there later, not never, and no assertion depends
/// on how fast it got there. A condition that throws counts as not (yet) holding. The default
/// bound is generous: on a shared CI machine one fsynced commit has been seen to take seconds,
/// and a condition that needs many of them (a sink draining 150 events) more than 20 s.
public func eventually(
    timeout: Duration = .seconds(60), poll: Duration = .milliseconds(10), _ condition: () async throws -> Bool
) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if (try? await condition()) == true { return true }
        try? await Task.sleep(for: poll)
    }
    return (try? await condition()) == true
}
