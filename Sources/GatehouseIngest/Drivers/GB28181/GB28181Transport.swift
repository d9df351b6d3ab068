import GatehouseCore
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The SIP sockets of one port, UDP and TCP, both feeding one registrar. Bound on the first
/// device that names the port and closed with the last one.
final class GB28181Listener: Sendable {
    let registrar: GB28181Registrar
    let host: String
    private let channels = Mutex<[any Channel]>([])
    private let udpChannel = Mutex<(any Channel)?>(nil)
    /// UDP datagrams being handled; past `maxInFlight` new ones are dropped (and counted) so a
    /// flood cannot grow tasks without bound. The device retransmits.
    private let inFlight = Atomic<Int>(0)
    static let maxInFlight = 1024

    init(registrar: GB28181Registrar, host: String) {
        self.registrar = registrar
        self.host = host
    }

    /// The bound UDP and TCP ports (equal unless port 0 was asked for, in tests).
    func bind(port: Int) async throws -> (udp: Int, tcp: Int) {
        let udp = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(UDPHandler(listener: self)) }
            }
            .bind(host: host, port: port).get()
        let udpPort = udp.localAddress?.port ?? port
        channels.withLock { $0.append(udp) }
        udpChannel.withLock { $0 = udp }
        let tcp: any Channel
        do {
            tcp = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(TCPHandler(listener: self)) }
                }
                .bind(host: host, port: port == 0 ? udpPort : port).get()
        } catch {
            try? await udp.close()
            throw error
        }
        channels.withLock { $0.append(tcp) }
        return (udpPort, tcp.localAddress?.port ?? port)
    }

    func close() async {
        for channel in channels.withLock({ c in defer { c = [] }; return c }) { try? await channel.close() }
    }

    func local(_ channel: any Channel) -> String {
        let port = channel.localAddress?.port ?? 5060
        let ip = channel.localAddress?.ipAddress ?? host
        return "\(ip == "0.0.0.0" ? host : ip):\(port)"
    }

    /// A peer reached through the UDP socket, for a device known from a saved registration.
    func udpPeer(host: String, port: Int) -> SIPPeer? {
        guard let channel = udpChannel.withLock({ $0 }),
            let remote = try? SocketAddress(ipAddress: host, port: port)
        else { return nil }
        return peer(remote, channel: channel)
    }

    private func peer(_ remote: SocketAddress, channel: any Channel) -> SIPPeer {
        SIPPeer(
            transport: .udp, host: remote.ipAddress ?? "?", port: remote.port ?? 0, local: local(channel),
            send: { bytes in
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: ByteBuffer(bytes: bytes)), promise: nil)
            })
    }

    fileprivate func datagram(_ bytes: [UInt8], from remote: SocketAddress, channel: any Channel) {
        guard inFlight.add(1, ordering: .relaxed).newValue <= Self.maxInFlight else {
            inFlight.subtract(1, ordering: .relaxed)
            registrar.counters.record("overloaded")
            return
        }
        let peer = peer(remote, channel: channel)
        Task {
            await registrar.receive(datagram: bytes, from: peer)
            inFlight.subtract(1, ordering: .relaxed)
        }
    }

    private final class UDPHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let listener: GB28181Listener
        init(listener: GB28181Listener) { self.listener = listener }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            listener.datagram(Array(envelope.data.readableBytesView), from: envelope.remoteAddress, channel: context.channel)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {}
    }

    /// One device's TCP connection: framed by Content-Length, handled in order by one task.
    private final class TCPHandler: ChannelInboundHandler, @unchecked Sendable {
        // Touched only on the channel's event loop (NIO handler contract).
        typealias InboundIn = ByteBuffer
        let listener: GB28181Listener
        var framer = SIPStreamFramer()
        var queue: AsyncStream<SIPMessage>.Continuation?

        init(listener: GB28181Listener) { self.listener = listener }

        func channelActive(context: ChannelHandlerContext) {
            let channel = context.channel
            let remote = channel.remoteAddress
            let peer = SIPPeer(
                transport: .tcp, host: remote?.ipAddress ?? "?", port: remote?.port ?? 0, local: listener.local(channel),
                send: { bytes in channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil) })
            let (stream, continuation) = AsyncStream<SIPMessage>.makeStream(bufferingPolicy: .bufferingOldest(256))
            queue = continuation
            let registrar = listener.registrar
            Task {
                for await message in stream { await registrar.handle(message, from: peer) }
            }
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = Array(unwrapInboundIn(data).readableBytesView)
            do {
                for message in try framer.append(bytes) {
                    if case .dropped = queue?.yield(message) { listener.registrar.counters.record("overloaded") }
                }
            } catch {
                // The stream has lost its framing: nothing after this point can be trusted.
                listener.registrar.counters.record(error.counter)
                listener.registrar.logger.debug("gb28181: TCP stream from \(context.channel.remoteAddress?.description ?? "?") closed: \(error)")
                context.close(promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            queue?.finish()
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
    }
}

/// The listeners by port, shared by the devices configured with each.
final class GB28181Listeners: Sendable {
    private struct Entry {
        var registrar: GB28181Registrar
        var binding: Task<GB28181Listener, any Error>
        var users: Int
    }

    private let entries = Mutex<[Int: Entry]>([:])
    let counters: GB28181Counters

    init(counters: GB28181Counters) { self.counters = counters }

    /// The listener of `port`, bound on first use, with `session` attached before any packet
    /// can arrive (a device registering while the gateway starts is never refused as unknown).
    func acquire(_ session: GB28181Session, host: String, port: Int, clock: any DriverClock, logger: Logger) async throws -> GB28181Listener {
        let binding = entries.withLock { e -> Task<GB28181Listener, any Error> in
            var entry: Entry
            if let existing = e[port] {
                entry = existing
                entry.users += 1
            } else {
                let registrar = GB28181Registrar(clock: clock, logger: logger, counters: counters)
                let task = Task {
                    let listener = GB28181Listener(registrar: registrar, host: host)
                    let ports = try await listener.bind(port: port)
                    logger.notice("gb28181 SIP listener ready on \(host) UDP \(ports.udp), TCP \(ports.tcp)")
                    return listener
                }
                entry = Entry(registrar: registrar, binding: task, users: 1)
            }
            entry.registrar.attach(session)
            e[port] = entry
            return entry.binding
        }
        do {
            return try await binding.value
        } catch {
            await release(session, port: port)
            throw GB28181ListenError(host: host, port: port, underlying: "\(error)")
        }
    }

    /// Detaches `session`; the last device of a port closes its sockets.
    func release(_ session: GB28181Session, port: Int) async {
        let closing = entries.withLock { e -> Task<GB28181Listener, any Error>? in
            guard var entry = e[port] else { return nil }
            entry.registrar.detach(session)
            entry.users -= 1
            if entry.users > 0 {
                e[port] = entry
                return nil
            }
            e[port] = nil
            return entry.binding
        }
        if let closing, let listener = try? await closing.value { await listener.close() }
    }

    /// The registrar of `port` while a device uses it (tests, status).
    func registrar(port: Int) -> GB28181Registrar? { entries.withLock { $0[port]?.registrar } }
}

public struct GB28181ListenError: Error, Sendable, CustomStringConvertible {
    public let host: String
    public let port: Int
    public let underlying: String
    public var description: String {
        "cannot listen for GB/T 28181 devices on \(host):\(port) (UDP and TCP): \(underlying) (is another SIP server using it? options.listen_port must be free)"
    }
}
