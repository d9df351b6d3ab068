import CompressNIO
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A real HTTP server standing in for the central store: records every event it accepts (with
/// repeats, so duplicates are countable) and can be switched to refuse or fail on demand.
///
/// Used by the demo, the test suites and the benchmarks; fast enough to absorb 50,000+ events/s
/// in a release build because it finds each event's id with a byte scan instead of a JSON parser.
public final class CentralReceiver: Sendable {
    /// Largest request body accepted, after and before gunzip.
    static let maxBodyBytes = 64 << 20

    public let host: String
    private let requestedPort: Int
    private let expectedBearer: String?
    private let hmacKey: SymmetricKey?
    private let signatureHeader: HTTPField.Name?
    private let idempotencyHeader: HTTPField.Name?
    private let recordFile: String?
    private let keepBodies: Bool
    private let idKey: String
    private let logger: Logger
    private let state = Mutex(State())
    private let recorder = Mutex<FileHandle?>(nil)
    private let server = SimulatedServer(name: "central receiver")

    /// Does no I/O; `run()` binds the port (0 picks a free one, see `waitUntilRunning()`).
    /// `keepBodies: false` keeps only ids and counts, for long benchmark runs. `idKey` is the
    /// top-level key that identifies an event (another forwarder's output, in the benchmarks).
    public init(
        host: String = "127.0.0.1", port: Int = 0, expectedBearer: String? = nil, hmacSecret: String? = nil,
        recordFile: String? = nil, signatureHeader: String = "X-Gatehouse-Signature",
        idempotencyHeader: String = "Idempotency-Key", keepBodies: Bool = true, idKey: String = "id", logger: Logger
    ) {
        self.host = host
        self.requestedPort = port
        self.expectedBearer = expectedBearer
        self.hmacKey = hmacSecret.map { SymmetricKey(data: Data($0.utf8)) }
        self.signatureHeader = HTTPField.Name(signatureHeader)
        self.idempotencyHeader = HTTPField.Name(idempotencyHeader)
        self.recordFile = recordFile
        self.keepBodies = keepBodies
        self.idKey = idKey
        self.logger = logger
    }

    /// Serves until the task is cancelled.
    public func run() async throws {
        if let recordFile {
            let directory = (recordFile as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            if !FileManager.default.fileExists(atPath: recordFile) {
                _ = FileManager.default.createFile(atPath: recordFile, contents: nil)
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: recordFile))
            try handle.seekToEnd()
            recorder.withLock { $0 = handle }
        }
        defer {
            recorder.withLock { handle in
                try? handle?.close()
                handle = nil
            }
        }
        try await server.run(host: host, port: requestedPort, logger: logger) { request in await self.respond(to: request) }
    }

    /// Waits until the server listens and returns its port; throws if it failed to start or
    /// did not start within `timeout`.
    public func waitUntilRunning(timeout: Duration = .seconds(60)) async throws -> Int {
        try await server.waitUntilRunning(timeout: timeout) { ReceiverError(description: "\($0) (\(host):\(requestedPort))") }
    }

    /// Changes how the following requests are answered.
    public func setMode(_ mode: Mode) {
        state.withLock { $0.mode = mode }
    }

    /// A copy of everything recorded so far.
    public var snapshot: Snapshot {
        state.withLock { $0.snapshot }
    }

    /// Polls until at least `uniqueCount` distinct ids arrived; false when `timeout` passed first.
    /// Cheap figures for polling while a large backlog drains.
    public var progress: Progress {
        state.withLock { Progress(uniqueCount: $0.counts.count, totalReceived: $0.totalReceived, firstAlarmAt: $0.firstAlarmAt) }
    }

    public func waitFor(uniqueCount: Int, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            if state.withLock({ $0.counts.count }) >= uniqueCount { return true }
            if ContinuousClock.now >= deadline { return false }
            do {
                try await Task.sleep(for: .milliseconds(5))
            } catch {
                return false
            }
        }
    }

    // MARK: - Requests

    private func respond(to incoming: Request) async -> Response {
        var request = incoming
        let mode = state.withLock { s -> Mode in
            s.requests += 1
            return s.mode
        }
        guard request.method == .post else { return Self.answer(.methodNotAllowed, "{\"error\":\"POST only\"}") }
        if mode == .unavailable {
            var response = Self.answer(.serviceUnavailable, "{\"error\":\"central store unavailable\"}")
            response.headers[.retryAfter] = "1"
            return response
        }
        let raw: ByteBuffer
        do {
            raw = try await request.collectBody(upTo: Self.maxBodyBytes)
        } catch {
            return Self.answer(.contentTooLarge, "{\"error\":\"body larger than \(Self.maxBodyBytes) bytes\"}")
        }
        if let refusal = authenticate(request, body: raw) {
            state.withLock { $0.unauthorizedRequests += 1 }
            return Self.answer(.unauthorized, "{\"error\":\"\(refusal)\"}")
        }
        let encoding = request.headers[.contentEncoding]?.lowercased()
        var body = raw
        if encoding == "gzip" {
            do {
                body = try body.decompress(with: .gzip(), maxSize: Self.maxBodyBytes)
            } catch {
                return Self.answer(.badRequest, "{\"error\":\"invalid gzip body\"}")
            }
        }
        let parsed: (ids: [String], texts: [String]?)
        do {
            parsed = try body.withUnsafeReadableBytes { bytes in
                let objects = try Self.scanObjects(bytes, idKey: idKey)
                var ids: [String] = []
                ids.reserveCapacity(objects.count)
                for (index, object) in objects.enumerated() {
                    guard let id = object.id else { throw ScanError(description: "event \(index + 1) has no \\\"\(idKey)\\\"") }
                    ids.append(id)
                }
                let texts = (keepBodies || recordFile != nil)
                    ? objects.map { String(decoding: UnsafeRawBufferPointer(rebasing: bytes[$0.range]), as: UTF8.self) } : nil
                return (ids, texts)
            }
        } catch {
            return Self.answer(.badRequest, "{\"error\":\"\(error)\"}")
        }
        if case .reject(let refused, let status) = mode, let id = parsed.ids.first(where: refused.contains) {
            return Self.answer(HTTPResponse.Status(code: status), "{\"error\":\"event \(id) refused\"}")
        }
        let key = idempotencyHeader.flatMap { request.headers[$0] }
        // Events are written with sorted keys and no spaces, so the priority appears literally.
        let needsAlarmScan = state.withLock { $0.firstAlarmAt == nil }
        let sawAlarm = needsAlarmScan && body.readableBytesView.firstRange(of: Self.alarmNeedle) != nil
        let arrived = Date()
        state.withLock { s in
            if sawAlarm, s.firstAlarmAt == nil { s.firstAlarmAt = Date() }
            s.acceptedRequests += 1
            s.totalReceived += parsed.ids.count
            s.lastIdempotencyKey = key
            s.lastContentEncoding = encoding
            s.arrivalOrder.append(contentsOf: parsed.ids)
            for (index, id) in parsed.ids.enumerated() {
                s.counts[id, default: 0] += 1
                if keepBodies, let texts = parsed.texts {
                    s.bodies[id] = texts[index]
                    if s.firstArrivedAt[id] == nil { s.firstArrivedAt[id] = arrived }
                }
            }
        }
        if let texts = parsed.texts, recordFile != nil { record(texts) }
        return Self.answer(.ok, "{\"accepted\":\(parsed.ids.count)}")
    }

    /// Nil when the request carries what the receiver was configured to expect, else why not.
    private func authenticate(_ request: Request, body: ByteBuffer) -> String? {
        if let expectedBearer, request.headers[.authorization] != "Bearer \(expectedBearer)" {
            return "missing or wrong bearer token"
        }
        if let hmacKey {
            guard let signatureHeader, let signature = request.headers[signatureHeader] else { return "missing signature" }
            let mac = body.withUnsafeReadableBytes { HMAC<SHA256>.authenticationCode(for: $0, using: hmacKey) }
            let expected = "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
            if signature != expected { return "signature does not match the body" }
        }
        return nil
    }

    private func record(_ texts: [String]) {
        var data = Data()
        for text in texts {
            data.append(contentsOf: text.utf8)
            data.append(0x0A)
        }
        recorder.withLock { handle in
            do {
                try handle?.write(contentsOf: data)
            } catch {
                logger.error("central receiver: cannot append to \(recordFile ?? "-"): \(error)")
            }
        }
    }

    static let alarmNeedle = Array(#""priority":"alarm""#.utf8)

    private static func answer(_ status: HTTPResponse.Status, _ json: String) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: json)))
    }
}

/// Why the central receiver could not start.
public struct ReceiverError: Error, Sendable, CustomStringConvertible {
    public let description: String
}
