import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Plays a Dahua camera (or an Amcrest/Lorex OEM one) on 127.0.0.1: the
/// `eventManager.cgi?action=attach` stream behind HTTP Digest (MD5, qop=auth) with heartbeats and
/// the events a test fires into it (Start/Stop/Pulse, multi-line `data=`, a lying
/// `Content-Length`, garbage or truncated parts on demand), the few `magicBox.cgi` calls
/// clients make first, and RPC `client.notifyEventStream` pushes to a gateway URL as
/// traffic/ITC firmware sends them. Many cameras can run in one process, one port each.
public final class DahuaCamera: Sendable {
    /// One event record as the camera writes it.
    public struct Event: Sendable, Equatable {
        public var code: String
        public var action: String
        /// 0-based, as the camera counts.
        public var index: Int
        /// The `data=` JSON text, written as given (pretty-printed over lines, if it is).
        public var data: String?

        public init(code: String, action: String, index: Int = 0, data: String? = nil) {
            self.code = code
            self.action = action
            self.index = index
            self.data = data
        }

        var text: String {
            "Code=\(code);action=\(action);index=\(index)" + (data.map { ";data=\($0)" } ?? "")
        }
    }

    /// How the next parts are written.
    public enum PartStyle: Sendable, Equatable {
        /// `Content-Length` is the body's length (what amcrest relies on).
        case honest
        /// `Content-Length: 0` on every event part, as some firmware writes it.
        case lyingLength
    }

    /// What the camera saw, for tests.
    public struct Figures: Sendable, Equatable {
        /// Every HTTP request.
        public var requests = 0
        /// Attach requests, authenticated or not.
        public var attachRequests = 0
        /// 401s sent to requests that carried credentials.
        public var refusedCredentials = 0
        /// Attach streams opened (after authentication).
        public var streamsOpened = 0
        /// Heartbeat parts written, over all streams.
        public var heartbeatsSent = 0
    }

    private struct State {
        var figures = Figures()
        var streams: [UInt64: AsyncStream<ByteBuffer>.Continuation] = [:]
        var nextStream: UInt64 = 0
        var style = PartStyle.honest
        var heartbeats = true
        /// Requests waiting for `releaseRequests()`, when holding.
        var held: [CheckedContinuation<Void, Never>]?
    }

    public let username: String
    public let password: String
    public let realm = "Login to 4L0A2B3PAZ00C7F"
    public let serial: String
    /// When true every credential is refused, as a camera whose password was changed.
    public let refuseAll: Bool
    private let state = Mutex(State())
    private let server = SimulatedServer(name: "dahua camera simulator")
    private let digest: SimulatedDigest
    private let logger: Logger

    public init(username: String = "admin", password: String = "dahua123", serial: String = "4L0A2B3PAZ00C7F", refuseAll: Bool = false, logger: Logger) {
        self.username = username
        self.password = password
        self.serial = serial
        self.refuseAll = refuseAll
        self.digest = SimulatedDigest(username: username, password: password, realm: realm)
        self.logger = logger
    }

    public func shutdown() async {
        releaseRequests()
        let open = state.withLock { s in
            defer { s.streams = [:] }
            return Array(s.streams.values)
        }
        for stream in open { stream.finish() }
    }

    public var figures: Figures { state.withLock { $0.figures } }
    /// Attach streams connected now.
    public var openStreams: Int { state.withLock { $0.streams.count } }

    /// Holds every request before it is answered until `releaseRequests()`: a camera too busy
    /// to answer, or a network that slow.
    public func holdRequests() { state.withLock { if $0.held == nil { $0.held = [] } } }

    /// Answers the held requests and stops holding.
    public func releaseRequests() {
        let held = state.withLock { s in
            defer { s.held = nil }
            return s.held ?? []
        }
        for request in held { request.resume() }
    }

    /// Requests held now.
    public var heldRequests: Int { state.withLock { $0.held?.count ?? 0 } }

    /// Writes the next event parts with an honest or a lying `Content-Length`.
    public func setPartStyle(_ style: PartStyle) { state.withLock { $0.style = style } }
    /// Stops (or resumes) heartbeats, as a camera whose stream hangs without closing.
    public func setHeartbeats(_ on: Bool) { state.withLock { $0.heartbeats = on } }

    // MARK: - Firing

    /// Sends each event as its own part to every open stream.
    public func fire(_ events: [Event]) {
        let style = state.withLock { $0.style }
        for event in events { broadcast(Self.part(event.text, style: style)) }
    }

    /// Several events in one part, as NVRs write them.
    public func fireTogether(_ events: [Event]) {
        broadcast(Self.part(events.map(\.text).joined(separator: "\r\n"), style: state.withLock { $0.style }))
    }

    /// Bytes written to every stream as they are: garbage, a truncated part, half a record.
    public func fireRaw(_ bytes: [UInt8]) { broadcast(ByteBuffer(bytes: bytes)) }

    static func part(_ body: String, style: PartStyle) -> ByteBuffer {
        let length = style == .honest ? body.utf8.count : 0
        return ByteBuffer(string: "--myboundary\r\nContent-Type: text/plain\r\nContent-Length: \(length)\r\n\r\n\(body)\r\n")
    }

    private func broadcast(_ buffer: ByteBuffer) {
        for stream in state.withLock({ Array($0.streams.values) }) { stream.yield(buffer) }
    }

    // MARK: - The CGI server

    /// Serves until cancelled; `waitUntilRunning()` gives the port.
    public func run(port: Int = 0) async throws {
        try await server.run(host: "127.0.0.1", port: port, logger: logger) { request in await self.respond(to: request) }
    }

    public func waitUntilRunning(timeout: Duration = .seconds(60)) async throws -> Int {
        try await server.waitUntilRunning(timeout: timeout) { DahuaCameraError(description: $0) }
    }

    func respond(to request: Request) async -> Response {
        let path = request.uri.path
        let action = request.uri.queryParameters.get("action") ?? ""
        let isAttach = path == "/cgi-bin/eventManager.cgi" && action == "attach"
        state.withLock {
            $0.figures.requests += 1
            if isAttach { $0.figures.attachRequests += 1 }
        }
        // Suspended only while holding (the benchmark's cameras answer every request at once).
        if state.withLock({ $0.held != nil }) {
            await withCheckedContinuation { (request: CheckedContinuation<Void, Never>) in
                let answer = state.withLock { s -> Bool in
                    guard s.held != nil else { return true }
                    s.held?.append(request)
                    return false
                }
                if answer { request.resume() }
            }
        }
        guard request.method == .get else { return Self.text(.methodNotAllowed, "Error\r\nBad Request!\r\n") }
        guard let header = request.headers[.authorization], !refuseAll,
            verify(header, method: "GET", uri: request.uri.description)
        else {
            if request.headers[.authorization] != nil { state.withLock { $0.figures.refusedCredentials += 1 } }
            var headers = HTTPFields()
            headers[.wwwAuthenticate] = "Digest realm=\"\(realm)\", qop=\"auth\", nonce=\"\(digest.nonce())\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
            headers[.contentType] = "text/plain"
            return Response(status: .unauthorized, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "Error\r\nUnauthorized\r\n")))
        }
        switch (path, action) {
        case ("/cgi-bin/magicBox.cgi", "getMachineName"): return Self.text(.ok, "name=DahuaSim\r\n")
        case ("/cgi-bin/magicBox.cgi", "getSerialNo"): return Self.text(.ok, "sn=\(serial)\r\n")
        case ("/cgi-bin/magicBox.cgi", "getDeviceType"): return Self.text(.ok, "type=IPC-HFW5442E-ZE\r\n")
        case ("/cgi-bin/magicBox.cgi", "getSoftwareVersion"): return Self.text(.ok, "version=2.800.0000000.16.R,build:2023-06-01\r\n")
        case ("/cgi-bin/eventManager.cgi", "attach"):
            let heartbeat = request.uri.queryParameters.get("heartbeat").flatMap { Int($0) }.map { min(max($0, 1), 60) }
            return attach(heartbeat: heartbeat)
        default:
            return Self.text(.badRequest, "Error\r\nBad Request!\r\n")
        }
    }

    /// The never-ending multipart stream: heartbeats (when asked for) and fired events.
    private func attach(heartbeat: Int?) -> Response {
        let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream(bufferingPolicy: .bufferingNewest(4096))
        let id = state.withLock { s -> UInt64 in
            s.nextStream += 1
            s.streams[s.nextStream] = continuation
            s.figures.streamsOpened += 1
            return s.nextStream
        }
        let beat: Task<Void, Never>? = heartbeat.map { seconds in
            Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(seconds))
                    guard let self, !Task.isCancelled else { return }
                    let send = self.state.withLock { s in
                        if s.heartbeats { s.figures.heartbeatsSent += 1 }
                        return s.heartbeats
                    }
                    if send { continuation.yield(Self.part("Heartbeat", style: .honest)) }
                }
            }
        }
        continuation.onTermination = { [weak self] _ in
            beat?.cancel()
            _ = self?.state.withLock { $0.streams.removeValue(forKey: id) }
        }
        var headers = HTTPFields()
        headers[.contentType] = "multipart/x-mixed-replace; boundary=myboundary"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            for await buffer in stream { try await writer.write(buffer) }
            try await writer.finish(nil)
        })
    }

    /// Ends every open stream, as a camera that reboots or drops the connection.
    public func dropStreams() {
        for stream in state.withLock({ Array($0.streams.values) }) { stream.finish() }
    }

    static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain;charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    func verify(_ header: String, method: String, uri: String) -> Bool { digest.verify(header, method: method, uri: uri) }

    // MARK: - Sample records

    /// A `VideoMotion` start or stop on channel index 0, its data pretty-printed over lines.
    public static func motion(active: Bool, index: Int = 0) -> Event {
        Event(code: "VideoMotion", action: active ? "Start" : "Stop", index: index, data: """
            {
               "Id" : [ 0 ],
               "RegionName" : [ "Region1" ],
               "SmartMotionEnable" : false
            }
            """)
    }

    /// A `TrafficJunction` plate read as ITC firmware writes it (`RealUTC` true UTC, `UTC` local).
    public static func plateRead(number: Int, plate: String = "粤BA1234", lane: Int = 1) -> Event {
        let group = 88_000 + number
        return Event(code: "TrafficJunction", action: "Pulse", index: 0, data: """
            {
               "Name" : "TrafficJunction",
               "EventID" : \(9000 + number),
               "GroupID" : \(group), "CountInGroup" : 1, "IndexInGroup" : 1,
               "Object" : { "ObjectType" : "Plate", "Text" : "\(plate)" },
               "TrafficCar" : { "PlateNumber" : "\(plate)", "PlateColor" : "Blue",
                                "VehicleColor" : "White", "Lane" : \(lane) },
               "LocaleTime" : "2025-03-14 18:20:05",
               "UTC" : 1741976405, "UTCMS" : 250, "RealUTC" : 1741947605
            }
            """)
    }

    // MARK: - RPC push

    /// The `client.notifyEventStream` envelope of `events` (Data as given, JSON text).
    public static func notifyEventStream(_ events: [Event], id: Int = 1) -> String {
        let list = events.map { event in
            "{\"Code\":\"\(event.code)\",\"Action\":\"\(event.action)\",\"Index\":\(event.index),\"Data\":\(event.data ?? "{}")}"
        }.joined(separator: ",")
        return "{\"method\":\"client.notifyEventStream\",\"params\":{\"SID\":513,\"eventList\":[\(list)]},\"id\":\(id),\"session\":\"3f1b0c\"}"
    }

    /// POSTs one envelope to `url`; returns the status and the reply body (status 0 when the connection failed).
    public func push(_ body: String, to url: String) async -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        do {
            // The shared client needs no shutdown: a test that fails before `shutdown()` must not
            // leave a client to be dropped, which is a fatal error that ends the whole test process.
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            let reply = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), String(buffer: reply))
        } catch {
            return (0, "\(error)")
        }
    }
}

public struct DahuaCameraError: Error, CustomStringConvertible {
    public let description: String
}
