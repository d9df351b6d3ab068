import Crypto
import Foundation
import GatehouseCore
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A simulated GB/T 28181 IPC or NVR that registers to a platform (the gateway) over UDP or TCP
/// on loopback: Digest registration, keepalives, alarms, and answers to Catalog, DeviceInfo and
/// DeviceStatus queries. Faults are options or explicit calls: a wrong password, keepalives not
/// sent, an alarm sent twice or re-using an SN, GB2312 bodies, raw malformed bytes.
///
/// Its SIP is written here independently of the driver's codec, so the two check each other.
public final class GB28181Device: Sendable {
    public enum Transport: String, Sendable { case udp, tcp }

    public struct Options: Sendable {
        public var deviceID: String
        public var password: String
        public var platformID = "34020000002000000001"
        public var domain = "3402000000"
        public var gatewayHost = "127.0.0.1"
        public var gatewayPort = 5060
        /// The loopback address the device's UDP socket binds (127.0.0.2 plays another host in tests).
        public var localHost = "127.0.0.1"
        public var transport = Transport.udp
        /// Channel ID → name (an NVR's cameras); empty for an IPC, whose one channel is itself.
        public var channels: [(id: String, name: String)] = []
        /// Catalog items per Response page; a bigger catalog arrives in several MESSAGEs.
        public var catalogPageSize = 2
        /// Bodies in GB2312 (as most firmware sends) or UTF-8.
        public var gb2312 = true
        public var expires = 3600
        /// Seconds to wait for a response before a request counts as unanswered.
        public var responseTimeoutSeconds = 10.0

        public init(deviceID: String, password: String) {
            self.deviceID = deviceID
            self.password = password
        }
    }

    /// What the device received, for assertions.
    public struct Stats: Sendable, Equatable {
        public var queries: [String] = []
        /// SNs of the Alarm Responses the platform sent.
        public var alarmAcks: [String] = []
        public var subscribes = 0
        /// The last 32 responses from the platform, as received (retransmissions get the same answer).
        public var responses: [String] = []
        /// The `Date` header of the last 200 to a REGISTER.
        public var registeredDate: String?
    }

    /// A parsed SIP message as the device reads it.
    struct Message: Sendable {
        var startLine: String
        var headers: [(String, String)]
        var body: [UInt8]
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        var status: Int? { startLine.hasPrefix("SIP/2.0 ") ? Int(startLine.split(separator: " ")[1]) : nil }
    }

    private struct State {
        var cseq = 1
        var sn = 1000
        var waiting: [String: CheckedContinuation<Message?, Never>] = [:]
        var stats = Stats()
        var tcpBuffer: [UInt8] = []
        var channel: (any Channel)?
        var gatewayAddress: SocketAddress?
        var callID = "\(UInt32.random(in: 0...UInt32.max))@sim"
        var fromTag = String(UInt32.random(in: 0...UInt32.max))
    }

    public let options: Options
    private let state = Mutex(State())
    private let logger: Logger

    public init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    /// A device talking to a gateway on 127.0.0.1:`port`, logging warnings only, for tests.
    /// Its response timeout is long: an unanswered request only costs time, never a wrong result.
    public static func loopback(
        _ id: String, password: String, port: Int, transport: Transport = .udp, channels: [(id: String, name: String)] = []
    ) -> GB28181Device {
        var options = Options(deviceID: id, password: password)
        options.gatewayPort = port
        options.transport = transport
        options.channels = channels
        options.responseTimeoutSeconds = 20
        var logger = Logger(label: "gb28181-sim")
        logger.logLevel = .warning
        return GB28181Device(options: options, logger: logger)
    }

    public var stats: Stats { state.withLock { $0.stats } }

    /// Opens the device's socket (UDP bound to a free loopback port, or a TCP connection to the gateway).
    public func start() async throws {
        let gateway = try SocketAddress(ipAddress: options.gatewayHost, port: options.gatewayPort)
        let channel: any Channel
        switch options.transport {
        case .udp:
            channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(UDPIn(device: self)) } }
                .bind(host: options.localHost, port: 0).get()
        case .tcp:
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(TCPIn(device: self)) } }
                .connect(to: gateway).get()
        }
        state.withLock {
            $0.channel = channel
            $0.gatewayAddress = gateway
        }
    }

    public func stop() async {
        let channel = state.withLock { s -> (any Channel)? in
            defer { s.channel = nil }
            return s.channel
        }
        try? await channel?.close()
        let waiting = state.withLock { s in
            defer { s.waiting = [:] }
            return Array(s.waiting.values)
        }
        for continuation in waiting { continuation.resume(returning: nil) }
    }

    // MARK: - What the device does

    /// REGISTER, answering the 401 challenge with Digest (qop=auth when offered); the final status, nil when unanswered.
    @discardableResult
    public func register(expires: Int? = nil, password: String? = nil) async -> Int? {
        let expires = expires ?? options.expires
        guard let first = await request("REGISTER", uri: "sip:\(options.platformID)@\(options.domain)", extra: [("Expires", String(expires))]) else { return nil }
        guard first.status == 401, let challenge = first.header("WWW-Authenticate") else { return first.status }
        let authorization = Self.authorization(
            challenge: challenge, username: options.deviceID, password: password ?? options.password,
            uri: "sip:\(options.platformID)@\(options.domain)")
        let answer = await request(
            "REGISTER", uri: "sip:\(options.platformID)@\(options.domain)", extra: [("Authorization", authorization), ("Expires", String(expires))])
        if answer?.status == 200 { state.withLock { $0.stats.registeredDate = answer?.header("Date") } }
        return answer?.status
    }

    /// One keepalive; the status of the platform's answer.
    @discardableResult
    public func keepalive() async -> Int? {
        let sn = nextSN()
        return await message(xml: "<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>\(sn)</SN>\r\n<DeviceID>\(options.deviceID)</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n")
    }

    /// One alarm from `channel` (default: the device itself); the status of the platform's answer.
    @discardableResult
    public func alarm(
        channel: String? = nil, sn: Int? = nil, priority: Int = 3, method: Int = 5, type: Int? = 2, time: String = "2025-03-14T10:16:02",
        description: String = "motion", copies: Int = 1
    ) async -> Int? {
        let sn = sn ?? nextSN()
        let info = type.map { "<Info><AlarmType>\($0)</AlarmType></Info>\r\n" } ?? ""
        return await message(
            xml: "<Notify>\r\n<CmdType>Alarm</CmdType>\r\n<SN>\(sn)</SN>\r\n<DeviceID>\(channel ?? options.deviceID)</DeviceID>\r\n"
                + "<AlarmPriority>\(priority)</AlarmPriority>\r\n<AlarmMethod>\(method)</AlarmMethod>\r\n<AlarmTime>\(time)</AlarmTime>\r\n"
                + "<AlarmDescription>\(description)</AlarmDescription>\r\n\(info)</Notify>\r\n", copies: copies)
    }

    /// A catalog notification for one channel (`ON`, `OFF`, `VLOST`, `DEFECT`, `ADD`, `UPDATE`, `DEL`),
    /// as a NOTIFY (catalog subscription) or a MESSAGE.
    @discardableResult
    public func channelEvent(_ channel: String, event: String, name: String? = nil, method: String = "NOTIFY") async -> Int? {
        let nameElement = name.map { "<Name>\($0)</Name>" } ?? ""
        return await message(
            xml: "<Notify>\r\n<CmdType>Catalog</CmdType>\r\n<SN>\(nextSN())</SN>\r\n<DeviceID>\(options.deviceID)</DeviceID>\r\n<SumNum>1</SumNum>\r\n"
                + "<DeviceList Num=\"1\"><Item><DeviceID>\(channel)</DeviceID>\(nameElement)<Event>\(event)</Event></Item></DeviceList>\r\n</Notify>\r\n",
            method: method)
    }

    /// A MESSAGE (or `method`) whose body is `xml` after the declaration (malformed on purpose, if
    /// a test wants); `copies` > 1 sends the same datagram again, as a UDP retransmission does.
    @discardableResult
    public func message(xml: String, method: String = "MESSAGE", copies: Int = 1) async -> Int? {
        let label = options.gb2312 ? "GB2312" : "UTF-8"
        let text = "<?xml version=\"1.0\" encoding=\"\(label)\"?>\r\n" + xml
        let body = options.gb2312 ? (Self.gb2312(text) ?? Array(text.utf8)) : Array(text.utf8)
        return await request(
            method, uri: "sip:\(options.platformID)@\(options.domain)",
            to: "<sip:\(options.platformID)@\(options.domain)>", extra: [("Content-Type", "Application/MANSCDP+xml")], body: body, copies: copies)?.status
    }

    /// Sends bytes as they are (a malformed message).
    public func sendRaw(_ bytes: [UInt8]) {
        let (channel, gateway) = state.withLock { ($0.channel, $0.gatewayAddress) }
        guard let channel, let gateway else { return }
        switch options.transport {
        case .udp: channel.writeAndFlush(AddressedEnvelope(remoteAddress: gateway, data: ByteBuffer(bytes: bytes)), promise: nil)
        case .tcp: channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
        }
    }

    /// Registers, then keeps alive every `keepaliveSeconds` and sends an alarm every
    /// `alarmSeconds` (0: none) until cancelled; registers again after a keepalive is refused.
    public func run(keepaliveSeconds: Double, alarmSeconds: Double) async {
        var registered = await register() == 200
        var lastAlarm = Date()
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(Int(keepaliveSeconds * 1000)))
            if !registered {
                registered = await register() == 200
                continue
            }
            registered = await keepalive() == 200
            if alarmSeconds > 0, Date().timeIntervalSince(lastAlarm) >= alarmSeconds {
                lastAlarm = Date()
                let channel = options.channels.isEmpty ? nil : options.channels[Int.random(in: 0..<options.channels.count)].id
                await alarm(channel: channel)
            }
        }
    }

    // MARK: - SIP

    private func nextSN() -> Int {
        state.withLock { s in
            s.sn += 1
            return s.sn
        }
    }

    private func request(
        _ method: String, uri: String, to: String? = nil, extra: [(String, String)] = [], body: [UInt8] = [], copies: Int = 1
    ) async -> Message? {
        let (cseq, callID, tag, local) = state.withLock { s -> (Int, String, String, String) in
            s.cseq += 1
            let local = s.channel?.localAddress.map { "\($0.ipAddress ?? "127.0.0.1"):\($0.port ?? 0)" } ?? "127.0.0.1:5060"
            return (s.cseq, method == "REGISTER" ? s.callID : "\(UInt32.random(in: 0...UInt32.max))@sim", s.fromTag, local)
        }
        var text = "\(method) \(uri) SIP/2.0\r\n"
        text += "Via: SIP/2.0/\(options.transport.rawValue.uppercased()) \(local);rport;branch=z9hG4bK\(UInt32.random(in: 0...UInt32.max))\r\n"
        text += "From: <sip:\(options.deviceID)@\(options.domain)>;tag=\(tag)\r\n"
        text += "To: \(to ?? "<sip:\(options.deviceID)@\(options.domain)>")\r\n"
        text += "Call-ID: \(callID)\r\nCSeq: \(cseq) \(method)\r\nMax-Forwards: 70\r\n"
        text += "Contact: <sip:\(options.deviceID)@\(local)>\r\n"
        for (name, value) in extra { text += "\(name): \(value)\r\n" }
        text += "Content-Length: \(body.count)\r\n\r\n"
        let key = "\(cseq) \(method)"
        return await withCheckedContinuation { continuation in
            state.withLock { $0.waiting[key] = continuation }
            for _ in 0..<max(1, copies) { sendRaw(Array(text.utf8) + body) }
            let timeout = options.responseTimeoutSeconds
            Task {
                try? await Task.sleep(for: .milliseconds(Int(timeout * 1000)))
                self.resolve(key, with: nil)
            }
        }
    }

    private func resolve(_ key: String, with message: Message?) {
        let continuation = state.withLock { $0.waiting.removeValue(forKey: key) }
        continuation?.resume(returning: message)
    }

    fileprivate func received(_ bytes: [UInt8]) {
        guard let message = Self.parse(bytes) else { return }
        if message.status != nil {
            state.withLock { s in
                s.stats.responses.append(String(decoding: bytes, as: UTF8.self))
                if s.stats.responses.count > 32 { s.stats.responses.removeFirst() }
            }
            guard let cseq = message.header("CSeq") ?? message.header("cseq") else { return }
            resolve(cseq.trimmingCharacters(in: .whitespaces), with: message)
            return
        }
        // A request from the platform: answer 200, then act on it.
        respond(to: message)
        guard message.startLine.hasPrefix("MESSAGE") || message.startLine.hasPrefix("SUBSCRIBE") else { return }
        let xml = Self.decode(message.body)
        let cmd = Self.element("CmdType", in: xml) ?? ""
        let sn = Self.element("SN", in: xml) ?? "0"
        if message.startLine.hasPrefix("SUBSCRIBE") {
            state.withLock { $0.stats.subscribes += 1 }
            return
        }
        if xml.contains("<Response>"), cmd == "Alarm" {
            state.withLock { $0.stats.alarmAcks.append(sn) }
            return
        }
        guard xml.contains("<Query>") else { return }
        state.withLock { $0.stats.queries.append(cmd) }
        Task { await self.answer(query: cmd, sn: sn) }
    }

    private func answer(query cmd: String, sn: String) async {
        let id = options.deviceID
        switch cmd {
        case "Catalog":
            let items = options.channels.isEmpty ? [(id: id, name: "Camera")] : options.channels
            let pages = stride(from: 0, to: items.count, by: max(1, options.catalogPageSize)).map { Array(items[$0..<min($0 + max(1, options.catalogPageSize), items.count)]) }
            for page in pages {
                let list = page.map {
                    "<Item><DeviceID>\($0.id)</DeviceID><Name>\($0.name)</Name><Manufacturer>Sim</Manufacturer><ParentID>\(id)</ParentID><Status>ON</Status></Item>"
                }.joined()
                await message(
                    xml: "<Response>\r\n<CmdType>Catalog</CmdType>\r\n<SN>\(sn)</SN>\r\n<DeviceID>\(id)</DeviceID>\r\n<SumNum>\(items.count)</SumNum>\r\n<DeviceList Num=\"\(page.count)\">\(list)</DeviceList>\r\n</Response>\r\n")
            }
        case "DeviceInfo":
            await message(
                xml: "<Response>\r\n<CmdType>DeviceInfo</CmdType>\r\n<SN>\(sn)</SN>\r\n<DeviceID>\(id)</DeviceID>\r\n<Result>OK</Result>\r\n<Manufacturer>Sim</Manufacturer>\r\n<Model>GB-\(options.channels.isEmpty ? "IPC" : "NVR")</Model>\r\n<Firmware>V1.0</Firmware>\r\n<Channel>\(max(1, options.channels.count))</Channel>\r\n</Response>\r\n")
        case "DeviceStatus":
            await message(
                xml: "<Response>\r\n<CmdType>DeviceStatus</CmdType>\r\n<SN>\(sn)</SN>\r\n<DeviceID>\(id)</DeviceID>\r\n<Result>OK</Result>\r\n<Online>ONLINE</Online>\r\n<Status>OK</Status>\r\n</Response>\r\n")
        default: break
        }
    }

    private func respond(to request: Message) {
        var text = "SIP/2.0 200 OK\r\n"
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] { if let value = request.header(name) { text += "\(name): \(value)\r\n" } }
        text += "Content-Length: 0\r\n\r\n"
        sendRaw(Array(text.utf8))
    }

    fileprivate func receivedStream(_ bytes: [UInt8]) {
        let messages = state.withLock { s -> [[UInt8]] in
            s.tcpBuffer += bytes
            var out: [[UInt8]] = []
            while let end = Self.headerEnd(s.tcpBuffer) {
                let head = String(decoding: s.tcpBuffer[..<end], as: UTF8.self)
                let length = head.components(separatedBy: "\r\n").compactMap { line -> Int? in
                    let parts = line.split(separator: ":", maxSplits: 1)
                    guard parts.count == 2, ["content-length", "l"].contains(parts[0].lowercased()) else { return nil }
                    return Int(parts[1].trimmingCharacters(in: .whitespaces))
                }.first ?? 0
                guard s.tcpBuffer.count >= end + 4 + length else { break }
                out.append(Array(s.tcpBuffer[..<(end + 4 + length)]))
                s.tcpBuffer.removeFirst(end + 4 + length)
            }
            return out
        }
        for message in messages { received(message) }
    }

    static func headerEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 { return i }
        return nil
    }

    static func parse(_ bytes: [UInt8]) -> Message? {
        guard let end = headerEnd(bytes) else { return nil }
        var lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        guard !lines.isEmpty else { return nil }
        let start = lines.removeFirst()
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]).trimmingCharacters(in: .whitespaces), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
        }
        return Message(startLine: start, headers: headers, body: Array(bytes[(end + 4)...]))
    }

    static func element(_ name: String, in xml: String) -> String? {
        guard let open = xml.range(of: "<\(name)>"), let close = xml.range(of: "</\(name)>", range: open.upperBound..<xml.endIndex) else { return nil }
        return String(xml[open.upperBound..<close.lowerBound])
    }

    /// GB2312 bytes (written as GB18030, its superset), as firmware writes them.
    static func gb2312(_ text: String) -> [UInt8]? { TextDecoding.encode(text, as: .gb18030) }

    static func decode(_ bytes: [UInt8]) -> String {
        TextDecoding.decode(bytes, as: .utf8) ?? TextDecoding.decode(bytes, as: .gb18030) ?? ""
    }

    /// The Authorization value for a Digest challenge, with qop=auth when the platform offers it.
    static func authorization(challenge: String, username: String, password: String, uri: String) -> String {
        var fields: [String: String] = [:]
        for part in challenge.dropFirst(7).split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            fields[pair[0].trimmingCharacters(in: .whitespaces).lowercased()] = pair[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        let realm = fields["realm"] ?? ""
        let nonce = fields["nonce"] ?? ""
        func md5(_ s: String) -> String { Insecure.MD5.hash(data: Data(s.utf8)).map { String(format: "%02x", $0) }.joined() }
        let ha1 = md5("\(username):\(realm):\(password)")
        let ha2 = md5("REGISTER:\(uri)")
        var value = "Digest username=\"\(username)\", realm=\"\(realm)\", nonce=\"\(nonce)\", uri=\"\(uri)\", algorithm=MD5"
        if fields["qop"]?.contains("auth") == true {
            let cnonce = String(UInt32.random(in: 0...UInt32.max), radix: 16)
            let response = md5("\(ha1):\(nonce):00000001:\(cnonce):auth:\(ha2)")
            value += ", response=\"\(response)\", cnonce=\"\(cnonce)\", nc=00000001, qop=auth"
        } else {
            value += ", response=\"\(md5("\(ha1):\(nonce):\(ha2)"))\""
        }
        return value
    }

    private final class UDPIn: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let device: GB28181Device
        init(device: GB28181Device) { self.device = device }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            device.received(Array(unwrapInboundIn(data).data.readableBytesView))
        }
        // ICMP port-unreachable before the gateway listens: the request simply goes unanswered.
        func errorCaught(context: ChannelHandlerContext, error: any Error) {}
    }

    private final class TCPIn: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let device: GB28181Device
        init(device: GB28181Device) { self.device = device }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            device.receivedStream(Array(unwrapInboundIn(data).readableBytesView))
        }
    }
}
