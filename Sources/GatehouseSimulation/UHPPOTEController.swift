import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A simulated UHPPOTE / WeiGeng access controller on a real loopback UDP port, for tests, the
/// demo and benchmarks. It keeps an event ring buffer that overwrites its oldest records,
/// answers the requests an event gateway sends, pushes a status packet to its listener on every
/// new record (dropping some on request, as UDP does), and can fall silent.
///
/// Its frame encoding is written here independently of the driver's codec, so the two check
/// each other (offsets from uhppoted's public uhppote-core codec, see Drivers/UHPPOTE/README.md).
public final class UHPPOTEController: Sendable {
    /// How the simulated controller behaves.
    public struct Options: Sendable {
        public var serial: UInt32
        public var host = "127.0.0.1"
        /// 0 picks a free port.
        public var port = 0
        /// Records kept before the oldest are overwritten.
        public var capacity = 1000
        /// Chance (0–1) that a listener push is not sent.
        public var pushDropProbability = 0.0
        /// Delay before each reply, to stretch a log read in time.
        public var replyDelayMilliseconds = 0
        /// The controller clock minus the real one.
        public var clockOffsetSeconds = 0.0
        public var timeZone = TimeZone(identifier: "Asia/Shanghai") ?? .current
        public var version = (major: UInt8(6), minor: UInt8(62))

        public init(serial: UInt32) { self.serial = serial }
    }

    /// One stored record.
    public struct Record: Sendable, Equatable {
        public var index: UInt32
        public var type: UInt8
        public var granted: Bool
        public var door: UInt8
        public var direction: UInt8
        public var card: UInt32
        public var time: Date
        public var reason: UInt8
        /// The 7 time bytes as written instead of `time` (a firmware that writes 30 February).
        public var rawTime: [UInt8]?
    }

    /// What the controller did, for assertions.
    public struct Stats: Sendable, Equatable {
        public var requests: [UInt8: Int] = [:]
        public var ignoredRequests = 0
        public var pushesSent = 0
        public var pushesDropped = 0
        public var unansweredWhileSilent = 0
    }

    private struct State {
        var records: [Record] = []
        var lastIndex: UInt32 = 0
        var storedReadIndex: UInt32 = 0
        var listener: (ip: [UInt8], port: UInt16, interval: UInt8)?
        var silent = false
        var clockOffset: Double
        /// Clock bytes (BCD YYYYMMDDhhmmss) read back instead of the clock, until a set-time.
        var rawClock: [UInt8]?
        var ignoresSetTime = false
        var recordSpecialEvents = true
        var stats = Stats()
        var rng = SplitMix(seed: 0x5EED)
    }

    public let options: Options
    private let state: Mutex<State>
    private let channel = Mutex<(any Channel)?>(nil)
    private let logger: Logger

    public init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
        state = Mutex(State(clockOffset: options.clockOffsetSeconds, rng: SplitMix(seed: UInt64(options.serial) | 1)))
    }

    public var serial: UInt32 { options.serial }

    /// Binds the UDP port; returns it.
    public func start() async throws -> Int {
        let bound = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(controller: self))
                }
            }
            .bind(host: options.host, port: options.port).get()
        channel.withLock { $0 = bound }
        return bound.localAddress?.port ?? options.port
    }

    public func stop() async {
        let open = channel.withLock { c -> (any Channel)? in
            defer { c = nil }
            return c
        }
        try? await open?.close()
    }

    /// A silent controller receives but never answers (power cut, cable pulled).
    public func setSilent(_ silent: Bool) { state.withLock { $0.silent = silent } }

    public func setClockOffset(seconds: Double) { state.withLock { $0.clockOffset = seconds } }

    /// Makes the clock read back these 7 bytes (get-time, status) until a set-time replaces them.
    public func setRawClock(_ bytes: [UInt8]?) { state.withLock { $0.rawClock = bytes } }

    /// A controller that answers set-time with its old clock and keeps it (seen in the field).
    public func setIgnoresSetTime(_ ignores: Bool) { state.withLock { $0.ignoresSetTime = ignores } }

    public var clockOffsetSeconds: Double { state.withLock { $0.clockOffset } }

    public var stats: Stats { state.withLock { $0.stats } }

    /// Every record still in the ring buffer, oldest first.
    public var records: [Record] { state.withLock { $0.records } }

    public var lastIndex: UInt32 { state.withLock { $0.lastIndex } }

    /// Where it pushes, as `ip:port`, once a gateway set it.
    public var listener: String? {
        state.withLock { s in s.listener.map { "\($0.ip.map(String.init).joined(separator: ".")):\($0.port)" } }
    }

    /// Presets the listener (as an installer would) without a set-listener request.
    public func setListener(ip: [UInt8], port: UInt16) { state.withLock { $0.listener = (ip, port, 0) } }

    /// Records a card swipe; returns its log index.
    @discardableResult
    public func swipe(
        card: UInt32, door: UInt8 = 1, granted: Bool = true, direction: UInt8 = 1, reason: UInt8? = nil, rawTime: [UInt8]? = nil
    ) -> UInt32 {
        add(type: 0x01, granted: granted, door: door, direction: direction, card: card, reason: reason ?? (granted ? 1 : 6), rawTime: rawTime)
    }

    /// Records a door, button or alarm event (types 2 and 3) with its reason code.
    @discardableResult
    public func special(type: UInt8 = 0x02, door: UInt8 = 1, reason: UInt8) -> UInt32 {
        add(type: type, granted: false, door: door, direction: 1, card: 0, reason: reason)
    }

    private func add(
        type: UInt8, granted: Bool, door: UInt8, direction: UInt8, card: UInt32, reason: UInt8, rawTime: [UInt8]? = nil
    ) -> UInt32 {
        let (record, push) = state.withLock { s -> (Record, (frame: [UInt8], to: SocketAddress)?) in
            s.lastIndex += 1
            let record = Record(
                index: s.lastIndex, type: type, granted: granted, door: door, direction: direction, card: card,
                time: Date().addingTimeInterval(s.clockOffset), reason: reason, rawTime: rawTime)
            s.records.append(record)
            if s.records.count > options.capacity { s.records.removeFirst(s.records.count - options.capacity) }
            guard let l = s.listener, !s.silent,
                let address = try? SocketAddress(ipAddress: l.ip.map(String.init).joined(separator: "."), port: Int(l.port))
            else { return (record, nil) }
            if options.pushDropProbability > 0, s.rng.nextDouble() < options.pushDropProbability {
                s.stats.pushesDropped += 1
                return (record, nil)
            }
            s.stats.pushesSent += 1
            return (record, (statusFrame(s), address))
        }
        if let push { send(push.frame, to: push.to) }
        return record.index
    }

    private func send(_ frame: [UInt8], to address: SocketAddress) {
        guard let channel = channel.withLock({ $0 }) else { return }
        let envelope = AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: frame))
        let delay = options.replyDelayMilliseconds
        if delay > 0 {
            channel.eventLoop.scheduleTask(in: .milliseconds(Int64(delay))) { channel.writeAndFlush(envelope, promise: nil) }
        } else {
            channel.writeAndFlush(envelope, promise: nil)
        }
    }

    // MARK: - Requests

    fileprivate func received(_ bytes: [UInt8], from sender: SocketAddress) {
        guard let reply = answer(bytes) else { return }
        send(reply, to: sender)
    }

    /// The reply to one request datagram, or nil (not for us, malformed, silent, set-IP).
    func answer(_ request: [UInt8]) -> [UInt8]? {
        guard request.count == 64, request[0] == 0x17 else { return nil }
        let function = request[1]
        let serial = Wire.u32(request, 4)
        return state.withLock { s -> [UInt8]? in
            guard serial == options.serial || (serial == 0 && function == 0x94) else {
                s.stats.ignoredRequests += 1
                return nil
            }
            s.stats.requests[function, default: 0] += 1
            if s.silent {
                s.stats.unansweredWhileSilent += 1
                return nil
            }
            var out = Wire.frame(function, options.serial)
            switch function {
            case 0x94:  // get-controller (discovery)
                let ip = options.host.split(separator: ".").compactMap { UInt8($0) }
                for (i, b) in ip.prefix(4).enumerated() { out[8 + i] = b }
                out.replaceSubrange(12..<16, with: [255, 255, 255, 0])
                out.replaceSubrange(20..<26, with: [0x00, 0x12, 0x23, 0x34, 0x45, 0x56])
                out[26] = Wire.bcd(Int(options.version.major))
                out[27] = Wire.bcd(Int(options.version.minor))
                out.replaceSubrange(28..<32, with: [0x20, 0x24, 0x01, 0x15])
            case 0x20:  // get-status
                return statusFrame(s)
            case 0xB0:  // get-event
                let index = Wire.u32(request, 8)
                Wire.putU32(&out, 8, index)
                if let first = s.records.first, index < first.index, index >= 1 {
                    out[12] = 0xFF  // overwritten
                } else if let record = s.records.first.flatMap({ first in
                    index >= first.index && index <= s.lastIndex ? s.records[Int(index - first.index)] : nil
                }) {
                    Wire.putRecord(&out, record, zone: options.timeZone)
                }  // else type 0x00: no such record yet
            case 0xB4:  // get-event-index
                Wire.putU32(&out, 8, s.storedReadIndex)
            case 0xB2:  // set-event-index, only with the magic word
                let ok = Wire.u32(request, 12) == 0x55AA_AA55
                if ok { s.storedReadIndex = Wire.u32(request, 8) }
                out[8] = ok ? 1 : 0
            case 0x32:  // get-time
                if let raw = s.rawClock {
                    out.replaceSubrange(8..<15, with: raw)
                } else {
                    Wire.putDateTime(&out, 8, Date().addingTimeInterval(s.clockOffset), zone: options.timeZone)
                }
            case 0x30:  // set-time
                if s.ignoresSetTime {
                    if let raw = s.rawClock {
                        out.replaceSubrange(8..<15, with: raw)
                    } else {
                        Wire.putDateTime(&out, 8, Date().addingTimeInterval(s.clockOffset), zone: options.timeZone)
                    }
                } else if let time = Wire.dateTime(request, 8, zone: options.timeZone) {
                    s.clockOffset = time.timeIntervalSinceNow
                    s.rawClock = nil
                    out.replaceSubrange(8..<15, with: request[8..<15])
                }
            case 0x92:  // get-listener
                if let l = s.listener {
                    out.replaceSubrange(8..<12, with: l.ip)
                    out[12] = UInt8(l.port & 0xFF)
                    out[13] = UInt8(l.port >> 8)
                    out[14] = l.interval
                }
            case 0x90:  // set-listener
                s.listener = (Array(request[8..<12]), UInt16(request[12]) | UInt16(request[13]) << 8, request[14])
                out[8] = 1
            case 0x40:  // open-door: accepted
                out[8] = 1
            case 0x8E:  // record special events
                s.recordSpecialEvents = request[8] != 0
                out[8] = 1
            default:
                s.stats.ignoredRequests += 1
                return nil
            }
            return out
        }
    }

    private func statusFrame(_ s: State) -> [UInt8] {
        var out = Wire.frame(0x20, options.serial)
        if let last = s.records.last { Wire.putRecord(&out, last, zone: options.timeZone) }
        Wire.putU32(&out, 40, UInt32(truncatingIfNeeded: s.stats.pushesSent + s.stats.requests[0x20, default: 0]))
        if let raw = s.rawClock, raw.count == 7 {
            out.replaceSubrange(51..<54, with: raw[1..<4])
            out.replaceSubrange(37..<40, with: raw[4..<7])
            return out
        }
        let now = Wire.components(Date().addingTimeInterval(s.clockOffset), zone: options.timeZone)
        out[37] = Wire.bcd(now.hour ?? 0)
        out[38] = Wire.bcd(now.minute ?? 0)
        out[39] = Wire.bcd(now.second ?? 0)
        out[51] = Wire.bcd((now.year ?? 2000) % 100)
        out[52] = Wire.bcd(now.month ?? 1)
        out[53] = Wire.bcd(now.day ?? 1)
        return out
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let controller: UHPPOTEController
        init(controller: UHPPOTEController) { self.controller = controller }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            controller.received(Array(envelope.data.readableBytesView), from: envelope.remoteAddress)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {}
    }
}

/// The simulator's own field codings (little-endian integers, BCD times).
enum Wire {
    static func frame(_ function: UInt8, _ serial: UInt32) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        out[0] = 0x17
        out[1] = function
        putU32(&out, 4, serial)
        return out
    }

    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }

    static func putU32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
        b[at] = UInt8(v & 0xFF)
        b[at + 1] = UInt8((v >> 8) & 0xFF)
        b[at + 2] = UInt8((v >> 16) & 0xFF)
        b[at + 3] = UInt8(v >> 24)
    }

    static func bcd(_ v: Int) -> UInt8 { UInt8((v / 10) << 4 | (v % 10)) }

    static func unbcd(_ b: UInt8) -> Int? { b >> 4 <= 9 && b & 0xF <= 9 ? Int(b >> 4) * 10 + Int(b & 0xF) : nil }

    static func components(_ date: Date, zone: TimeZone) -> DateComponents {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
    }

    static func putDateTime(_ b: inout [UInt8], _ at: Int, _ date: Date, zone: TimeZone) {
        let c = components(date, zone: zone)
        let year = c.year ?? 2000
        let fields = [year / 100, year % 100, c.month ?? 1, c.day ?? 1, c.hour ?? 0, c.minute ?? 0, c.second ?? 0]
        for (i, v) in fields.enumerated() { b[at + i] = bcd(v) }
    }

    static func dateTime(_ b: [UInt8], _ at: Int, zone: TimeZone) -> Date? {
        let f = (0..<7).compactMap { unbcd(b[at + $0]) }
        guard f.count == 7 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar.date(from: DateComponents(year: f[0] * 100 + f[1], month: f[2], day: f[3], hour: f[4], minute: f[5], second: f[6]))
    }

    static func putRecord(_ b: inout [UInt8], _ r: UHPPOTEController.Record, zone: TimeZone) {
        putU32(&b, 8, r.index)
        b[12] = r.type
        b[13] = r.granted ? 1 : 0
        b[14] = r.door
        b[15] = r.direction
        putU32(&b, 16, r.card)
        if let raw = r.rawTime, raw.count == 7 {
            b.replaceSubrange(20..<27, with: raw)
        } else {
            putDateTime(&b, 20, r.time, zone: zone)
        }
        b[27] = r.reason
    }
}

/// A small seeded generator, so simulated packet loss (and the power-cut tests' cut points) repeat run to run.
public struct SplitMix: Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func nextDouble() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
