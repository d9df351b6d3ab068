import Foundation
import GatehouseCore
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Plays a camera's RTSP server on 127.0.0.1 for liveness probes: OPTIONS answered without
/// credentials (as Hikvision and LIVE555 firmware do), DESCRIBE behind Digest (qop=auth) and
/// Basic offered side by side as Hikvision does, or behind Basic only, or open; an SDP body.
/// `behaviour` switches at run time to the faults of the camera notes: stop answering (accept,
/// then silence), refuse (the port closed), answer slowly, 503 busy, 404, or refuse every
/// password. SETUP and PLAY are answered 455: a probe must never send them, and tests count them.
public final class RTSPCamera: Sendable {
    public enum Behaviour: String, Sendable, CaseIterable {
        case normal, silent, refuse, slow, busy
        case notFound = "not-found"
        case wrongPassword = "wrong-password"
    }

    public enum Authentication: String, Sendable, CaseIterable {
        /// Digest and Basic offered in two `WWW-Authenticate` headers.
        case digest
        case basic
        case none
    }

    public struct Counts: Sendable, Equatable {
        public var options = 0
        public var describes = 0
        /// SETUP, PLAY or anything else a liveness probe must not send.
        public var others = 0
        /// Requests that carried credentials the camera refused.
        public var refusedCredentials = 0
        /// Requests that carried Basic credentials.
        public var basic = 0
        public var connections = 0
        public var openConnections = 0
        /// The most connections open at once since start.
        public var maxOpenConnections = 0
        /// Requests received and not yet answered (a slow camera's queue).
        public var pendingReplies = 0
        /// The most requests waiting for their answer at once: the probes truly in flight, as
        /// the camera sees them (a closed connection may be noticed after the next one opens).
        public var maxPendingReplies = 0
    }

    public let username: String
    public let password: String
    public let path = "/Streaming/Channels/102"
    public let authentication: Authentication
    /// The delay of `slow`.
    public let slowDelay: TimeAmount
    /// Close the connection after each 401, as some firmware does (the client must reconnect).
    public let closesAfterChallenge: Bool
    private let digest: SimulatedDigest
    private let logger: Logger
    private let state: Mutex<State>
    private let changed = WakeUpSignal()

    private struct State {
        var behaviour: Behaviour
        var counts = Counts()
        var port: Int?
        var failure: String?
        var listener: (any Channel)?
        var open: [ObjectIdentifier: any Channel] = [:]
    }

    public init(
        username: String = "viewer", password: String = "Cam!2025", authentication: Authentication = .digest, behaviour: Behaviour = .normal,
        slowDelay: TimeAmount = .milliseconds(200), closesAfterChallenge: Bool = false, logger: Logger
    ) {
        self.username = username
        self.password = password
        self.authentication = authentication
        self.slowDelay = slowDelay
        self.closesAfterChallenge = closesAfterChallenge
        self.logger = logger
        digest = SimulatedDigest(username: username, password: password, realm: "IP Camera(D2041)")
        state = Mutex(State(behaviour: behaviour))
    }

    /// What the camera does now; `refuse` closes the port (and open connections), leaving it reopens it.
    public var behaviour: Behaviour {
        get { state.withLock { $0.behaviour } }
        set {
            let (listener, open) = state.withLock { s -> ((any Channel)?, [any Channel]) in
                s.behaviour = newValue
                return newValue == .refuse ? (s.listener, Array(s.open.values)) : (nil, [])
            }
            listener?.close(promise: nil)
            for channel in open { channel.close(promise: nil) }
            changed.signal()
        }
    }

    public var counts: Counts { state.withLock { $0.counts } }

    /// The stream URL once listening.
    public func url(port: Int) -> String { "rtsp://127.0.0.1:\(port)\(path)" }

    /// Serves until cancelled on `port` (0: a free one, kept across `refuse`).
    public func run(port: Int = 0) async throws {
        var port = port
        while !Task.isCancelled {
            if behaviour == .refuse {
                await changed.wait()
                continue
            }
            let listener: any Channel
            do {
                listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Connection(camera: self)) }
                    }
                    .bind(host: "127.0.0.1", port: port).get()
            } catch {
                state.withLock { $0.failure = "\(error)" }
                throw error
            }
            port = listener.localAddress?.port ?? port
            let refusedMeanwhile = state.withLock { s -> Bool in
                s.port = port
                s.listener = listener
                return s.behaviour == .refuse
            }
            if refusedMeanwhile { try? await listener.close() }
            await withTaskCancellationHandler {
                try? await listener.closeFuture.get()
            } onCancel: {
                listener.close(promise: nil)
            }
            state.withLock { $0.listener = nil }
        }
        let open = state.withLock { Array($0.open.values) }
        for channel in open { channel.close(promise: nil) }
    }

    /// The bound port once listening (a generous limit: it only bounds a wait on a busy machine).
    public func waitUntilRunning(timeout: Duration = .seconds(60)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let (port, failure) = state.withLock { ($0.port, $0.failure) }
            if let port { return port }
            if let failure { throw SimulatorError("RTSP camera simulator failed to start: \(failure)") }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw SimulatorError("RTSP camera simulator did not start listening within \(timeout)")
    }

    struct SimulatorError: Error, CustomStringConvertible {
        var description: String
        init(_ text: String) { description = text }
    }

    fileprivate func opened(_ channel: any Channel) {
        state.withLock { s in
            s.open[ObjectIdentifier(channel)] = channel
            s.counts.connections += 1
            s.counts.openConnections += 1
            s.counts.maxOpenConnections = max(s.counts.maxOpenConnections, s.counts.openConnections)
        }
    }

    fileprivate func answered() {
        state.withLock { $0.counts.pendingReplies -= 1 }
    }

    fileprivate func closed(_ channel: any Channel) {
        state.withLock { s in
            if s.open.removeValue(forKey: ObjectIdentifier(channel)) != nil { s.counts.openConnections -= 1 }
        }
    }

    /// The reply to one request, nil for none (silence); `close` after a 401 when configured.
    fileprivate func reply(method: String, url: String, headers: [String: [String]]) -> (text: String, close: Bool, delay: TimeAmount?)? {
        let behaviour = behaviour
        let cseq = headers["cseq"]?.first ?? "0"
        func answer(_ status: String, _ extra: [String] = [], body: String = "") -> String {
            var lines = ["RTSP/1.0 \(status)", "CSeq: \(cseq)", "Date: \(Date())"] + extra
            if !body.isEmpty { lines.append("Content-Length: \(body.utf8.count)") }
            return lines.joined(separator: "\r\n") + "\r\n\r\n" + body
        }
        switch method {
        case "OPTIONS": state.withLock { $0.counts.options += 1 }
        case "DESCRIBE": state.withLock { $0.counts.describes += 1 }
        default: state.withLock { $0.counts.others += 1 }
        }
        if behaviour == .silent || behaviour == .refuse { return nil }
        state.withLock { s in
            s.counts.pendingReplies += 1
            s.counts.maxPendingReplies = max(s.counts.maxPendingReplies, s.counts.pendingReplies)
        }
        switch behaviour {
        case .silent, .refuse: return nil
        case .busy: return (answer("503 Service Unavailable"), false, nil)
        case .notFound: return (answer("404 Stream Not Found"), false, nil)
        case .normal, .slow, .wrongPassword: break
        }
        let delay = behaviour == .slow ? slowDelay : nil
        switch method {
        case "OPTIONS":
            return (answer("200 OK", ["Public: OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER"]), false, delay)
        case "DESCRIBE":
            guard url.hasSuffix(path) else { return (answer("404 Not Found"), false, delay) }
            if authentication != .none {
                let given = headers["authorization"]?.first
                let accepted = given.map { verify($0, url: url) } ?? false
                if given != nil, !accepted || behaviour == .wrongPassword { state.withLock { $0.counts.refusedCredentials += 1 } }
                if given?.lowercased().hasPrefix("basic") == true { state.withLock { $0.counts.basic += 1 } }
                if !accepted || behaviour == .wrongPassword {
                    var challenges: [String] = []
                    if authentication == .digest { challenges.append("WWW-Authenticate: \(digest.challenge())") }
                    challenges.append("WWW-Authenticate: Basic realm=\"\(digest.realm)\"")
                    return (answer("401 Unauthorized", challenges), closesAfterChallenge, delay)
                }
            }
            let sdp = [
                "v=0", "o=- 1741918811 1 IN IP4 127.0.0.1", "s=Media Presentation", "c=IN IP4 0.0.0.0", "t=0 0",
                "m=video 0 RTP/AVP 96", "a=rtpmap:96 H264/90000", "a=control:trackID=1",
            ].joined(separator: "\r\n") + "\r\n"
            return (answer("200 OK", ["Content-Base: \(url)/", "Content-Type: application/sdp"], body: sdp), false, delay)
        default:
            return (answer("455 Method Not Valid in This State"), false, delay)
        }
    }

    private func verify(_ header: String, url: String) -> Bool {
        if header.lowercased().hasPrefix("basic ") {
            let decoded = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)).map { String(decoding: $0, as: UTF8.self) }
            return decoded == "\(username):\(password)"
        }
        return authentication == .digest && digest.verify(header, method: "DESCRIBE", uri: url)
    }

    /// One client connection: requests are read up to their blank line (a probe sends no bodies).
    private final class Connection: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let camera: RTSPCamera
        var buffer: [UInt8] = []

        init(camera: RTSPCamera) { self.camera = camera }

        func channelActive(context: ChannelHandlerContext) {
            camera.opened(context.channel)
            context.fireChannelActive()
        }

        func channelInactive(context: ChannelHandlerContext) {
            camera.closed(context.channel)
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = unwrapInboundIn(data)
            buffer.append(contentsOf: bytes.readableBytesView)
            if buffer.count > 64 << 10 {
                context.close(promise: nil)
                return
            }
            while let end = Self.blankLine(buffer) {
                let text = String(decoding: buffer[..<end], as: UTF8.self)
                buffer.removeFirst(end)
                var lines = text.split(whereSeparator: \.isNewline).map(String.init)
                guard !lines.isEmpty else { continue }
                let requestLine = lines.removeFirst().split(separator: " ")
                guard requestLine.count == 3 else {
                    context.close(promise: nil)
                    return
                }
                var headers: [String: [String]] = [:]
                for line in lines {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    headers[line[..<colon].lowercased(), default: []].append(line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
                }
                guard let (text, close, delay) = camera.reply(method: String(requestLine[0]), url: String(requestLine[1]), headers: headers) else { continue }
                let channel = context.channel
                let camera = camera
                let send: @Sendable () -> Void = {
                    camera.answered()
                    channel.writeAndFlush(ByteBuffer(string: text)).whenComplete { _ in
                        if close { channel.close(promise: nil) }
                    }
                }
                if let delay {
                    channel.eventLoop.scheduleTask(in: delay) { send() }
                } else {
                    send()
                }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }

        /// The end of the first request (after its blank line), CRLF or LF.
        static func blankLine(_ bytes: [UInt8]) -> Int? {
            var index = 0
            while index + 1 < bytes.count {
                if bytes[index] == 0x0A, bytes[index + 1] == 0x0A { return index + 2 }
                if bytes[index] == 0x0A, index + 2 < bytes.count, bytes[index + 1] == 0x0D, bytes[index + 2] == 0x0A { return index + 3 }
                index += 1
            }
            return nil
        }
    }
}
