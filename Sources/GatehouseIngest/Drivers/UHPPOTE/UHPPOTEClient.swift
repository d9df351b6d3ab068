import Foundation
import GatehouseCore
import Logging
import Metrics
import NIOCore
import NIOPosix
import Synchronization

/// No reply came to a request, after every attempt.
public struct UHPPOTENoReply: Error, Sendable, CustomStringConvertible {
    public let function: UHPPOTEFunction
    public let attempts: Int
    public let target: String
    public var description: String {
        "no reply from \(target) to \(function) after \(attempts) attempt\(attempts == 1 ? "" : "s") (is the address and serial right, and the controller reachable on UDP?)"
    }
}

/// A reply for the right controller and function whose payload could not be read.
public struct UHPPOTEBadReply: Error, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]
    public let error: UHPPOTECodecError
    public var description: String { "unreadable reply: \(error)" }
}

/// Counts refused datagrams by reason, for the status log's metrics and for tests, and logs
/// them: a controller on the wrong firmware or a stray sender can send many a second, so at
/// most one line per reason per `logIntervalSeconds`, saying how many were dropped in between.
public final class UHPPOTERejections: Sendable {
    public static let logIntervalSeconds = 60.0

    private struct Tally {
        var counts: [UHPPOTECodecError.Reason: Int] = [:]
        var lastLogged: [UHPPOTECodecError.Reason: Double] = [:]
        var unlogged: [UHPPOTECodecError.Reason: Int] = [:]
    }

    private let tally = Mutex(Tally())
    private let now: @Sendable () -> Double
    /// Made when a line is due rather than at init: the driver registry exists before logging is bootstrapped.
    private let logger: @Sendable () -> Logger

    public init(
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        logger: @escaping @Sendable () -> Logger = { Logger(label: "gatehouse.uhppote") }
    ) {
        self.now = now
        self.logger = logger
    }

    /// Counts `error`; returns the line logged for it, nil when the rate limit held it back.
    @discardableResult
    public func record(_ error: UHPPOTECodecError) -> String? {
        let time = now()
        let reason = error.reason
        let skipped = tally.withLock { t -> Int? in
            t.counts[reason, default: 0] += 1
            if let last = t.lastLogged[reason], time - last < Self.logIntervalSeconds {
                t.unlogged[reason, default: 0] += 1
                return nil
            }
            t.lastLogged[reason] = time
            defer { t.unlogged[reason] = 0 }
            return t.unlogged[reason] ?? 0
        }
        Counter(label: "gatehouse_uhppote_rejected_datagrams_total", dimensions: [("reason", reason.rawValue)]).increment()
        guard let skipped else { return nil }
        let more = skipped > 0 ? " (and \(skipped) more for the same reason since the last line)" : ""
        let line = "uhppote: dropped a datagram, \(reason.rawValue): \(error)\(more)"
        logger().warning("\(line)", metadata: ["uhppote.reason": "\(reason.rawValue)"])
        return line
    }

    public func count(_ reason: UHPPOTECodecError.Reason) -> Int { tally.withLock { $0.counts[reason] ?? 0 } }
    public var total: Int { tally.withLock { $0.counts.values.reduce(0, +) } }
}

/// One UDP socket talking to controllers: one outstanding request at a time, a timeout per
/// attempt and a bounded number of retries. Replies are matched on function code and serial
/// (the protocol has no sequence numbers); anything else that arrives is counted and dropped.
public final class UHPPOTEClient: Sendable {
    public struct Datagram: Sendable {
        public var from: SocketAddress
        public var bytes: [UInt8]
    }

    let channel: any Channel
    private let mailbox: Mailbox
    private let rejections: UHPPOTERejections
    private let logger: Logger

    private init(channel: any Channel, mailbox: Mailbox, rejections: UHPPOTERejections, logger: Logger) {
        self.channel = channel
        self.mailbox = mailbox
        self.rejections = rejections
        self.logger = logger
    }

    /// Binds an ephemeral UDP port on `bindHost` (never 60000, so broadcasts are not heard back).
    public static func open(
        bindHost: String = "0.0.0.0", broadcast: Bool = false, rejections: UHPPOTERejections, logger: Logger
    ) async throws -> UHPPOTEClient {
        let mailbox = Mailbox()
        let channel = try await UDPSocket.bind(host: bindHost, port: 0, broadcast: broadcast) { mailbox.deliver($0) }
        return UHPPOTEClient(channel: channel, mailbox: mailbox, rejections: rejections, logger: logger)
    }

    /// Runs `body` with an open client and closes it afterwards.
    public static func with<T: Sendable>(
        bindHost: String = "0.0.0.0", broadcast: Bool = false, rejections: UHPPOTERejections, logger: Logger,
        _ body: (UHPPOTEClient) async throws -> T
    ) async throws -> T {
        let client = try await open(bindHost: bindHost, broadcast: broadcast, rejections: rejections, logger: logger)
        do {
            let result = try await body(client)
            await client.close()
            return result
        } catch {
            await client.close()
            throw error
        }
    }

    public func close() async {
        try? await channel.close()
    }

    /// A decoded reply with the datagram it came in.
    public struct Reply: Sendable {
        public var response: UHPPOTEResponse
        public var bytes: [UInt8]
    }

    /// Sends `request` to `target` and waits for the matching reply; `accept` can refuse a
    /// well-formed reply (a late answer to an earlier question) and keep waiting.
    public func request(
        _ request: UHPPOTERequest, serial: UInt32, to target: SocketAddress, timeout: Duration, retries: Int,
        accept: (UHPPOTEResponse) -> Bool = { _ in true }
    ) async throws -> UHPPOTEResponse {
        try await exchange(request, serial: serial, to: target, timeout: timeout, retries: retries, accept: accept).response
    }

    /// `request`, keeping the reply's bytes (the console shows a device's last payload).
    public func exchange(
        _ request: UHPPOTERequest, serial: UInt32, to target: SocketAddress, timeout: Duration, retries: Int,
        accept: (UHPPOTEResponse) -> Bool = { _ in true }
    ) async throws -> Reply {
        let frame = request.encode(serial: serial)
        mailbox.clear()
        let attempts = max(1, retries + 1)
        for _ in 0..<attempts {
            try Task.checkCancellation()
            try await send(frame, to: target)
            // A socket read deadline on NIO's event loop, not a health decision: whether the
            // controller is offline is decided by counting missed replies (`UHPPOTEDevice.ask`).
            let deadline = ContinuousClock.now + timeout
            while true {
                let remaining = deadline - ContinuousClock.now
                guard remaining > .zero, let datagram = await mailbox.next(timeout: remaining, on: channel.eventLoop) else { break }
                do {
                    let (_, response) = try UHPPOTEResponse.decode(datagram.bytes, function: request.function, serial: serial)
                    if accept(response) { return Reply(response: response, bytes: datagram.bytes) }
                } catch {
                    rejections.record(error)
                    switch error.reason {
                    case .length, .startByte, .function, .serial:
                        logger.debug("dropped datagram from \(datagram.from): \(error)")
                    case .bcd, .date:
                        throw UHPPOTEBadReply(bytes: datagram.bytes, error: error)
                    }
                }
            }
        }
        try Task.checkCancellation()
        throw UHPPOTENoReply(function: request.function, attempts: attempts, target: "\(target)")
    }

    /// Broadcasts `request` and gathers every well-formed reply until `duration` has passed (discovery).
    public func gather(_ request: UHPPOTERequest, to target: SocketAddress, for duration: Duration) async throws -> [(from: SocketAddress, serial: UInt32, response: UHPPOTEResponse)] {
        mailbox.clear()
        try await send(request.encode(serial: 0), to: target)
        let deadline = ContinuousClock.now + duration
        var out: [(SocketAddress, UInt32, UHPPOTEResponse)] = []
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero, let datagram = await mailbox.next(timeout: remaining, on: channel.eventLoop) else { break }
            do {
                let (serial, response) = try UHPPOTEResponse.decode(datagram.bytes, function: request.function)
                // Our own broadcast heard back carries serial 0 and an empty payload.
                if serial != 0 { out.append((datagram.from, serial, response)) }
            } catch {
                rejections.record(error)
            }
        }
        return out
    }

    func send(_ frame: [UInt8], to target: SocketAddress) async throws {
        let envelope = AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: frame))
        try await channel.writeAndFlush(envelope)
    }
}

/// Binding a UDP socket whose datagrams go to a Sendable callback.
enum UDPSocket {
    static func bind(
        host: String, port: Int, broadcast: Bool = false, deliver: @escaping @Sendable (UHPPOTEClient.Datagram) -> Void
    ) async throws -> any Channel {
        try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .channelOption(ChannelOptions.socketOption(.so_broadcast), value: broadcast ? 1 : 0)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Forwarder(deliver: deliver))
                }
            }
            .bind(host: host, port: port).get()
    }

    private final class Forwarder: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let deliver: @Sendable (UHPPOTEClient.Datagram) -> Void

        init(deliver: @escaping @Sendable (UHPPOTEClient.Datagram) -> Void) { self.deliver = deliver }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            deliver(UHPPOTEClient.Datagram(from: envelope.remoteAddress, bytes: Array(envelope.data.readableBytesView)))
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // ICMP port-unreachable and the like surface here on some systems; a missing reply is what counts.
        }
    }
}

/// Datagrams waiting for the one request in flight, with a single waiter that a timeout or
/// cancellation wakes with nil.
final class Mailbox: Sendable {
    private struct State {
        var waiting: [UHPPOTEClient.Datagram] = []
        var waiter: (token: Int, continuation: CheckedContinuation<UHPPOTEClient.Datagram?, Never>)?
        var nextToken = 0
    }

    private let state = Mutex(State())
    /// Late or unsolicited datagrams beyond this are dropped (a flood must not grow memory).
    private let capacity = 64

    func deliver(_ datagram: UHPPOTEClient.Datagram) {
        let waiter = state.withLock { s -> CheckedContinuation<UHPPOTEClient.Datagram?, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w.continuation
            }
            if s.waiting.count < capacity { s.waiting.append(datagram) }
            return nil
        }
        waiter?.resume(returning: datagram)
    }

    func clear() { state.withLock { $0.waiting.removeAll() } }

    func next(timeout: Duration, on eventLoop: any EventLoop) async -> UHPPOTEClient.Datagram? {
        let token = state.withLock { s -> Int in
            s.nextToken += 1
            return s.nextToken
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<UHPPOTEClient.Datagram?, Never>) in
                let ready = state.withLock { s -> UHPPOTEClient.Datagram?? in
                    if !s.waiting.isEmpty { return .some(s.waiting.removeFirst()) }
                    if Task.isCancelled { return .some(nil) }
                    s.waiter = (token, continuation)
                    return .none
                }
                if let ready {
                    continuation.resume(returning: ready)
                    return
                }
                let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
                eventLoop.scheduleTask(in: .nanoseconds(max(1, nanoseconds))) { self.expire(token) }
            }
        } onCancel: {
            expire(token)
        }
    }

    private func expire(_ token: Int) {
        let waiter = state.withLock { s -> CheckedContinuation<UHPPOTEClient.Datagram?, Never>? in
            guard let w = s.waiter, w.token == token else { return nil }
            s.waiter = nil
            return w.continuation
        }
        waiter?.resume(returning: nil)
    }
}
