import Foundation
@testable import GatehouseCore
import GatehouseQueue
import GatehouseSinks
import GatehouseTesting
import Testing

/// The file sink: NDJSON lines, fsync per batch, rotation by size.
@Suite struct FileSinkTests {
    private func fileConfig(_ path: String, rotateBytes: Int64, keepFiles: Int) -> SinkConfig {
        SinkConfig(
            name: "outbox", batchMaxEvents: 40, backoffInitialSeconds: 0.02, backoffMaxSeconds: 0.2,
            settings: FileSinkConfig(path: path, rotateBytes: rotateBytes, keepFiles: keepFiles))
    }

    private func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            .dropLast().map(String.init)
    }

    @Test func runnerWritesEveryEventAsOneLineInForwardingOrder() async throws {
        let store = try await TestQueue(sinks: ["outbox"])
        defer { store.remove() }
        let access = try await store.append(150, .doorOpened)
        let alarms = try await store.append(10, .doorForced)
        // A directory that does not exist yet: the sink creates it.
        let path = store.directory.appendingPathComponent("outbox/nested/events.ndjson").path

        let running = try RunningSink(fileConfig(path, rotateBytes: 64 << 20, keepFiles: 3), queue: store.queue)
        let drained = await eventually { try await store.queue.stats().depth == 0 }
        await running.finish()
        #expect(drained)

        let written = try lines(path)
        let expected = try (alarms + access).map(body(of:))
        #expect(written == expected)
        #expect(running.runner.status.deliveredEvents == 160)
        #expect(running.runner.status.deliveredBatches == 4)
        #expect(!FileManager.default.fileExists(atPath: path + ".1"))
    }

    @Test func rotatesAtTheSizeLimitAndKeepsKeepFiles() async throws {
        let store = try await TestQueue(sinks: ["outbox"])
        defer { store.remove() }
        let events = try await store.append(120, .accessGranted)
        let stored = try store.queue.nextBatch(sink: "outbox", maxEvents: 1000)
        let lineBytes = stored[0].body.count + 1
        let rotateBytes = Int64(lineBytes * 10 + lineBytes / 2)  // room for 10 whole lines per file
        let path = store.directory.appendingPathComponent("out/events.ndjson").path
        let sink = FileSink(name: "outbox", config: FileSinkConfig(path: path, rotateBytes: rotateBytes, keepFiles: 2), logger: testLogger())

        // Batches of 7 do not line up with files of 10: rotation must happen inside a batch.
        for start in stride(from: 0, to: stored.count, by: 7) {
            let batch = Array(stored[start..<min(start + 7, stored.count)])
            #expect(await sink.send(SinkBatch(sink: "outbox", events: batch)) == .delivered)
        }
        await sink.shutdown()

        let manager = FileManager.default
        #expect(manager.fileExists(atPath: path + ".1"))
        #expect(manager.fileExists(atPath: path + ".2"))
        #expect(!manager.fileExists(atPath: path + ".3"))
        for file in [path, path + ".1", path + ".2"] {
            let size = try #require(try manager.attributesOfItem(atPath: file)[.size] as? Int64)
            #expect(size <= rotateBytes)
        }
        #expect(try lines(path + ".2").count == 10)
        #expect(try lines(path + ".1").count == 10)
        // Oldest to newest, the kept files hold the last 20 events plus the current file, in order.
        let kept = try lines(path + ".2") + lines(path + ".1") + lines(path)
        let newest = try events.suffix(kept.count).map(body(of:))
        #expect(kept == newest)
        // 120 events at 10 a file: the current file is full too, as a file rotates only when the next line comes.
        #expect(kept.count == 30)
    }

    @Test func unwritablePathIsRetryableNotDelivered() async throws {
        let store = try await TestQueue(sinks: ["outbox"])
        defer { store.remove() }
        try await store.append(3, .accessGranted)
        let stored = try store.queue.nextBatch(sink: "outbox", maxEvents: 10)
        // A regular file where the directory should be.
        let blocker = store.directory.appendingPathComponent("blocker").path
        #expect(FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8)))
        let sink = FileSink(
            name: "outbox", config: FileSinkConfig(path: blocker + "/events.ndjson", rotateBytes: 1 << 20, keepFiles: 1),
            logger: testLogger())
        let result = await sink.send(SinkBatch(sink: "outbox", events: stored))
        await sink.shutdown()
        guard case .retryable(_, let reason) = result else {
            Issue.record("expected retryable, got \(result)")
            return
        }
        #expect(reason.contains(blocker))
    }
}
