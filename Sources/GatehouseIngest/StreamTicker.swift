import Synchronization

/// One clock task per driver that beats for every stream the driver holds open, instead of a
/// watchdog task per stream: each held camera's tasks keep their async frames allocated for as
/// long as the stream lasts (issue 10's memory aim). A stream's own task does the watchdog's
/// work (stall decision, quiet stops) on each beat, while a child task reads the stream.
///
/// Like `SharedHTTPClient` it lives while any stream uses it: the first `withTicks` starts the
/// clock task, the last one to leave stops it and waits for it, so no timer is left armed
/// behind the last stream. The clock is the first stream's; a driver's devices share the
/// daemon's one clock (a test's injected one).
final class StreamTicker: Sendable {
    /// One stream's beats: `end()` (its reader finished) ends the sequence early.
    struct Ticks: Sendable {
        let beats: AsyncStream<Void>
        fileprivate let continuation: AsyncStream<Void>.Continuation

        func end() { continuation.finish() }
    }

    private struct State {
        var streams: [Int: AsyncStream<Void>.Continuation] = [:]
        var nextID = 0
        var clockTask: Task<Void, Never>?
    }

    let interval: Duration
    private let state = Mutex(State())

    init(interval: Duration) {
        self.interval = interval
    }

    /// How many streams take beats now, and whether the clock task runs (for tests of the lifecycle).
    var watching: (streams: Int, ticking: Bool) { state.withLock { ($0.streams.count, $0.clockTask != nil) } }

    /// Runs `body` with a beat every `interval` on `clock` until it returns. Beats the body has
    /// not taken yet collapse into one, so a slow check never queues a backlog.
    func withTicks<T>(clock: any DriverClock, _ body: (Ticks) async throws -> T) async throws -> T {
        let (beats, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state -> Int in
            state.nextID += 1
            state.streams[state.nextID] = continuation
            if state.clockTask == nil {
                let interval = interval
                state.clockTask = Task { [weak self] in
                    while !Task.isCancelled {
                        do { try await clock.sleep(for: interval) } catch { return }
                        guard let self else { return }
                        for stream in self.state.withLock({ Array($0.streams.values) }) { stream.yield() }
                    }
                }
            }
            return state.nextID
        }
        let result: T
        do {
            result = try await body(Ticks(beats: beats, continuation: continuation))
        } catch {
            await leave(id)
            throw error
        }
        await leave(id)
        return result
    }

    private func leave(_ id: Int) async {
        let stopping = state.withLock { state -> Task<Void, Never>? in
            state.streams.removeValue(forKey: id)?.finish()
            guard state.streams.isEmpty else { return nil }
            defer { state.clockTask = nil }
            return state.clockTask
        }
        stopping?.cancel()
        await stopping?.value
    }
}
