import AsyncHTTPClient
import Foundation
@testable import GatehouseCore
@testable import GatehouseQueue
import GatehouseTesting
import NIOCore
import Synchronization
import Testing

@testable import GatehouseIngest

/// The edges of the ingest listener on a real server: bodies over the limit (declared, chunked,
/// announced with `Expect: 100-continue`), numbers kept exactly, and overload refused at once.
@Suite("listener edges")
struct ListenerEdgeTests {
    /// A small body limit, and an idle timeout far longer than any wait here: a connection that
    /// ends did so because the listener ended it, not because it idled out.
    static let extra = PushPathTests.extra.replacingOccurrences(
        of: "ingest: {host: 127.0.0.1, port: 0}", with: "ingest: {host: 127.0.0.1, port: 0, max_body_bytes: 2048, idle_timeout_seconds: 600}")

    /// Sends `parts` on a new connection and reads until the server closes it; `closed` is false
    /// when it was still open after `bound` (a safety net, far beyond any normal exchange). A part
    /// the server stops reading is an issue: its send gives up after 30 s instead of blocking.
    static func exchange(port: Int, _ parts: [String], bound: Duration = .seconds(60)) async throws -> (reply: String, closed: Bool) {
        let fd = try LoopbackPort.connect(port: port)
        defer { close(fd) }
        var limit = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        for part in parts {
            let bytes = Array(part.utf8)
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard n > 0 else { break }
                offset += n
            }
            if offset < bytes.count {
                Issue.record("the server stopped reading: \(offset) of a part's \(bytes.count) bytes sent")
                break
            }
        }
        var received: [UInt8] = []
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let deadline = ContinuousClock.now + bound
        while ContinuousClock.now < deadline {
            if poll(&poller, 1, 0) > 0 {
                var buffer = [UInt8](repeating: 0, count: 4096)
                let n = recv(fd, &buffer, buffer.count, 0)
                if n <= 0 { return (String(decoding: received, as: UTF8.self), true) }
                received += buffer.prefix(n)
            } else {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        return (String(decoding: received, as: UTF8.self), false)
    }

    /// A fixture with `extra` config and its listener; cancel the task and finish the fixture after.
    static func serve(_ extra: String = Self.extra) async throws -> (IngestFixture, Task<Void, any Error>, Int) {
        let fixture = try IngestFixture(devices: PushPathTests.devices, extra: extra)
        let (server, port) = try await PushPathTests.listen(fixture)
        return (fixture, server, port)
    }

    static let head = "POST /v1/devices/gj-1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"

    @Test("a Content-Length over max_body_bytes gets 413 without 100 Continue, and the connection ends")
    func declaredTooLarge() async throws {
        let (fixture, server, port) = try await Self.serve()
        defer { server.cancel() }
        // The client waits for 100 Continue before sending its 100 kB: it must get the 413 instead.
        let (reply, closed) = try await Self.exchange(port: port, [Self.head + "Content-Length: 100000\r\nExpect: 100-continue\r\n\r\n"])
        #expect(reply.hasPrefix("HTTP/1.1 413"), "\(reply)")
        #expect(!reply.contains("100 Continue"), "\(reply)")
        #expect(reply.contains("body-too-large") && reply.contains("100000 bytes exceeds the limit of 2048"), "\(reply)")
        #expect(closed, "the connection was left open")
        #expect(try await fixture.events().isEmpty)
        await fixture.finish()
    }

    @Test("a chunked body that grows past max_body_bytes gets 413, and the connection ends")
    func chunkedTooLarge() async throws {
        let (fixture, server, port) = try await Self.serve()
        defer { server.cancel() }
        // Five 1000-byte chunks and no last chunk: the sender would go on.
        let chunk = "3e8\r\n" + String(repeating: " ", count: 1000) + "\r\n"
        let (reply, closed) = try await Self.exchange(
            port: port, [Self.head + "Transfer-Encoding: chunked\r\n\r\n"] + Array(repeating: chunk, count: 5))
        #expect(reply.hasPrefix("HTTP/1.1 413"), "\(reply)")
        #expect(reply.lowercased().contains("connection: close"), "\(reply)")
        // The sender went silent without ending its body: closed after a short linger, not the idle timeout.
        #expect(closed, "the connection was left open")
        #expect(try await fixture.events().isEmpty)
        await fixture.finish()
    }

    @Test("a declared body over the limit sent without Expect gets 413, is read to its end, and the connection stays usable")
    func declaredTooLargeSent() async throws {
        let (fixture, server, port) = try await Self.serve()
        defer { server.cancel() }
        // Closing while the client still sends would reset the connection and lose the reply.
        let body = String(repeating: " ", count: 100_000)
        let next = #"{"kind":"door.opened","dedupKey":"after-413"}"#
        let (reply, closed) = try await Self.exchange(port: port, [
            Self.head + "Content-Length: \(body.utf8.count)\r\n\r\n", body,
            Self.head + "Content-Length: \(next.utf8.count)\r\nConnection: close\r\n\r\n", next,
        ])
        #expect(reply.hasPrefix("HTTP/1.1 413"), "\(reply)")
        #expect(reply.contains("HTTP/1.1 200"), "\(reply)")
        #expect(closed)
        #expect(try await fixture.events().filter { $0.kind != .deviceOnline }.map(\.source.dedupKey) == ["after-413"])
        await fixture.finish()
    }

    @Test("a client that asks to close and sends a body far over the limit gets its 413, and its body is read to its end")
    func declaredTooLargeWithClose() async throws {
        let (fixture, server, port) = try await Self.serve()
        defer { server.cancel() }
        // Megabytes more than the sockets buffer. The server replies after the head and, asked to
        // close, must still read the rest: a server that stopped reading would leave the sender
        // stuck, and one that closed on it would reset the connection and lose the reply.
        let body = String(repeating: " ", count: 10 << 20)
        let (reply, closed) = try await Self.exchange(
            port: port, [Self.head + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n", body])
        #expect(reply.hasPrefix("HTTP/1.1 413") && reply.contains("body-too-large"), "\(reply)")
        #expect(closed)
        #expect(try await fixture.events().filter { $0.kind != .deviceOnline }.isEmpty)
        await fixture.finish()
    }

    @Test("within the limit, Expect: 100-continue still gets 100 Continue and the event is stored")
    func expectWithinLimit() async throws {
        let (fixture, server, port) = try await Self.serve()
        defer { server.cancel() }
        let body = #"{"kind":"door.opened","dedupKey":"e-1"}"#
        let (reply, _) = try await Self.exchange(
            port: port, [Self.head + "Content-Length: \(body.utf8.count)\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n", body])
        #expect(reply.hasPrefix("HTTP/1.1 100 Continue"), "\(reply)")
        #expect(reply.contains("HTTP/1.1 200"), "\(reply)")
        #expect(try await fixture.events().filter { $0.kind != .deviceOnline }.map(\.source.dedupKey) == ["e-1"])
        await fixture.finish()
    }

    @Test("pushed numbers are stored exactly as sent: ids above 2^53, long decimals, values beyond a double")
    func numbersKeptExactly() async throws {
        let (fixture, server, port) = try await Self.serve(PushPathTests.extra)
        defer { server.cancel() }
        // Keys in sorted order, as the queue writes them.
        let attributes = #"{"big":1e400,"precise":0.1000000000000000055511151231257827,"recordId":18446744073709551617,"small":1.5}"#
        let body = #"{"kind":"door.opened","dedupKey":"n-1","attributes":"# + attributes + "}"
        let (reply, _) = try await Self.exchange(
            port: port, [Self.head + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n", body])
        #expect(reply.hasPrefix("HTTP/1.1 200"), "\(reply)")
        try await fixture.queue.registerSinks(["test"])
        let stored = try fixture.queue.nextBatch(sink: "test", maxEvents: 10).map { String(decoding: $0.body, as: UTF8.self) }
        let event = try #require(stored.first { $0.contains("n-1") })
        #expect(event.contains(#""attributes":"# + attributes), "\(event)")
        await fixture.finish()
    }

    @Test("a profile refuses a number beyond a double in its dedup key: quarantined with the field named, the reply without it")
    func profileBeyondRange() async throws {
        let (fixture, server, port) = try await Self.serve(PushPathTests.extra)
        defer { server.cancel() }
        let sample = try String(contentsOf: PushPathTests.repository.appendingPathComponent("adapters/zhenshi-lpr/samples/plateid-beyond-double.json"), encoding: .utf8)
        let (reply, _) = try await Self.exchange(
            port: port,
            ["POST /v1/push/zhenshi-lpr/cam-1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(sample.utf8.count)\r\nConnection: close\r\n\r\n", sample])
        #expect(reply.contains(#""plateid":0"#) && !reply.contains(":inf"), "\(reply)")
        #expect(try await fixture.events().filter { $0.kind != .deviceOnline }.isEmpty)
        let entries = try await fixture.queue.quarantineEntries(limit: 10)
        #expect(entries.count == 1)
        #expect(entries.first?.reason.contains("AlarmInfoPlate.result.PlateResult.plateid") == true, "\(entries.first?.reason ?? "")")
        await fixture.finish()
    }

    @Test("over queue.max_waiting_appends, every push driver gets 503 overloaded with Retry-After 1 at once; the admitted commit")
    func overloaded() async throws {
        let fixture = try IngestFixture(devices: PushPathTests.devices, extra: PushPathTests.extra + "\nqueue: {max_waiting_appends: 1}")
        let gate = Gate()
        fixture.queue.beforeCommit.withLock { $0 = { await gate.pass() } }
        // One append held in the committer, one waiting in line: the line is full.
        let queue = fixture.queue
        let held = Task { try await queue.append([fixture.pipeline.makeEvent(EventDraft(kind: .doorOpened), device: fixture.config.devices[0], driver: "test", receivedAt: .now)]) }
        #expect(await eventually { gate.holding == 1 })
        let waiting = Task { try await queue.append([fixture.pipeline.makeEvent(EventDraft(kind: .doorOpened), device: fixture.config.devices[0], driver: "test", receivedAt: .now)]) }
        #expect(await eventually { queue.waitingAppends == 1 })
        let replies = try await PushPathTests.send(to: fixture)
        #expect(replies.count == 4)
        for (driver, reply) in replies.sorted(by: { $0.key < $1.key }) {
            #expect(reply.status == 503, "\(driver): \(reply.body)")
            #expect(reply.retryAfter == String(PushRefusal.overloadedRetryAfterSeconds), "\(driver)")
            let expected = driver == "zkteco" ? "ERROR:" : "\"error\":\"overloaded\""
            #expect(reply.body.contains(expected), "\(driver): \(reply.body)")
        }
        gate.open()
        #expect(try await held.value.allSatisfy(\.isAccepted))
        #expect(try await waiting.value.allSatisfy(\.isAccepted))
        await fixture.finish()
    }
    @Test("pushes not yet at the committer count too: over queue.max_waiting_appends unanswered, the next gets 503 overloaded before its body is read")
    func overloadedBeforeTheCommit() async throws {
        let (fixture, server, port) = try await Self.serve(Self.extra + "\nqueue: {max_waiting_appends: 2}")
        defer { server.cancel() }
        // Two requests whose bodies are still on their way: in the listener, nowhere near the
        // committer, as requests are when the CPU (not the commit) is what is short.
        var slow: [Int32] = []
        defer { for fd in slow { close(fd) } }
        for _ in 0..<2 {
            let fd = try LoopbackPort.connect(port: port)
            slow.append(fd)
            let part = Array((Self.head + "Content-Length: 100\r\n\r\n{").utf8)
            _ = part.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        #expect(await eventually { fixture.queue.admittedRequests == 2 })
        #expect(fixture.queue.waitingAppends == 0)
        let body = #"{"kind":"door.opened"}"#
        let request = Self.head + "Connection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
        let (refused, _) = try await Self.exchange(port: port, [request])
        #expect(refused.hasPrefix("HTTP/1.1 503"), "\(refused)")
        #expect(refused.lowercased().contains("retry-after: \(PushRefusal.overloadedRetryAfterSeconds)"), "\(refused)")
        #expect(refused.contains("\"error\":\"overloaded\""), "\(refused)")
        // Once the slow senders are gone the line is free again and the same request is stored.
        for fd in slow { close(fd) }
        slow = []
        #expect(await eventually { fixture.queue.admittedRequests == 0 })
        let (stored, _) = try await Self.exchange(port: port, [request])
        #expect(stored.hasPrefix("HTTP/1.1 200"), "\(stored)")
        #expect(try await fixture.events().contains { $0.kind == .doorOpened })
        await fixture.finish()
    }
    @Test("a body read past request_timeout_seconds is ended by the deadline sweep; a finished one is forgotten")
    func bodyDeadlines() async throws {
        let deadlines = BodyDeadlines()
        let expired = Mutex<[String]>([])
        let late = deadlines.register(timeout: .zero) { expired.withLock { $0.append("late") } }
        let onTime = deadlines.register(timeout: .hours(1)) { expired.withLock { $0.append("on time") } }
        deadlines.finished(onTime)
        #expect(await eventually { expired.withLock { $0 } == ["late"] })
        #expect(deadlines.registered == 0)
        deadlines.finished(late)
    }
}
