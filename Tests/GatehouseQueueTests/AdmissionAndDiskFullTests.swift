import Foundation
@testable import GatehouseCore
@testable import GatehouseQueue
import GatehouseTesting
import Synchronization
import Testing

@Suite("Admission and a full file system")
struct AdmissionAndDiskFullTests {
    @Test("appends beyond max_waiting_appends are refused at once while the commit is held; the admitted ones are stored")
    func admission() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-admission-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let queue = try EventQueue(
            path: directory + "/queue.sqlite", settings: QueueSettings(maxWaitingAppends: 3), diskBudgetBytes: 1 << 30,
            clock: MachineClock(), logger: testLogger())
        let gate = Gate()
        queue.beforeCommit.withLock { $0 = { await gate.pass() } }
        let runner = Task { await queue.run() }
        let first = makeEvent()
        let held = Task { try await queue.append([first]) }
        #expect(await eventually { gate.holding == 1 && queue.waitingAppends == 0 })
        let admitted = (0..<3).map { _ in makeEvent() }
        let waiting = admitted.map { event in Task { try await queue.append([event]) } }
        #expect(await eventually { queue.waitingAppends == 3 })
        // The line is full: refused without waiting, nothing stored.
        await #expect(throws: QueueOverloadedError.self) { _ = try await queue.append([makeEvent()]) }
        #expect(try await queue.stats().waitingAppends == 3)
        gate.open()
        #expect(try await held.value == [.stored(first.id)])
        for (event, task) in zip(admitted, waiting) { #expect(try await task.value == [.stored(event.id)]) }
        #expect(try await queue.stats().depth == 4)
        queue.close()
        await runner.value
    }

    /// Mounts a tmpfs of `megabytes` on a new directory; nil when this process may not mount.
    static func smallFileSystem(megabytes: Int) throws -> String? {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-diskfull-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", directory]
        try mount.run()
        mount.waitUntilExit()
        return mount.terminationStatus == 0 ? directory : nil
    }

    static func unmount(_ directory: String) {
        let umount = Process()
        umount.executableURL = URL(fileURLWithPath: "/bin/umount")
        umount.arguments = ["-l", directory]
        try? umount.run()
        umount.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
    }

    @Test(
        "a full file system refuses appends with QueueDiskFullError and says disk full; deliveries are recorded without re-sending; space returns; nothing acknowledged is lost",
        .enabled(if: getuid() == 0, "needs root to mount a small tmpfs for the queue (skipped: not running as root)"))
    func diskFull() async throws {
        guard let directory = try Self.smallFileSystem(megabytes: 8) else {
            Issue.record("running as root but could not mount a tmpfs")
            return
        }
        defer { Self.unmount(directory) }
        let path = directory + "/queue.sqlite"
        let settings = QueueSettings(commitMaxEvents: 50)
        // A budget far larger than the file system: the disk fills before the budget evicts.
        let queue = try EventQueue(path: path, settings: settings, diskBudgetBytes: 1 << 30, clock: MachineClock(), logger: testLogger())
        let runner = Task { await queue.run() }
        try await queue.registerSinks(["central"])
        #expect(await eventually { FileManager.default.fileExists(atPath: path + ".reserve") })
        #expect(queue.budgetWarning(usedBytes: 0)?.contains("exceeds what the file system") == true)

        var stored: [EventID] = []
        var refusal: (any Error)?
        for _ in 0..<5000 {
            let event = makeEvent(padding: 4000)
            do {
                if try await queue.append([event]) == [.stored(event.id)] { stored.append(event.id) }
            } catch {
                refusal = error
                break
            }
        }
        #expect(refusal is QueueDiskFullError, "\(String(describing: refusal))")
        #expect(stored.count > 400)
        #expect(queue.diskFullReason?.hasPrefix("disk full") == true)
        #expect(try await queue.stats().diskFull?.hasPrefix("disk full") == true)
        #expect(!FileManager.default.fileExists(atPath: path + ".reserve"), "the reserve is given back when the disk fills")
        // While full, an append is refused before it touches the database.
        await #expect(throws: QueueDiskFullError.self) { _ = try await queue.append([makeEvent()]) }

        // The centre acknowledges a batch: recorded, and never handed out again.
        let delivered = try queue.nextBatch(sink: "central", maxEvents: 400, maxBytes: .max)
        #expect(delivered.count == 400)
        try await queue.acknowledge(sink: "central", delivered)
        let next = try queue.nextBatch(sink: "central", maxEvents: 400, maxBytes: .max)
        #expect(Set(next.map(\.seq)).isDisjoint(with: delivered.map(\.seq)), "a delivered batch would be sent again")

        // Deleting what was delivered gave space back: the reserve fits again and appends are taken.
        let after = makeEvent()
        #expect(try await queue.append([after]) == [.stored(after.id)])
        #expect(queue.diskFullReason == nil)
        #expect(try await queue.stats().diskFull == nil)
        queue.close()
        await runner.value

        // As after a restart: every acknowledged event not delivered is there, the delivery is recorded.
        let reopened = try EventQueue(path: path, settings: settings, diskBudgetBytes: 1 << 30, clock: MachineClock(), logger: testLogger())
        try await reopened.registerSinks(["central"])
        let remaining = try await reopened.everything(sink: "central").map(storedID)
        let deliveredIDs = Set(try delivered.map(storedID))
        #expect(Set(remaining) == Set(stored).subtracting(deliveredIDs).union([after.id]))
    }
}
