import Foundation
import GatehouseCore
import GatehouseQueue
import GatehouseTesting
import Testing

/// `gatehouse quarantine discard` on a real queue file, through the built binary.
@Suite("Quarantine command")
struct QuarantineCommandTests {
    @Test("discard records who and why and erases the payload; list hides it, list --all shows it; a second discard is refused")
    func discard() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-quarantine-cli-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory + "/state", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/gatehouse.yaml"
        try """
            site: s
            state_directory: \(directory)/state
            sinks:
              - {name: local, type: file, path: \(directory)/events.ndjson}

            """.write(toFile: config, atomically: true, encoding: .utf8)
        let queue = try EventQueue(
            path: directory + "/state/" + "queue.sqlite", settings: QueueSettings(), diskBudgetBytes: 1 << 30, clock: MachineClock(),
            logger: testLogger())
        let payload = Data(#"{"plate":"川A12345"}"#.utf8)
        let id = try await queue.quarantine(QuarantineRecord(deviceID: "gate-1", driver: "profile", reason: "no-profile", payload: payload))

        let discarded = try await DaemonProcess.runTool(["quarantine", "discard", "\(id)", "--reason", "test push", "--by", "installer", "--config", config])
        #expect(discarded.status == 0, "\(discarded.stdout)\(discarded.stderr)")
        #expect(discarded.stdout.contains("discarded by installer") && discarded.stdout.contains(PayloadSealer.digest(payload)))
        let again = try await DaemonProcess.runTool(["quarantine", "discard", "\(id)", "--reason", "again", "--config", config])
        #expect(again.status != 0)
        #expect(again.stderr.contains("already discarded"), "\(again.stderr)")
        let waiting = try await DaemonProcess.runTool(["quarantine", "list", "--config", config])
        #expect(waiting.stdout.contains("quarantine is empty"), "\(waiting.stdout)")
        let all = try await DaemonProcess.runTool(["quarantine", "list", "--all", "--config", config])
        #expect(all.stdout.contains("discarded") && all.stdout.contains("by installer: test push"), "\(all.stdout)")
        let shown = try await DaemonProcess.runTool(["quarantine", "show", "\(id)", "--config", config])
        #expect(shown.stdout.contains("erased when discarded") && !shown.stdout.contains("川A12345"), "\(shown.stdout)")
        let entry = try #require(try await queue.quarantineEntry(id: id))
        #expect(entry.discarded?.by == "installer" && entry.discarded?.reason == "test push" && entry.payload.isEmpty)
    }
}
