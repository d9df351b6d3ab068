import Foundation
@testable import GatehouseCore
import GatehouseQueue
import GatehouseSimulation
import GatehouseSinks
import GatehouseTesting
import Testing

/// Two sinks on one queue, each with its own cursor and pace.
@Suite struct MultipleSinksTests {
    @Test func eachSinkGetsEverythingAndTheQueueEmptiesOnlyAfterBoth() async throws {
        let store = try await TestQueue(sinks: ["fast", "slow"])
        defer { store.remove() }
        let events = try await store.append(400, .vehicleEntry) + store.append(100, .deviceOffline)
        let fast = CentralReceiver(logger: testLogger())
        let slow = CentralReceiver(logger: testLogger())
        slow.setMode(.unavailable)

        try await withReceiver(fast) { fastPort in
            try await withReceiver(slow) { slowPort in
                let fastSink = try RunningSink(httpSinkConfig(name: "fast", port: fastPort, batch: 64), queue: store.queue)
                let slowSink = try RunningSink(httpSinkConfig(name: "slow", port: slowPort, batch: 25), queue: store.queue)

                #expect(await fast.waitFor(uniqueCount: events.count, timeout: .seconds(120)))
                #expect(await eventually { try await store.queue.lag(sink: "fast") == 0 })
                // The slow sink has delivered nothing, so nothing may leave the queue.
                #expect(try await store.queue.stats().depth == Int64(events.count))
                #expect(try await store.queue.lag(sink: "slow") == Int64(events.count))

                slow.setMode(.accept)
                #expect(await slow.waitFor(uniqueCount: events.count, timeout: .seconds(120)))
                #expect(await eventually { try await store.queue.stats().depth == 0 })

                await fastSink.finish()
                await slowSink.finish()
            }
        }
        for receiver in [fast, slow] {
            #expect(receiver.snapshot.uniqueIDs == Set(events.map(\.id.description)))
            #expect(receiver.snapshot.duplicateCount == 0)
        }
    }

    /// Guards the queue against handing out sequence numbers again once delivered rows are pruned
    /// (a plain rowid restarts below the sink cursors, and new events would look delivered).
    @Test func eventsQueuedAfterTheQueueEmptiedAreDeliveredToo() async throws {
        let store = try await TestQueue(sinks: ["a", "b"])
        defer { store.remove() }
        let receiverA = CentralReceiver(logger: testLogger())
        let receiverB = CentralReceiver(logger: testLogger())

        try await withReceiver(receiverA) { portA in
            try await withReceiver(receiverB) { portB in
                let a = try RunningSink(httpSinkConfig(name: "a", port: portA), queue: store.queue)
                let b = try RunningSink(httpSinkConfig(name: "b", port: portB), queue: store.queue)
                var total = 0
                for round in 1...3 {
                    // Alarms in the second round, so one priority runs ahead of the others.
                    total += try await store.append(30, round == 2 ? .alarmPanic : .accessGranted).count
                    #expect(await receiverA.waitFor(uniqueCount: total, timeout: .seconds(60)), "sink a, round \(round)")
                    #expect(await receiverB.waitFor(uniqueCount: total, timeout: .seconds(60)), "sink b, round \(round)")
                    #expect(await eventually { try await store.queue.stats().depth == 0 }, "round \(round)")
                }
                await a.finish()
                await b.finish()
            }
        }
    }
}
