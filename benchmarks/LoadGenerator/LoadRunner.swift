import GatehouseCore
import Histogram
import NIOCore
import NIOHTTP1
import NIOPosix

/// What one `http` run does; built and validated by `HTTPLoadCommand`.
struct LoadPlan: Sendable {
    var host: String
    var port: Int
    var basePath: String
    var devicePrefix: String
    var devices: Int
    var token: String
    /// Requests per second across all connections; 0 means closed loop.
    var rate: Double
    var duration: TimeAmount
    var connections: Int
    var batch: Int
    var alarmPercent: Double
    /// How long after the last scheduled request to wait for outstanding replies.
    var drainTimeout: TimeAmount
    /// Closed loop only: stop after this many requests (to fill a backlog of a known size).
    var maxRequests: Int? = nil
    /// Vendor payloads to `/v1/push/{profile}/{device}` instead of generic events (`--profile`).
    var profile: String? = nil
    /// Bytes of the picture in each Hikvision multipart body.
    var imageBytes: Int = 50_000
    /// Generic events are padded to this many bytes (`--event-bytes`; 0 = unpadded).
    var eventBytes: Int = 0

    var isClosedLoop: Bool { rate == 0 }
}

/// The counts and latencies of one run.
struct LoadResult: Sendable {
    /// Replies with status 200: the events are committed.
    var succeeded = 0
    /// Replies with status 503: the gateway refused (queue full, shutting down).
    var refused = 0
    /// Replies with any other status.
    var httpErrors = 0
    /// Requests whose connection closed before the reply.
    var connectionErrors = 0
    /// Requests never answered before the drain deadline, sent or still waiting for a connection.
    var unfinished = 0
    /// Failed attempts to (re)open a connection during the run.
    var connectFailures = 0
    /// From the start to the last reply (or to the drain deadline when requests were unfinished).
    var elapsed: TimeAmount = .zero
    /// How late the generator's own timer fired, worst case; large values mean the generator lagged.
    var maxScheduleLag: TimeAmount = .zero
    /// Latency of the 200 replies in microseconds, from the scheduled send time.
    var latency = LatencySummary.makeHistogram()
    /// The first few unexpected replies, for diagnosis.
    var errorSamples: [String] = []

    var requests: Int { succeeded + refused + httpErrors + connectionErrors + unfinished }
}

/// Drives HTTP/1.1 load against the gateway's event endpoint from one event loop.
///
/// Open loop: request *i* is due at `start + i / rate`, whatever the replies do. A due request
/// goes out on an idle connection or waits in a FIFO for one; its latency runs from the due
/// time, so a slow gateway shows up as latency instead of silently lowering the offered load
/// (coordinated omission). Closed loop (`rate` 0): every connection sends its next request as
/// soon as the previous reply arrived, which finds the saturation throughput.
///
/// All mutable state is touched only on `eventLoop` (handlers and scheduled tasks run there,
/// `run()` hops there), which is what makes `@unchecked Sendable` sound.
final class LoadRunner: @unchecked Sendable {
    private let plan: LoadPlan
    private let eventLoop: any EventLoop
    private let uris: [String]
    private let baseHeaders: HTTPHeaders
    private let totalRequests: Int
    private var bodies: EventBodyBuilder
    private var vendorBodies: ProfileBodyBuilder?

    private var live: [ClientConnection] = []
    private var idle: [ClientConnection] = []
    private var waiting = FIFO<PendingRequest>()
    private var inFlight = 0
    private var nextRequest = 0
    private var start = NIODeadline.now()
    private var stopAt = NIODeadline.now()
    private var lastReply = NIODeadline.now()
    private var scheduling = false
    private var finished = false
    private var result = LoadResult()
    private var done: EventLoopPromise<LoadResult>?

    /// The most unexpected replies to keep as samples.
    private static let sampleLimit = 3

    init(plan: LoadPlan, eventLoop: any EventLoop) {
        self.plan = plan
        self.eventLoop = eventLoop
        let brand = plan.profile.flatMap(ProfileBodyBuilder.Brand.init(rawValue:))
        self.uris = (0..<plan.devices).map { index in
            brand.map { "\(plan.basePath)/v1/push/\($0.rawValue)/\(plan.devicePrefix)\(index)" }
                ?? "\(plan.basePath)/v1/devices/\(plan.devicePrefix)\(index)/events"
        }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: plan.host.contains(":") ? "[\(plan.host)]:\(plan.port)" : "\(plan.host):\(plan.port)")
        headers.add(name: "User-Agent", value: "gatehouse-bench")
        headers.add(name: "Authorization", value: "Bearer \(plan.token)")
        let seed = UInt64.random(in: 1...UInt64.max)
        let vendor = brand.map { ProfileBodyBuilder(brand: $0, imageBytes: plan.imageBytes, seed: seed) }
        headers.add(name: "Content-Type", value: vendor?.contentType ?? "application/json")
        self.vendorBodies = vendor
        self.baseHeaders = headers
        self.totalRequests = plan.isClosedLoop ? 0 : Int((plan.rate * Double(plan.duration.nanoseconds) / 1e9).rounded())
        self.bodies = EventBodyBuilder(
            batch: plan.batch, alarmPercent: plan.alarmPercent, seed: UInt64.random(in: 1...UInt64.max), eventBytes: plan.eventBytes)
    }

    /// Opens all connections, runs the load and returns once every request is answered or the
    /// drain deadline has passed.
    func run() async throws -> LoadResult {
        let connects = (0..<plan.connections).map { _ in connect() }
        do {
            try await EventLoopFuture.andAllSucceed(connects, on: eventLoop).get()
        } catch {
            throw BenchError("cannot open \(plan.connections) connections to \(plan.host):\(plan.port): \(error)")
        }
        return try await eventLoop.flatSubmit { self.begin() }.get()
    }

    // MARK: - Schedule

    private func begin() -> EventLoopFuture<LoadResult> {
        let promise = eventLoop.makePromise(of: LoadResult.self)
        done = promise
        start = .now()
        lastReply = start
        stopAt = start + plan.duration
        scheduling = true
        if plan.isClosedLoop {
            let ready = idle
            idle.removeAll()
            ready.forEach(dispatch)
            eventLoop.scheduleTask(deadline: stopAt) {
                self.scheduling = false
                self.checkFinished()
            }
        } else {
            tick()
        }
        eventLoop.scheduleTask(deadline: stopAt + plan.drainTimeout) { self.finish() }
        return promise.futureResult
    }

    /// Issues every request that is due by now, then sleeps until the next one is.
    private func tick() {
        guard scheduling else { return }
        let now = NIODeadline.now()
        if nextRequest < totalRequests {
            result.maxScheduleLag = max(result.maxScheduleLag, now - dueTime(of: nextRequest))
        }
        while nextRequest < totalRequests {
            let due = dueTime(of: nextRequest)
            if due > now {
                eventLoop.scheduleTask(deadline: due) { self.tick() }
                return
            }
            submit(makeRequest(scheduled: due))
        }
        scheduling = false
        checkFinished()
    }

    private func dueTime(of index: Int) -> NIODeadline {
        start + .nanoseconds(Int64((Double(index) * 1e9 / plan.rate).rounded()))
    }

    private func makeRequest(scheduled: NIODeadline) -> PendingRequest {
        defer { nextRequest += 1 }
        return PendingRequest(scheduled: scheduled, device: nextRequest % plan.devices)
    }

    private func submit(_ request: PendingRequest) {
        if let connection = idle.popLast() {
            send(request, on: connection)
        } else {
            waiting.append(request)
        }
    }

    /// Gives a free connection its next job: the oldest waiting request, a fresh one in closed
    /// loop, or nothing.
    private func dispatch(_ connection: ClientConnection) {
        if let request = waiting.popFirst() {
            send(request, on: connection)
        } else if plan.isClosedLoop && scheduling && nextRequest < (plan.maxRequests ?? .max) {
            send(makeRequest(scheduled: .now()), on: connection)
        } else {
            if plan.isClosedLoop, scheduling, nextRequest >= (plan.maxRequests ?? .max) {
                scheduling = false
                idle.append(connection)
                checkFinished()
                return
            }
            idle.append(connection)
        }
    }

    private func send(_ request: PendingRequest, on connection: ClientConnection) {
        let body: ByteBuffer
        if vendorBodies != nil {
            body = vendorBodies?.makeBody(allocator: connection.allocator, epochSeconds: Int(Timestamp.now.milliseconds / 1000)) ?? ByteBuffer()
        } else {
            body = bodies.makeBody(allocator: connection.allocator, now: .now)
        }
        var headers = baseHeaders
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: uris[request.device], headers: headers)
        inFlight += 1
        connection.send(head: head, body: body, scheduled: request.scheduled)
    }

    // MARK: - Connection events

    private func connect() -> EventLoopFuture<Void> {
        ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ClientConnection(runner: self))
                }
            }
            .connect(host: plan.host, port: plan.port)
            .map { _ in }
    }

    private func reconnect(after delay: TimeAmount) {
        eventLoop.scheduleTask(in: delay) {
            guard !self.finished else { return }
            self.connect().whenFailure { _ in
                self.result.connectFailures += 1
                self.reconnect(after: .milliseconds(500))
            }
        }
    }

    func connectionReady(_ connection: ClientConnection) {
        guard !finished else {
            connection.close()
            return
        }
        live.append(connection)
        dispatch(connection)
    }

    func connectionLost(_ connection: ClientConnection, hadRequest: Bool) {
        live.removeAll { $0 === connection }
        idle.removeAll { $0 === connection }
        guard !finished else { return }
        if hadRequest {
            inFlight -= 1
            result.connectionErrors += 1
            keepSample("connection closed before the reply")
        }
        reconnect(after: .milliseconds(100))
        checkFinished()
    }

    func replied(_ connection: ClientConnection, scheduled: NIODeadline, status: Int, body: String?, reusable: Bool) {
        guard !finished else { return }
        inFlight -= 1
        let now = NIODeadline.now()
        lastReply = now
        switch status {
        case 200:
            result.succeeded += 1
            let micros = UInt64(max(0, (now - scheduled).nanoseconds / 1000))
            result.latency.record(min(micros, result.latency.highestTrackableValue))
        case 503:
            result.refused += 1
        default:
            result.httpErrors += 1
            keepSample("HTTP \(status): \(body ?? "")")
        }
        if reusable {
            dispatch(connection)
        } else {
            connection.close()  // its channelInactive brings a replacement
        }
        checkFinished()
    }

    // MARK: - End

    private func keepSample(_ text: String) {
        if result.errorSamples.count < Self.sampleLimit { result.errorSamples.append(text) }
    }

    private func checkFinished() {
        if !scheduling && inFlight == 0 && waiting.isEmpty { finish() }
    }

    private func finish() {
        guard !finished, let done else { return }
        finished = true
        scheduling = false
        result.unfinished = inFlight + waiting.count
        // The run lasted at least the offered window; with requests left unanswered it lasted
        // until the deadline, not the last reply.
        result.elapsed = max((result.unfinished > 0 ? NIODeadline.now() : lastReply) - start, plan.duration)
        let open = live  // closing calls back into connectionLost, which edits `live`
        open.forEach { $0.close() }
        done.succeed(result)
    }
}

/// A request that is due: when it should have gone out, and to which device's URL.
struct PendingRequest {
    var scheduled: NIODeadline
    var device: Int
}

/// One keep-alive HTTP/1.1 connection: writes the runner's requests and reports each reply.
final class ClientConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let runner: LoadRunner
    private var context: ChannelHandlerContext?
    /// The scheduled send time of the request awaiting its reply.
    private var pending: NIODeadline?
    private var status = 0
    private var keepAlive = true
    /// Collected only for unexpected statuses, and only its first 2 KB.
    private var errorBody: ByteBuffer?

    init(runner: LoadRunner) { self.runner = runner }

    var allocator: ByteBufferAllocator { context?.channel.allocator ?? ByteBufferAllocator() }

    func send(head: HTTPRequestHead, body: ByteBuffer, scheduled: NIODeadline) {
        guard let context else { return }  // never: the runner drops a connection when it goes inactive
        pending = scheduled
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func close() { context?.close(promise: nil) }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        runner.connectionReady(self)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let hadRequest = pending != nil
        pending = nil
        self.context = nil
        runner.connectionLost(self, hadRequest: hadRequest)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            keepAlive = head.isKeepAlive
            errorBody = status == 200 || status == 503 ? nil : context.channel.allocator.buffer(capacity: 256)
        case .body(var chunk):
            if var body = errorBody, body.readableBytes < 2048 {
                body.writeBuffer(&chunk)
                errorBody = body
            }
        case .end:
            guard let scheduled = pending else { return }  // a reply nobody asked for
            pending = nil
            let body = errorBody.map { String(buffer: $0) }
            errorBody = nil
            runner.replied(self, scheduled: scheduled, status: status, body: body, reusable: keepAlive)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// A first-in first-out queue over an array, compacted as it drains.
struct FIFO<Element> {
    private var items: [Element] = []
    private var head = 0

    var isEmpty: Bool { head == items.count }
    var count: Int { items.count - head }

    mutating func append(_ element: Element) { items.append(element) }

    mutating func popFirst() -> Element? {
        guard head < items.count else { return nil }
        let element = items[head]
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 4096 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
        return element
    }
}
