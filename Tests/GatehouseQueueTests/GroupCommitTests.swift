import Foundation
@testable import GatehouseCore
@testable import GatehouseQueue
import GatehouseTesting
import Testing

@Suite("Group commit and durability")
struct GroupCommitTests {
    @Test("500 concurrent appends are all stored in fewer than 500 transactions")
    func concurrentAppendsShareCommits() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        let runner = Task { await queue.run() }

        let events = (0..<500).map { makeEvent(.accessGranted, device: "door-\($0 % 7)", dedupKey: "k\($0)") }
        let outcomes = try await withThrowingTaskGroup(of: (EventID, [AppendOutcome]).self) { group in
            for event in events {
                group.addTask { (event.id, try await queue.append([event])) }
            }
            var all: [EventID: [AppendOutcome]] = [:]
            for try await (id, result) in group { all[id] = result }
            return all
        }

        #expect(outcomes.count == 500)
        for event in events {
            #expect(outcomes[event.id] == [.stored(event.id)])
        }
        let stats = try await queue.stats()
        #expect(stats.committedEvents == 500)
        #expect(stats.commits >= 1)
        #expect(stats.commits < 500, "group commit should batch concurrent appends, got \(stats.commits) commits")
        #expect(stats.depth == 500)

        queue.close()
        await runner.value  // run() returns once closed and drained

        await #expect(throws: (any Error).self) {
            _ = try await queue.append([makeEvent()])
        }
        #expect(try await queue.stats().depth == 500)
    }

    @Test("appends waiting when close() is called are still committed before run() returns")
    func closeDrainsPending() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        let events = (0..<20).map { _ in makeEvent(.cameraMotion) }
        // No runner yet: the appends wait in the pending list.
        let appends = Task {
            try await withThrowingTaskGroup(of: [AppendOutcome].self) { group in
                for event in events { group.addTask { try await queue.append([event]) } }
                var all: [AppendOutcome] = []
                for try await result in group { all += result }
                return all
            }
        }
        let runner = Task { await queue.run() }
        let outcomes = try await appends.value
        queue.close()
        await runner.value
        #expect(outcomes.count == 20)
        #expect(outcomes.allSatisfy { $0.isStored })
        #expect(try await queue.stats().depth == 20)
    }

    @Test("commit_max_events bounds one transaction; a larger single append still commits whole")
    func commitMaxEventsBoundsBatches() async throws {
        let fixture = try QueueFixture(commitMaxEvents: 10)
        defer { fixture.remove() }
        let queue = fixture.queue
        let runner = Task { await queue.run() }
        // One append of 25 events cannot be split: it is committed on its own.
        let big = (0..<25).map { _ in makeEvent(.cameraMotion) }
        let outcomes = try await queue.append(big)
        #expect(outcomes == big.map { .stored($0.id) })
        let stats = try await queue.stats()
        #expect(stats.commits == 1)
        #expect(stats.committedEvents == 25)
        queue.close()
        await runner.value
    }

    @Test("committed events count what was stored: a re-sent event is answered as a duplicate and not counted")
    func duplicatesAreNotCommittedEvents() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        let runner = Task { await queue.run() }
        let event = makeEvent(.accessGranted, dedupKey: "resent")
        #expect(try await queue.append([event]) == [.stored(event.id)])
        let retry = makeEvent(.accessGranted, dedupKey: "resent")
        #expect(try await queue.append([retry]) == [.duplicate(of: event.id)])
        let stats = try await queue.stats()
        #expect(stats.committedEvents == 1 && stats.depth == 1, "\(stats)")
        queue.close()
        await runner.value
    }

    @Test("queued events survive closing and reopening the file, byte for byte")
    func durableAcrossReopen() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let events = [
            makeEvent(.cameraMotion, dedupKey: "t1", padding: 10),
            makeEvent(.accessGranted, dedupKey: "a1"),
            makeEvent(.alarmPanic, dedupKey: "p1"),
            makeEvent(.accessDenied, device: "door-2", dedupKey: "a2"),
        ]
        var before: [StoredEvent] = []
        var statsBefore: QueueStats?
        do {
            let queue = try fixture.reopen()
            let runner = Task { await queue.run() }
            let outcomes = try await queue.append(events)
            #expect(outcomes == events.map { .stored($0.id) })
            before = try await queue.everything(sink: "a")
            statsBefore = try await queue.stats()
            queue.close()
            await runner.value
        }
        // The fixture's own queue object was never used; drop nothing else and open a fresh one.
        let reopened = try fixture.reopen()
        let stats = try await reopened.stats()
        #expect(stats.depth == 4)
        #expect(stats.depth == statsBefore?.depth)
        #expect(stats.usedBytes == statsBefore?.usedBytes)
        let after = try await reopened.everything(sink: "a")
        #expect(after.count == 4)
        #expect(after.map(\.body) == before.map(\.body))
        #expect(after.map(\.seq) == before.map(\.seq))
        let encoded = try events.map { try EventCoding.encode($0) }
        for stored in after {
            #expect(encoded.contains(stored.body), "stored body differs from the encoded event")
        }
        // Dedup keys are durable too: a retry after restart is recognised.
        let retry = makeEvent(.accessGranted, dedupKey: "a1")
        #expect(try await reopened.appendNow([retry]) == [.duplicate(of: events[1].id)])
    }
}
