import GatehouseCore
import GatehouseTesting
import Synchronization
import Testing

@testable import GatehouseIngest

@Suite("stream ticker")
struct StreamTickerTests {
    @Test("one clock task beats for every open stream, on the injected clock, and stops with the last stream")
    func beatsAndStops() async throws {
        let clock = ManualClock()
        let ticker = StreamTicker(interval: .seconds(1))
        let beats = Beats()
        let streams = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<2 {
                    group.addTask {
                        try await ticker.withTicks(clock: clock) { ticks in
                            for await _ in ticks.beats {
                                if beats.count(index) == 2 { ticks.end() }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        // Two streams, one timer: the driver's clock task.
        #expect(await eventually { ticker.watching == (2, true) && clock.pendingTimers == 1 })
        #expect(beats.all == [0, 0], "a beat before the clock moved")
        clock.advance(by: .seconds(1))
        #expect(await eventually { beats.all == [1, 1] && clock.pendingTimers == 1 })
        clock.advance(by: .seconds(1))
        try await streams.value
        #expect(beats.all == [2, 2])
        // The last stream left: no clock task, no timer left armed.
        #expect(ticker.watching == (0, false))
        #expect(clock.pendingTimers == 0)
    }
}

/// Beats seen per stream.
private final class Beats: Sendable {
    private let counts = Mutex([0, 0])
    var all: [Int] { counts.withLock { $0 } }

    /// Counts one beat of stream `index`; returns its count.
    func count(_ index: Int) -> Int { counts.withLock { $0[index] += 1; return $0[index] } }
}
