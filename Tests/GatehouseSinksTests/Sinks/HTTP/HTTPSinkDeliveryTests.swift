import Foundation
@testable import GatehouseCore
import GatehouseQueue
import GatehouseSimulation
import GatehouseSinks
import GatehouseTesting
import Testing

/// The HTTP sink and its runner against a real receiver and a real queue.
@Suite struct HTTPSinkDeliveryTests {
    @Test(arguments: [HTTPSinkConfig.Format.ndjson, .jsonArray])
    func deliversEveryEventOnceWithItsIDAndBody(format: HTTPSinkConfig.Format) async throws {
        let store = try await TestQueue(sinks: ["central"])
        defer { store.remove() }
        var events = try await store.append(600, .accessGranted)
        events += try await store.append(150, .deviceOnline)
        events += try await store.append(50, .alarmPanic)
        let receiver = CentralReceiver(expectedBearer: "token-1", hmacSecret: "shared-key", logger: testLogger())

        let snapshot = try await withReceiver(receiver) { port in
            let running = try RunningSink(
                httpSinkConfig(port: port, batch: 128, format: format, gzip: true, bearer: "token-1", hmac: "shared-key"),
                queue: store.queue)
            let arrived = await receiver.waitFor(uniqueCount: events.count, timeout: .seconds(120))
            await running.finish()
            #expect(arrived)
            #expect(running.runner.status.deliveredEvents == Int64(events.count))
            #expect(running.runner.status.state == "stopped")
            return receiver.snapshot
        }
        #expect(snapshot.uniqueCount == events.count)
        #expect(snapshot.duplicateCount == 0)
        #expect(snapshot.unauthorizedRequests == 0)
        #expect(snapshot.lastContentEncoding == "gzip")
        #expect(snapshot.lastIdempotencyKey?.hasPrefix("central-") == true)
        for event in events {
            let sent = try body(of: event)
            #expect(snapshot.bodies[event.id.description] == sent)
        }
        // Alarms were queued last but are forwarded first.
        #expect(Set(snapshot.arrivalOrder.prefix(50)) == Set(events.suffix(50).map(\.id.description)))
        #expect(try await store.queue.lag(sink: "central") == 0)
        #expect(try await store.queue.stats().depth == 0)
    }

    @Test func wrongSignatureIsRefusedAndNothingIsAcknowledged() async throws {
        let store = try await TestQueue(sinks: ["central"])
        defer { store.remove() }
        try await store.append(20, .accessGranted)
        let receiver = CentralReceiver(hmacSecret: "right-key", logger: testLogger())

        try await withReceiver(receiver) { port in
            let running = try RunningSink(httpSinkConfig(port: port, gzip: true, hmac: "wrong-key"), queue: store.queue)
            let failing = await eventually { running.runner.status.consecutiveFailures >= 2 }
            await running.finish()
            #expect(failing)
            #expect(running.runner.status.lastError?.contains("401") == true)
            #expect(running.runner.status.deliveredEvents == 0)
        }
        #expect(receiver.snapshot.unauthorizedRequests >= 2)
        #expect(receiver.snapshot.uniqueCount == 0)
        // A credentials problem is fatal, not a rejection: nothing was quarantined, all still queued.
        #expect(try await store.queue.quarantineEntries().isEmpty)
        #expect(try await store.queue.lag(sink: "central") == 20)
    }

    @Test func backlogDrainsAfterOutageWithAlarmsFirst() async throws {
        let store = try await TestQueue(sinks: ["central"])
        defer { store.remove() }
        let older = try await store.append(300, .accessGranted) + store.append(200, .cameraMotion)
        let (logger, lines) = CapturingLogHandler.logger()
        // Backoffs (and the 503's Retry-After) run on this clock: each poll below moves it past any
        // backoff, so the test never sleeps through one and a slow machine cannot change the outcome.
        let clock = ManualClock()
        func advancing(_ condition: () async throws -> Bool) async -> Bool {
            await eventually {
                clock.advance(by: .seconds(600))
                return try await condition()
            }
        }

        // Phase 1: nothing listens on the port (connection refused).
        let first = CentralReceiver(logger: testLogger())
        let port = try await withReceiver(first) { $0 }
        let running = try RunningSink(httpSinkConfig(port: port, batch: 100), queue: store.queue, logger: logger, clock: clock)
        #expect(await advancing { running.runner.status.consecutiveFailures >= 3 })
        #expect(running.runner.status.state == "backing-off" || running.runner.status.state == "sending")

        // Phase 2: the store answers 503 with Retry-After: 1; alarms arrive meanwhile.
        let snapshot = try await withReceiver(reusing: port, make: { port in
            let second = CentralReceiver(port: port, logger: testLogger())
            second.setMode(.unavailable)
            return second
        }) { second in
            let alarms = try await store.append(40, .alarmFire)
            #expect(await advancing { second.snapshot.requests >= 1 })
            #expect(await advancing { running.runner.status.lastError?.contains("503") == true })
            #expect(second.snapshot.uniqueCount == 0)

            // Phase 3: back. Everything arrives once, the alarms before any older event.
            second.setMode(.accept)
            let drained = await advancing { second.snapshot.uniqueCount >= older.count + alarms.count }
            #expect(drained)
            let snapshot = second.snapshot
            #expect(Array(snapshot.arrivalOrder.prefix(alarms.count)) == alarms.map(\.id.description))
            return snapshot
        }
        await running.finish()
        #expect(snapshot.duplicateCount == 0)
        #expect(try await store.queue.stats().depth == 0)
        #expect(running.runner.status.consecutiveFailures == 0)

        let logged = lines.all
        let backingOff = logged.first { $0.message.contains("backing off") }
        #expect(backingOff?.level == .warning)
        #expect(backingOff?.metadata["sink.name"] == "central")
        #expect(logged.contains { $0.level == .notice && $0.message.contains("delivering again after") })
    }

    @Test func poisonedEventIsQuarantinedAndTheRestDelivered() async throws {
        let store = try await TestQueue(sinks: ["central"])
        defer { store.remove() }
        let events = try await store.append(200, .accessGranted, device: "gate-7")
        let poisoned = events[137]
        let receiver = CentralReceiver(logger: testLogger())
        receiver.setMode(.reject(ids: [poisoned.id.description]))

        let snapshot = try await withReceiver(receiver) { port in
            let running = try RunningSink(httpSinkConfig(port: port, batch: 64), queue: store.queue)
            let arrived = await receiver.waitFor(uniqueCount: events.count - 1, timeout: .seconds(120))
            let drained = await eventually { try await store.queue.lag(sink: "central") == 0 }
            await running.finish()
            #expect(arrived && drained)
            #expect(running.runner.status.rejectedEvents == 1)
            #expect(running.runner.status.deliveredEvents == Int64(events.count - 1))
            return receiver.snapshot
        }
        #expect(snapshot.uniqueIDs == Set(events.map(\.id.description)).subtracting([poisoned.id.description]))
        #expect(snapshot.duplicateCount == 0)
        // Order within the access priority survived the splitting.
        #expect(snapshot.arrivalOrder == events.map(\.id.description).filter { $0 != poisoned.id.description })

        let quarantine = try await store.queue.quarantineEntries()
        #expect(quarantine.count == 1)
        #expect(quarantine.first?.driver == "sink:central")
        #expect(quarantine.first?.deviceID == "gate-7")
        #expect(quarantine.first?.reason.hasPrefix("rejected by sink central: HTTP 400") == true)
        let payload = try EventCoding.encode(poisoned)
        #expect(quarantine.first?.payload == payload)
    }

    @Test func stopDuringLoadLeavesTheCursorExactlyAtWhatWasAcknowledged() async throws {
        let store = try await TestQueue(sinks: ["central"])
        defer { store.remove() }
        let events = try await store.append(6000, .accessGranted)
        let receiver = CentralReceiver(logger: testLogger())

        let snapshot = try await withReceiver(receiver) { port in
            let running = try RunningSink(httpSinkConfig(port: port, batch: 50), queue: store.queue)
            #expect(await receiver.waitFor(uniqueCount: 500, timeout: .seconds(120)))
            _ = await running.finish()
            return receiver.snapshot
        }
        // Stopped mid-backlog (not timed: a slow machine delivers fewer batches before the stop).
        #expect(snapshot.uniqueCount < events.count, "stopped before the end, or the test proves nothing")
        let left = try await store.undelivered(sink: "central")
        // Nothing acknowledged that was not delivered, nothing delivered left unacknowledged.
        #expect(Set(left).isDisjoint(with: snapshot.uniqueIDs))
        #expect(left.count + snapshot.uniqueCount == events.count)
        #expect(left == events.suffix(left.count).map(\.id.description))
    }

    @Test func cancellationEndsABackoffPromptly() async throws {
        let store = try await TestQueue(sinks: ["central"])
        defer { store.remove() }
        try await store.append(5, .accessGranted)
        let receiver = CentralReceiver(logger: testLogger())
        receiver.setMode(.unavailable)

        try await withReceiver(receiver) { port in
            // Minutes of backoff (600 s, Retry-After honoured up to 300 s): a runner that ignored
            // cancellation would sit here.
            let config = httpSinkConfig(port: port, backoffInitial: 600, backoffMax: 600)
            let sink = try SinkRegistry.make(config, logger: testLogger())
            let runner = SinkRunner(sink: sink, config: config, queue: store.queue, logger: testLogger(), clock: MachineClock())
            let task = Task { await runner.run() }
            #expect(await eventually { runner.status.state == "backing-off" })
            let elapsed = await ContinuousClock().measure {
                task.cancel()
                await task.value
            }
            await sink.shutdown()
            // A runner that ignored cancellation would sit out that backoff; the bound is that
            // far from a prompt stop so that no machine is too slow for it.
            #expect(elapsed < .seconds(120))
            #expect(runner.status.state == "stopped")
        }
        #expect(try await store.queue.lag(sink: "central") == 5)
    }
}
