/// Polls `condition` every `poll` until it holds or `timeout` passes; returns whether it held.
/// Bounded rather than timed: a slow machine gets there later, not never, and no assertion depends
/// on how fast it got there. A condition that throws counts as not (yet) holding.
public func eventually(
    timeout: Duration = .seconds(20), poll: Duration = .milliseconds(10), _ condition: () async throws -> Bool
) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if (try? await condition()) == true { return true }
        try? await Task.sleep(for: poll)
    }
    return (try? await condition()) == true
}
