import Foundation
@testable import GatehouseCore
import GatehouseQueue
import GatehouseSinks
import GatehouseTesting
import Logging
import Synchronization
import Testing

/// The runner overlaps its queue work with the send in flight: it reads the next batch and records
/// the previous acknowledgement while a batch is on its way. These tests pin that the overlap
/// keeps every guarantee: one send at a time in queue order, acknowledgements in order and only
/// after delivery, failures and stop() handled as before.
///
/// The sink here answers each send only when the test says so, so every interleaving below is
/// reached by the test's own steps, never by timing; the backoffs run on a `ManualClock`.
@Suite struct SinkPipelineTests {
    func config(batch: Int = 50) -> SinkConfig {
        SinkConfig(
            name: "central", batchMaxEvents: batch, backoffInitialSeconds: 1, backoffMaxSeconds: 1,
            settings: FileSinkConfig(path: "/unused"))
    }

    func start(_ sink: AnsweredSink, _ store: TestQueue, clock: ManualClock, batch: Int = 50) -> (SinkRunner, Task<Void, Never>) {
        let runner = SinkRunner(sink: sink, config: config(batch: batch), queue: store.queue, logger: testLogger(), clock: clock)
        return (runner, Task { await runner.run() })
    }

    @Test func theNextBatchIsSentWhileThePreviousAcknowledgementIsRecordedInOrder() async throws {
        let store = try await TestQueue(sinks: ["central"])
        defer { store.remove() }
        let events = try await store.append(200, .accessGranted)
        let sink = AnsweredSink()
        let (runner, task) = start(sink, store, clock: ManualClock())

        for answered in 1...4 {
            #expect(await eventually { sink.waiting == 1 && sink.batches.count == answered })
            // Batch `answered` is in flight and stays so until answered below: every earlier batch's
            // acknowledgement is recorded meanwhile (it does not wait for this send), none of this one.
            #expect(await eventually { try await store.queue.lag(sink: "central") == Int64(200 - 50 * (answered - 1)) })
            #expect(sink.answer(.delivered))
        }
        #expect(await eventually { try await store.queue.lag(sink: "central") == 0 })
        runner.stop()
        await task.value

        // One send at a time (never two waiting at once), in queue order, each event once.
        #expect(sink.mostWaitingAtOnce == 1)
        #expect(sink.batches.flatMap { $0 }.map(eventID) == events.map(\.id.description))
        #expect(runner.status.deliveredEvents == 200)
        #expect(runner.status.deliveredBatches == 4)
    }

    @Test func aFailureInTheSecondBatchLeavesTheFirstRecordedAndTheSecondQueued() async throws {
        let store = try await TestQueue(sinks: ["central"])
        defer { store.remove() }
        let events = try await store.append(150, .accessGranted)
        let sink = AnsweredSink()
        let clock = ManualClock()
        let (runner, task) = start(sink, store, clock: clock)

        #expect(await eventually { sink.waiting == 1 })
        #expect(sink.answer(.delivered))
        // The second batch was read while the first was sent and goes out as soon as it is delivered.
        #expect(await eventually { sink.waiting == 1 && sink.batches.count == 2 })
        #expect(sink.answer(.retryable(after: nil, reason: "central store busy")))
        #expect(await eventually { runner.status.state == "backing-off" })
        // The first batch's acknowledgement stands; the second (and the third, read ahead) wait.
        #expect(try await store.queue.lag(sink: "central") == 100)
        #expect(try await store.undelivered(sink: "central") == events.suffix(100).map(\.id.description))
        #expect(sink.batches.count == 2)

        clock.advance(by: .seconds(1))
        // Read again from the acknowledged cursor: the same second batch, then the third.
        #expect(await eventually { sink.waiting == 1 && sink.batches.count == 3 })
        #expect(sink.batches[2].map(\.seq) == sink.batches[1].map(\.seq))
        #expect(sink.answer(.delivered))
        #expect(await eventually { sink.waiting == 1 && sink.batches.count == 4 })
        #expect(sink.answer(.delivered))
        #expect(await eventually { try await store.queue.lag(sink: "central") == 0 })
        runner.stop()
        await task.value
        #expect(runner.status.deliveredEvents == 150)
        #expect(runner.status.lastError == nil)
    }

    @Test(arguments: [true, false])
    func stopDuringASendRecordsExactlyWhatWasDelivered(secondDelivered: Bool) async throws {
        let store = try await TestQueue(sinks: ["central"])
        defer { store.remove() }
        let events = try await store.append(200, .accessGranted)
        let sink = AnsweredSink()
        let (runner, task) = start(sink, store, clock: ManualClock())

        #expect(await eventually { sink.waiting == 1 })
        #expect(sink.answer(.delivered))
        #expect(await eventually { sink.waiting == 1 && sink.batches.count == 2 })
        // The third batch is read ahead by now; stop() must not send it.
        runner.stop()
        #expect(sink.answer(secondDelivered ? .delivered : .retryable(after: nil, reason: "link lost")))
        await task.value

        #expect(sink.batches.count == 2)
        let left = try await store.undelivered(sink: "central")
        #expect(left == events.suffix(secondDelivered ? 100 : 150).map(\.id.description))
        #expect(runner.status.state == "stopped")
    }

    @Test func aRejectedEventInTheSecondBatchIsStillIsolated() async throws {
        let store = try await TestQueue(sinks: ["central"])
        defer { store.remove() }
        let events = try await store.append(150, .accessGranted)
        let poisoned = events[70].id.description
        let sink = AnsweredSink { batch in
            batch.map(eventID).contains(poisoned) ? .rejected(reason: "refused field") : .delivered
        }
        let (runner, task) = start(sink, store, clock: ManualClock())

        #expect(await eventually { try await store.queue.lag(sink: "central") == 0 })
        runner.stop()
        await task.value

        let delivered = sink.deliveredIDs
        #expect(delivered == events.map(\.id.description).filter { $0 != poisoned })
        let quarantine = try await store.queue.quarantineEntries()
        #expect(quarantine.count == 1)
        #expect(quarantine.first?.reason == "rejected by sink central: refused field")
        #expect(runner.status.rejectedEvents == 1)
        #expect(runner.status.deliveredEvents == 149)
    }

    /// A runner with batches of 50 and a 5 s linger on a `ManualClock`, running.
    func lingeringRunner(_ store: TestQueue) -> (AnsweredSink, ManualClock, SinkRunner, Task<Void, Never>) {
        let sink = AnsweredSink()
        let clock = ManualClock()
        var lingering = config(batch: 50)
        lingering.batchLingerSeconds = 5
        let runner = SinkRunner(sink: sink, config: lingering, queue: store.queue, logger: testLogger(), clock: clock)
        return (sink, clock, runner, Task { await runner.run() })
    }

    /// `batch_linger_seconds`: a batch read while the previous one was in flight (events keep
    /// coming) and not full waits the linger and is read again, fuller; the first batch after an
    /// idle spell goes at once. Steps only, on a `ManualClock`: the linger ends when the test advances it.
    @Test func whileEventsKeepComingASmallBatchLingersToFillUp() async throws {
        let store = try await TestQueue(sinks: ["central"])
        defer { store.remove() }
        let events = try await store.append(51, .accessGranted)
        let (sink, clock, runner, task) = lingeringRunner(store)

        // The first batch goes without the clock moving: no linger after idle.
        #expect(await eventually { sink.waiting == 1 && sink.batches.count == 1 })
        #expect(sink.batches.first?.count == 50)
        #expect(sink.answer(.delivered))
        // The 51st event was read while the first batch was in flight: it waits for company.
        #expect(await eventually { clock.pendingTimers == 1 })
        #expect(sink.batches.count == 1)
        let more = try await store.append(3, .accessGranted)
        clock.advance(by: .seconds(5))
        #expect(await eventually { sink.waiting == 1 && sink.batches.count == 2 })
        #expect(sink.batches.last?.map(eventID) == ([events[50]] + more).map(\.id.description))
        #expect(sink.answer(.delivered))
        #expect(await eventually { try await store.queue.lag(sink: "central") == 0 })
        runner.stop()
        await task.value
        #expect(runner.status.deliveredBatches == 2)
    }

    @Test func aBatchHoldingAnAlarmDoesNotLinger() async throws {
        let store = try await TestQueue(sinks: ["central"])
        defer { store.remove() }
        // Alarms are read first, so the batch read while the first is in flight is the 51st alarm.
        let alarms = try await store.append(51, .alarmPanic)
        let (sink, clock, runner, task) = lingeringRunner(store)

        #expect(await eventually { sink.waiting == 1 && sink.batches.count == 1 })
        #expect(sink.answer(.delivered))
        // The alarm was read while the first batch was in flight and goes without the clock moving.
        #expect(await eventually { sink.waiting == 1 && sink.batches.count == 2 })
        #expect(sink.batches.last?.map(eventID) == [alarms[50].id.description])
        #expect(clock.pendingTimers == 0)
        #expect(sink.answer(.delivered))
        #expect(await eventually { try await store.queue.lag(sink: "central") == 0 })
        runner.stop()
        await task.value
    }
}

/// A sink that answers each send when the test calls `answer`, or at once with `rule`. It records
/// every batch it was given, and which ones it answered `.delivered`.
final class AnsweredSink: Sink {
    let name = "central"
    private struct State {
        var batches: [[StoredEvent]] = []
        var delivered: [[StoredEvent]] = []
        var waiting: [(batch: [StoredEvent], answer: CheckedContinuation<DeliveryResult, Never>)] = []
        var mostWaitingAtOnce = 0
    }
    private let state = Mutex(State())
    private let rule: (@Sendable ([StoredEvent]) -> DeliveryResult)?

    init(rule: (@Sendable ([StoredEvent]) -> DeliveryResult)? = nil) {
        self.rule = rule
    }

    func send(_ batch: SinkBatch) async -> DeliveryResult {
        if let rule {
            let result = rule(batch.events)
            state.withLock {
                $0.batches.append(batch.events)
                if result == .delivered { $0.delivered.append(batch.events) }
            }
            return result
        }
        return await withCheckedContinuation { answer in
            state.withLock {
                $0.batches.append(batch.events)
                $0.waiting.append((batch.events, answer))
                $0.mostWaitingAtOnce = max($0.mostWaitingAtOnce, $0.waiting.count)
            }
        }
    }

    /// Answers the oldest waiting send; false when none is waiting.
    func answer(_ result: DeliveryResult) -> Bool {
        let next = state.withLock { s -> (batch: [StoredEvent], answer: CheckedContinuation<DeliveryResult, Never>)? in
            guard !s.waiting.isEmpty else { return nil }
            let next = s.waiting.removeFirst()
            if result == .delivered { s.delivered.append(next.batch) }
            return next
        }
        next?.answer.resume(returning: result)
        return next != nil
    }

    var batches: [[StoredEvent]] { state.withLock { $0.batches } }
    var waiting: Int { state.withLock { $0.waiting.count } }
    var mostWaitingAtOnce: Int { state.withLock { $0.mostWaitingAtOnce } }
    var deliveredIDs: [String] { state.withLock { $0.delivered.flatMap { $0 }.map(eventID) } }

    func shutdown() async {}
}
