import AsyncHTTPClient
import Foundation
@testable import GatehouseCore
@testable import GatehouseQueue
import GatehouseTesting
import Hummingbird
import Logging
import NIOCore
import Synchronization
import Testing

@testable import GatehouseIngest

/// The push path's refusal table, over HTTP on a real listener, for every push driver.
@Suite("push path")
struct PushPathTests {
    static let repository = repositoryRoot

    static let devices = """
          - id: gj-1
            driver: generic-json
            type: lpr-camera
          - id: hik-1
            driver: hikvision-acs
            type: door-controller
          - id: zk-1
            driver: zkteco
            type: access-terminal
            serial: ZK0001
          - id: cam-1
            driver: profile
            type: lpr-camera
            options: {profile: zhenshi-lpr, barrier: camera}
        """

    /// One request per push driver, each carrying one event: (driver, path, content type, body).
    static func requests() throws -> [(driver: String, path: String, contentType: String, body: [UInt8])] {
        let plate = try Data(contentsOf: repository.appendingPathComponent("adapters/zhenshi-lpr/samples/camera-decides.json"))
        return [
            ("generic-json", "/v1/devices/gj-1/events", "application/json", Array(#"{"kind":"door.opened","dedupKey":"gj-7"}"#.utf8)),
            ("hikvision-acs", "/v1/hikvision-acs/hik-1", "application/json", Array(HikvisionACSTests.sample.utf8)),
            ("zkteco", "/iclock/cdata?SN=ZK0001&table=ATTLOG&Stamp=9", "text/plain", Array("1024\t2025-03-14 07:58:31\t0\t15\t0\t0\t0\t0\n".utf8)),
            ("profile", "/v1/push/zhenshi-lpr/cam-1", "application/json", Array(plate)),
        ]
    }

    /// The ingest listener on 127.0.0.1, port 0, serving `fixture`'s context.
    static func listen(_ fixture: IngestFixture) async throws -> (Task<Void, any Error>, Int) {
        let port = Mutex<Int?>(nil)
        var logger = Logger(label: "push-path-tests")
        logger.logLevel = .critical
        let app = IngestListener.make(
            config: fixture.config.ingest, context: fixture.context, sourceGuard: SourceGuard(config: fixture.config.ingest, clock: fixture.clock),
            drivers: DriverRegistry.makeAll(), logger: logger, onRunning: { bound in port.withLock { $0 = bound } })
        let task = Task { try await app.runService() }
        _ = await eventually(timeout: .seconds(60), poll: .milliseconds(25)) { port.withLock { $0 } != nil }
        if let bound = port.withLock({ $0 }) { return (task, bound) }
        task.cancel()
        throw CancellationError()
    }

    /// Status, Retry-After and body of each driver's request.
    static func send(to fixture: IngestFixture) async throws -> [String: (status: Int, retryAfter: String?, body: String)] {
        let (server, port) = try await listen(fixture)
        defer { server.cancel() }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        var replies: [String: (status: Int, retryAfter: String?, body: String)] = [:]
        do {
            for (driver, path, contentType, body) in try requests() {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: contentType)
                request.body = .bytes(ByteBuffer(bytes: body))
                let response = try await client.execute(request, timeout: .seconds(30))
                let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
                replies[driver] = (Int(response.status.code), response.headers.first(name: "Retry-After"), text)
            }
        } catch {
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
        return replies
    }

    static let extra = "ingest: {host: 127.0.0.1, port: 0}\nadapters_directory: \(repository.appendingPathComponent("adapters").path)"

    @Test("every push driver takes its event with a success reply once it is committed")
    func accepted() async throws {
        let fixture = try IngestFixture(devices: Self.devices, extra: Self.extra)
        let replies = try await Self.send(to: fixture)
        for (driver, reply) in replies.sorted(by: { $0.key < $1.key }) {
            #expect(reply.status == 200, "\(driver): \(reply.body)")
        }
        let stored = Set(try await fixture.events().filter { $0.kind != .deviceOnline }.map(\.device.id))
        #expect(stored == ["gj-1", "hik-1", "zk-1", "cam-1"])
        await fixture.finish()
    }

    @Test("each push device's last raw payload is kept in memory and shown under the privacy policy: the plate masked, never in clear")
    func lastPayload() async throws {
        let fixture = try IngestFixture(devices: Self.devices, extra: Self.extra + "\nprivacy: {plate: mask}")
        _ = try await Self.send(to: fixture)
        let camera = try #require(fixture.pipeline.lastPayload(of: "cam-1"))
        #expect(camera.text.contains("川F1***5") && camera.text.contains("东门入口"), "\(camera.text)")
        #expect(!camera.text.contains("川F12345") && !camera.text.contains("F12345"))
        #expect(camera.mapped && camera.contentType == "application/json" && camera.byteCount == camera.shownBytes)
        let generic = try #require(fixture.pipeline.lastPayload(of: "gj-1"))
        #expect(generic.text == #"{"kind":"door.opened","dedupKey":"gj-7"}"#)
        // hikvision-acs decodes to its own type, not drafts: its values are not known, so every value-like word is hidden.
        #expect(fixture.pipeline.lastPayload(of: "hik-1")?.mapped == false)
        // ZKTeco's upload is kept as unmapped (user tables carry names the drafts do not hold).
        let zkteco = try #require(fixture.pipeline.lastPayload(of: "zk-1"))
        #expect(!zkteco.mapped && zkteco.byteCount == "1024\t2025-03-14 07:58:31\t0\t15\t0\t0\t0\t0\n".utf8.count, "\(zkteco)")
        await fixture.finish()
    }

    @Test("a full disk budget is 503 queue-full with Retry-After 30 from every push driver")
    func budgetFull() async throws {
        let fixture = try IngestFixture(devices: Self.devices, extra: Self.extra, budget: 1)
        let replies = try await Self.send(to: fixture)
        #expect(replies.count == 4)
        for (driver, reply) in replies.sorted(by: { $0.key < $1.key }) {
            #expect(reply.status == 503, "\(driver): \(reply.body)")
            #expect(reply.retryAfter == String(PushRefusal.queueFullRetryAfterSeconds), "\(driver)")
            // generic-json lists which events were refused; ZKTeco firmware reads text.
            let expected = driver == "zkteco" ? "ERROR: disk budget" : driver == "generic-json" ? "\"status\":\"refused\"" : "\"error\":\"queue-full\""
            #expect(reply.body.contains(expected), "\(driver): \(reply.body)")
        }
        await fixture.finish()
    }

    @Test("a queue that cannot commit is 503 not-stored with Retry-After 5 from every push driver, never 500")
    func queueFails() async throws {
        let fixture = try IngestFixture(devices: Self.devices, extra: Self.extra)
        fixture.queue.close()
        let replies = try await Self.send(to: fixture)
        #expect(replies.count == 4)
        for (driver, reply) in replies.sorted(by: { $0.key < $1.key }) {
            #expect(reply.status == 503, "\(driver): \(reply.body)")
            #expect(reply.retryAfter == String(PushRefusal.notStoredRetryAfterSeconds), "\(driver)")
            #expect(reply.body.contains(driver == "zkteco" ? "ERROR: could not queue it" : "\"error\":\"not-stored\""), "\(driver): \(reply.body)")
        }
        await fixture.finish()
    }

    @Test("the refusal table: queue-full 30 s, not-stored 5 s, invalid 422 with the quarantine id")
    func table() {
        let full = PushRefusal.refusal(for: QueueFullError(description: "disk budget of 1 bytes is full"))
        #expect(full.status.code == 503 && full.code == "queue-full" && full.retryAfterSeconds == 30)
        let failed = PushRefusal.refusal(for: CancellationError())
        #expect(failed.status.code == 503 && failed.code == "not-stored" && failed.retryAfterSeconds == 5)
        let kept = Rejection(.forbidden, "source-not-allowed", "not in allow_from")
        #expect(PushRefusal.refusal(for: kept) == kept)
        let id = EventIDGenerator().next()
        #expect(PushRefusal.refusal(for: [.stored(id), .duplicate(of: id)]) == nil)
        #expect(PushRefusal.refusal(for: [.stored(id), .refused("full")])?.code == "queue-full")
        let invalid = PushRefusal.invalid("kind: unknown", quarantineID: 7)
        #expect(invalid.status.code == 422 && invalid.extra["quarantineId"] == "7")
    }
}
