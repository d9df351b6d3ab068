import Foundation
@testable import GatehouseCore
import GatehouseQueue
import GatehouseSimulation
import GatehouseSinks
import GatehouseTesting
import Logging

/// The shared queue fixture with the sinks under test registered.
struct TestQueue {
    private let fixture: QueueFixture
    let ids = EventIDGenerator()
    var queue: EventQueue { fixture.queue }
    var directory: URL { fixture.directory }

    init(sinks: [String]) async throws {
        fixture = try QueueFixture(commitMaxEvents: 1000, quarantineMaxPayloadBytes: 65536, logger: testLogger())
        try await fixture.queue.registerSinks(sinks)
    }

    func remove() { fixture.remove() }

    /// Appends `count` events of `kind` and returns them in append order.
    @discardableResult
    func append(_ count: Int, _ kind: EventKind, device: String = "door-1") async throws -> [Event] {
        let now = Timestamp.now
        let events = (0..<count).map { index in
            Event(
                id: ids.next(), kind: kind, occurredAt: now, receivedAt: now, site: "test-site",
                device: DeviceRef(id: device, vendor: "acme", type: .doorController), point: "door-\(index % 4)",
                subject: Subject(type: .card, value: "card-\(index)"), source: Source(driver: "test"))
        }
        let outcomes = try await queue.appendNow(events)
        precondition(outcomes.allSatisfy { if case .stored = $0 { true } else { false } })
        return events
    }

    /// The ids this sink has not delivered yet, read the way a runner reads them.
    func undelivered(sink: String) async throws -> [String] {
        try queue.nextBatch(sink: sink, maxEvents: 1_000_000, maxBytes: .max).map(eventID)
    }
}

/// The `id` of a stored event's JSON.
func eventID(_ event: StoredEvent) -> String {
    (try? EventCoding.decode(event.body).id.description) ?? "?"
}

func body(of event: Event) throws -> String {
    String(decoding: try EventCoding.encode(event), as: UTF8.self)
}

func httpSinkConfig(
    name: String = "central", port: Int, batch: Int = 100, format: HTTPSinkConfig.Format = .ndjson, gzip: Bool = false,
    bearer: String? = nil, hmac: String? = nil, backoffInitial: Double = 0.02, backoffMax: Double = 0.2
) -> SinkConfig {
    SinkConfig(
        name: name, batchMaxEvents: batch, backoffInitialSeconds: backoffInitial, backoffMaxSeconds: backoffMax,
        settings: HTTPSinkConfig(
                url: "http://127.0.0.1:\(port)/v1/events", format: format, gzip: gzip,
                bearerToken: bearer.map { Secret(value: $0, origin: "test") },
                hmacSecret: hmac.map { Secret(value: $0, origin: "test") }, signatureHeader: "X-Gatehouse-Signature",
                idempotencyHeader: "Idempotency-Key", caFile: nil, clientCertificateFile: nil, clientKeyFile: nil,
                // Bounds, not expectations: a request a loaded machine answered after 5 s was sent again,
                // as it should be, and counted as a duplicate by tests that expect none.
                connectTimeoutSeconds: 10, requestTimeoutSeconds: 60))
}

/// A runner on its own task, with its sink, stopped and shut down by `finish()`.
struct RunningSink {
    let runner: SinkRunner
    let sink: any Sink
    let task: Task<Void, Never>

    init(_ config: SinkConfig, queue: EventQueue, logger: Logger = testLogger(), clock: any TimerClock = MachineClock()) throws {
        sink = try SinkRegistry.make(config, logger: logger)
        let runner = SinkRunner(sink: sink, config: config, queue: queue, logger: logger, clock: clock)
        self.runner = runner
        task = Task { await runner.run() }
    }

    /// Stops the runner gracefully and returns how long `run()` took to return.
    @discardableResult
    func finish() async -> Duration {
        let clock = ContinuousClock()
        let elapsed = await clock.measure {
            runner.stop()
            await task.value
        }
        await sink.shutdown()
        return elapsed
    }
}
