import CPowerCutVFS
import Foundation
import GRDB
@testable import GatehouseCore
@testable import GatehouseQueue
import GatehouseSimulation
import GatehouseTesting
import Synchronization
import Testing

/// The queue against power cuts: a VFS shim (CPowerCutVFS) keeps only what SQLite synced, the
/// power goes off at a random write, sync or truncate while the real EventQueue API appends,
/// delivers, deletes and checkpoints, and the reopened queue must be intact and hold every event
/// whose append returned. GATEHOUSE_POWERCUT_CUTS sets the number of cut points (200 by
/// default; docs/testing.md has the long run), GATEHOUSE_POWERCUT_SEED the seed.
@Suite("Power cut", .serialized)
struct PowerCutTests {
    @Test("after a power cut at a random point the queue is intact and keeps every event whose append returned")
    func randomCuts() async throws {
        let environment = ProcessInfo.processInfo.environment
        let cuts = environment["GATEHOUSE_POWERCUT_CUTS"].flatMap(Int.init) ?? 200
        let seed = environment["GATEHOUSE_POWERCUT_SEED"].flatMap(UInt64.init) ?? 13
        var random = SplitMix(seed: seed)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-powercut-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        #expect(powercut_install(root.path + "/") == 0)  // SQLITE_OK
        defer {
            powercut_uninstall()
            try? FileManager.default.removeItem(at: root)
        }

        // A run without a cut tells how many operations the workload makes.
        powercut_arm(0)
        let clean = await runWorkload(in: root.appendingPathComponent("clean"))
        let total = powercut_operations()
        #expect(powercut_apply(0) == 0)
        #expect(total > 50)
        #expect(clean.acknowledged.count == Workload.rounds * Workload.appenders * Workload.eventsPerAppend)
        try await verify(root.appendingPathComponent("clean"), clean, context: "run without a cut")

        var cutRuns = 0
        for index in 0..<cuts {
            let cutAt = Int64(random.next() % UInt64(total)) + 1
            let tear = random.next() % 2 == 0
            let directory = root.appendingPathComponent("cut-\(index)")
            powercut_arm(cutAt)
            let record = await runWorkload(in: directory)
            if powercut_is_cut() != 0 { cutRuns += 1 }
            let filesBefore = files(in: directory)
            #expect(powercut_apply(tear ? 1 : 0) == 0)
            let context = "cut \(index) at operation \(cutAt) of \(total), torn: \(tear), seed \(seed), files \(filesBefore) -> \(files(in: directory)), acknowledged \(record.acknowledged.count)"
            try await verify(directory, record, context: context)
            try? FileManager.default.removeItem(at: directory)
        }
        // The workload's operation count varies a little with group commit; most runs must be cut.
        #expect(cutRuns * 10 >= cuts * 8, "only \(cutRuns) of \(cuts) runs were cut")
    }

    func files(in directory: URL) -> String {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.sorted().map { name in
            let size = (try? FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(name).path)[.size] as? Int) ?? -1
            return "\(name)=\(size ?? -1)"
        }.joined(separator: ",")
    }

    enum Workload {
        static let rounds = 8
        static let appenders = 3
        static let eventsPerAppend = 4
    }

    /// What the workload saw succeed: appends that returned, and events handed to a sink's
    /// acknowledge (which may have deleted them, so they may be missing after the cut).
    struct Record {
        var acknowledged: Set<EventID> = []
        var handedToSink: Set<EventID> = []
    }

    final class RecordBox: Sendable {
        let value = Mutex(Record())
    }

    /// Appends from several devices at once (so commits are grouped), delivers and deletes every
    /// other round, checkpoints and runs maintenance, until the first error (the cut).
    func runWorkload(in directory: URL) async -> Record {
        let record = RecordBox()
        guard
            let queue = try? EventQueue(
                path: directory.appendingPathComponent("queue.sqlite").path, settings: QueueSettings(commitMaxEvents: 8),
                diskBudgetBytes: 1 << 30, clock: MachineClock(), logger: testLogger("gatehouse.powercut"))
        else { return record.value.withLock { $0 } }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await queue.run() }
            do {
                try await queue.registerSinks(["central"])
                for round in 0..<Workload.rounds {
                    try await withThrowingTaskGroup(of: Void.self) { appends in
                        for device in 0..<Workload.appenders {
                            appends.addTask {
                                let events = (0..<Workload.eventsPerAppend).map { n in
                                    powerCutEvent(device: "door-\(device)", dedupKey: "r\(round)-\(n)", padding: 40 * (n + round))
                                }
                                let outcomes = try await queue.append(events)
                                let stored = outcomes.compactMap { outcome -> EventID? in
                                    if case .stored(let id) = outcome { return id }
                                    return nil
                                }
                                record.value.withLock { $0.acknowledged.formUnion(stored) }
                            }
                        }
                        try await appends.waitForAll()
                    }
                    if round % 2 == 1 {
                        let batch = try queue.nextBatch(sink: "central", maxEvents: 10)
                        let ids = try batch.map { try EventCoding.decode($0.body).id }
                        record.value.withLock { $0.handedToSink.formUnion(ids) }
                        try await queue.acknowledge(sink: "central", batch)
                    }
                    if round % 3 == 2 {
                        try await queue.pool.writeWithoutTransaction { db in
                            _ = try Row.fetchAll(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)")
                        }
                    }
                    if round == 4 { try await queue.maintain() }
                }
            } catch {
                // The power went off: what returned before is what must survive.
            }
            queue.close()
            await group.waitForAll()
        }
        #expect(throws: Never.self) { try queue.pool.close() }
        return record.value.withLock { $0 }
    }

    /// Reopens the queue as after the power came back: integrity ok, every acknowledged event
    /// present unless a sink was handed it, and the persistent depth counter equal to the rows.
    func verify(_ directory: URL, _ record: Record, context: String) async throws {
        let queue = try EventQueue(
            path: directory.appendingPathComponent("queue.sqlite").path, settings: QueueSettings(),
            diskBudgetBytes: 1 << 30, clock: MachineClock(), logger: testLogger("gatehouse.powercut"))
        let (integrity, bodies, depth, depthByPriority) = try await queue.pool.read { db in
            (
                try String.fetchAll(db, sql: "PRAGMA integrity_check"),
                try Data.fetchAll(db, sql: "SELECT body FROM events"),
                try Int64.fetchOne(db, sql: "SELECT value FROM counters WHERE name = 'queued_events'") ?? 0,
                try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(value), 0) FROM counters WHERE name LIKE 'queued_events_p%'") ?? 0
            )
        }
        try queue.pool.close()
        #expect(integrity == ["ok"], "\(context)")
        let present = Set(try bodies.map { try EventCoding.decode($0).id })
        let lost = record.acknowledged.subtracting(record.handedToSink).subtracting(present)
        #expect(lost.isEmpty, "\(context): \(lost.count) acknowledged events lost, \(present.count) present")
        #expect(depth == Int64(bodies.count), "\(context): depth counter \(depth), rows \(bodies.count)")
        #expect(depthByPriority == depth, "\(context): per-priority counters \(depthByPriority), depth \(depth)")
    }
}

private let powerCutIDs = EventIDGenerator()

private func powerCutEvent(device: String, dedupKey: String, padding: Int) -> Event {
    let now = Timestamp.now
    return Event(
        id: powerCutIDs.next(), kind: .accessGranted, occurredAt: now, receivedAt: now, site: "s",
        device: DeviceRef(id: device, vendor: "v", type: .doorController), priority: nil,
        attributes: ["pad": .string(String(repeating: "x", count: padding))],
        source: Source(driver: "test", dedupKey: dedupKey, fingerprint: nil))
}
