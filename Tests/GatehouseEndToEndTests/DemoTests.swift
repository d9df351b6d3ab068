import Foundation
import Testing

/// README command one: `gatehouse demo` on embedded defaults, in a fresh directory.
@Suite("gatehouse demo")
struct DemoTests {
    @Test("the demo runs, forwards to its stand-in centre and to the outbox, prints status lines and stops cleanly")
    func demoRuns() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-demo-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let base = Int.random(in: 41_000...49_000)
        let result = try DaemonProcess.runTool(
            ["demo", "--dir", directory, "--duration", "7", "--rate", "40",
             "--ingest-port", String(base), "--admin-port", String(base + 1), "--receiver-port", String(base + 2)],
            timeout: 60)
        #expect(result.status == 0, "\(result.stderr.suffix(2000))")
        #expect(result.stderr.contains("status: devices 8/8 up"), "\(result.stderr.suffix(2000))")
        #expect(result.stderr.contains("gatehouse stopped cleanly"))
        let centre = (try? String(contentsOfFile: directory + "/central/received.ndjson", encoding: .utf8)) ?? ""
        let outbox = (try? String(contentsOfFile: directory + "/outbox/events.ndjson", encoding: .utf8)) ?? ""
        #expect(centre.split(separator: "\n").count > 50, "the stand-in centre received \(centre.split(separator: "\n").count) events")
        #expect(outbox.split(separator: "\n").count > 50, "the outbox has \(outbox.split(separator: "\n").count) events")
        // The demo's privacy policy masks plates and hashes cards: no clear card number reaches the centre.
        #expect(centre.contains("\"treatment\":\"hashed\"") && centre.contains("\"treatment\":\"masked\""))
    }
}
