import Foundation
import GatehouseCore
import GatehouseQueue
import Logging
import Metrics
import Synchronization

/// Where a SIP message came from and how to answer it: replies go to the packet's source
/// address (NAT), never to the Via or Contact host.
struct SIPPeer: Sendable {
    enum Transport: String, Sendable { case udp = "UDP", tcp = "TCP" }
    var transport: Transport
    var host: String
    var port: Int
    /// Our own host:port as the device reaches it, for Via and Contact of our requests.
    var local: String
    var send: @Sendable ([UInt8]) -> Void
    var address: String { "\(host):\(port)" }
}

/// Messages refused or dropped, by reason: the metric `gatehouse_gb28181_refused_messages_total`
/// (label `reason`, kebab-case) and, for tests, these counts.
public final class GB28181Counters: Sendable {
    private let counts = Mutex<[String: Int]>([:])
    public init() {}
    func record(_ reason: String) {
        counts.withLock { $0[reason, default: 0] += 1 }
        let label = reason.lowercased().replacingOccurrences(of: " ", with: "-")
        Counter(label: "gatehouse_gb28181_refused_messages_total", dimensions: [("reason", label)]).increment()
    }
    public subscript(_ reason: String) -> Int { counts.withLock { $0[reason] ?? 0 } }
    public var snapshot: [String: Int] { counts.withLock { $0 } }
}

/// One configured device as the registrar sees it: registration, keepalives, channels.
final class GB28181Session: Sendable {
    struct State {
        var registered = false
        var online = false
        var registeredAt: Timestamp?
        var expiresAt: Timestamp?
        var lastKeepalive: Timestamp?
        /// The last REGISTER or readable MESSAGE: any of them shows the device alive.
        var lastActivity: Timestamp?
        var peer: SIPPeer?
        /// The IP the device registered from: MESSAGEs in its name must come from there.
        var registeredHost: String?
        var charset: TextDecoding.Charset = .gb18030
        /// Channel ID → name and status, from the last complete Catalog and catalog notifications.
        var channels: [String: GB28181Channel] = [:]
        /// Catalog pages being collected, by the SN of our query.
        var catalogPages: [String: (sum: Int, items: [String: GB28181Channel], started: Timestamp)] = [:]
        var deviceInfo: [String: String] = [:]
        /// Messages in this device's name refused, by reason (status line).
        var refused: [String: Int] = [:]
    }

    /// How long the pages of one Catalog answer are waited for.
    static let catalogWaitSeconds = 30.0

    let settings: GB28181Settings
    let context: DeviceContext
    /// The driver's counters, for the port-wide refusals shown beside the device's own.
    let counters: GB28181Counters?
    let state = Mutex(State())

    init(settings: GB28181Settings, context: DeviceContext, counters: GB28181Counters? = nil) {
        self.settings = settings
        self.context = context
        self.counters = counters
    }

    var id: String { settings.deviceID }
    var snapshot: State { state.withLock { $0 } }

    /// Shows the registration, transport, source address, last keepalive and channels in
    /// `gatehouse status`.
    func publish() {
        let s = snapshot
        var detail = ["registration": s.registered ? "registered" : "not registered"]
        if let peer = s.peer {
            detail["transport"] = peer.transport.rawValue
            detail["source"] = peer.address
        }
        if let last = s.lastKeepalive { detail["lastKeepalive"] = last.rfc3339 }
        if let expires = s.expiresAt, s.registered { detail["expires"] = expires.rfc3339 }
        if !s.channels.isEmpty {
            let listed = s.channels.sorted { $0.key < $1.key }.prefix(32).map { "\($0.key) \($0.value.name) \($0.value.status ?? "?")" }
            detail["channels"] = "\(s.channels.count): " + listed.joined(separator: ", ") + (s.channels.count > 32 ? ", …" : "")
            let down = s.channels.values.filter { $0.status != nil && $0.status != "ON" }.count
            if down > 0 { detail["channelsDown"] = String(down) }
        }
        if !s.refused.isEmpty { detail["refused"] = Self.summary(s.refused) }
        // Refusals no device can be named for (unreadable SIP, unknown IDs, overload): the port's, beside each device.
        let portWide = (counters?.snapshot ?? [:]).filter { Self.portWideReasons.contains($0.key) }
        if !portWide.isEmpty { detail["listenerRefused"] = Self.summary(portWide) }
        context.describe(detail)
    }

    static let portWideReasons: Set<String> = ["malformed SIP", "truncated", "bad Content-Length", "too large", "unknown device", "overloaded", "unsupported method"]

    static func summary(_ counts: [String: Int]) -> String {
        counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    /// The registration as it must survive a restart.
    var saved: GB28181SavedRegistration {
        let s = snapshot
        return GB28181SavedRegistration(
            registered: s.registered, online: s.online, expiresAt: s.expiresAt, transport: s.peer?.transport.rawValue ?? "UDP",
            registeredHost: s.registeredHost, host: s.peer?.host, port: s.peer?.port, utf8: s.charset == .utf8, channels: s.channels)
    }

    /// Stores the registration in the device's cursor (logged, not thrown: the device works on without it).
    func save() async {
        do {
            try await context.saveCursor(saved.encoded)
        } catch {
            context.logger.warning("gb28181: device \(id) registration not saved: \(error)")
        }
    }

    /// Takes back a registration saved before a restart while it is still valid; returns whether it was.
    /// The device gets a full keepalive timeout from now: it kept sending while the gateway was away.
    func restore(_ saved: GB28181SavedRegistration, peer: SIPPeer?, now: Timestamp) -> Bool {
        guard saved.registered, let expires = saved.expiresAt, expires > now else { return false }
        state.withLock { s in
            s.registered = true
            s.online = saved.online
            s.expiresAt = expires
            s.lastActivity = now
            s.registeredHost = saved.registeredHost
            s.peer = peer
            s.charset = saved.utf8 ? .utf8 : .gb18030
            s.channels = saved.channels
        }
        return true
    }

    /// Marks the device offline when its registration ran out or its keepalives stopped for
    /// `keepalive_interval_seconds × keepalive_misses`.
    func sweep(now: Timestamp) async {
        // A catalog whose pages stopped short of SumNum: keep what arrived after 30 s.
        let partial = state.withLock { s -> (got: Int, sum: Int)? in
            guard let (sn, page) = s.catalogPages.first(where: { now.seconds - $0.value.started.seconds > Self.catalogWaitSeconds }) else { return nil }
            s.catalogPages[sn] = nil
            if !page.items.isEmpty { s.channels = page.items }
            return (page.items.count, page.sum)
        }
        if let partial {
            context.logger.warning("gb28181: device \(id) catalog incomplete after \(Int(Self.catalogWaitSeconds)) s: \(partial.got) of \(partial.sum) channel(s) arrived; keeping those")
            publish()
        }
        let reason = state.withLock { s -> String? in
            guard s.registered, s.online else { return nil }
            if let expires = s.expiresAt, now > expires {
                s.registered = false
                s.online = false
                return "register expired"
            }
            let last = s.lastActivity ?? now
            guard now.seconds - last.seconds > settings.keepaliveTimeoutSeconds else { return nil }
            s.online = false
            return "keepalive timeout"
        }
        if let reason {
            publish()
            await save()
            await context.down(reason: reason)
        } else if counters != nil {
            // Port-wide refusal counts move without this device doing anything.
            publish()
        }
    }
}

/// The registrar and UAS on one SIP port, shared by every device configured with it: REGISTER
/// with Digest, keepalives, alarms and query answers. Each device's session is attached by its
/// driver task; a message from a device that is not configured is refused and counted.
final class GB28181Registrar: Sendable {
    struct State {
        var sessions: [String: GB28181Session] = [:]
        /// Nonces we issued, with when.
        var nonces: [String: Timestamp] = [:]
        /// Wrong passwords in a row and the ban they earned, by device ID and source address.
        var failures: [String: (count: Int, bannedUntil: Timestamp?)] = [:]
        var nextSN = 1
        var nextCSeq = 1
        /// Our UDP requests not answered yet, by Call-ID and CSeq number: retransmitted until they are.
        var unanswered: Set<String> = []
        /// Answers to the devices' UDP requests, for their retransmissions.
        var transactions = GB28181TransactionCache()
    }

    static let nonceLifetimeSeconds = 300.0
    static let maxNonces = 4096

    let clock: any DriverClock
    let logger: Logger
    let counters: GB28181Counters
    /// The gateway's zone: the `Date` header devices set their clocks from is local time.
    let zone: TimeZone
    private let state = Mutex(State())

    init(clock: any DriverClock, logger: Logger, counters: GB28181Counters, zone: TimeZone = .current) {
        self.clock = clock
        self.logger = logger
        self.counters = counters
        self.zone = zone
    }

    func attach(_ session: GB28181Session) { state.withLock { $0.sessions[session.id] = session } }

    func detach(_ session: GB28181Session) {
        state.withLock { s in if s.sessions[session.id] === session { s.sessions[session.id] = nil } }
    }

    func session(_ id: String) -> GB28181Session? { state.withLock { $0.sessions[id] } }

    // MARK: - Input

    /// One UDP datagram: parsed, then handled. Unparseable input is counted and, when at least
    /// the head reads as a request, answered 400.
    func receive(datagram bytes: [UInt8], from peer: SIPPeer) async {
        // Bare CRLF keep-alive pings carry nothing.
        if bytes.allSatisfy({ $0 == 13 || $0 == 10 }) { return }
        do {
            await handle(try SIPMessage.parse(bytes), from: peer)
        } catch {
            refuseUnparseable(bytes, error: error, peer: peer)
        }
    }

    func refuseUnparseable(_ bytes: [UInt8], error: SIPParseError, peer: SIPPeer) {
        counters.record(error.counter)
        logger.debug("gb28181: unreadable SIP from \(peer.address): \(error)")
        if let end = SIPMessage.headerEnd(bytes), let head = try? SIPMessage.parseHead(Array(bytes[..<end])), head.method != nil, head.method != "ACK" {
            peer.send(response(to: head, 400, "Bad Request", peer: peer, extra: [("Warning", "399 gatehouse \"\(error.description.replacingOccurrences(of: "\"", with: "'"))\"")]).serialized())
        }
    }

    func handle(_ message: SIPMessage, from peer: SIPPeer) async {
        guard let method = message.method else {
            // Answers to our own MESSAGE/SUBSCRIBE: delivery receipts; a final one ends retransmission.
            if let code = message.statusCode, code >= 200, let key = Self.transactionKey(message) {
                state.withLock { _ = $0.unanswered.remove(key) }
            }
            if let code = message.statusCode, code >= 300 {
                logger.debug("gb28181: \(peer.address) answered \(code) to \(message.header("cseq") ?? "?")")
            }
            return
        }
        // UDP retransmits a request until its answer arrives: the same transaction gets the same
        // answer, and is handled once (an alarm is never submitted twice). TCP does not retransmit.
        var peer = peer
        var transaction: String?
        if peer.transport == .udp, method != "ACK", let key = GB28181TransactionCache.key(message) {
            let now = clock.now
            let send = peer.send
            guard state.withLock({ $0.transactions.begin(key, now: now, send: send) }) else {
                counters.record("retransmission")
                return
            }
            transaction = key
            let clock = clock
            peer.send = { [weak self] bytes in
                // Only a response is kept (a request of ours to the device also goes through `send`).
                var waiting: [@Sendable ([UInt8]) -> Void] = []
                if bytes.starts(with: Self.responsePrefix) {
                    waiting = self?.state.withLock { $0.transactions.answered(key, bytes: bytes, now: clock.now) } ?? []
                }
                send(bytes)
                for retransmission in waiting { retransmission(bytes) }
            }
        }
        defer { if let transaction { state.withLock { $0.transactions.end(transaction) } } }
        switch method {
        case "REGISTER": await register(message, from: peer)
        case "MESSAGE", "NOTIFY": await manscdp(message, from: peer)
        case "OPTIONS": peer.send(response(to: message, 200, "OK", peer: peer).serialized())
        case "ACK": return
        case "BYE", "CANCEL": peer.send(response(to: message, 481, "Call/Transaction Does Not Exist", peer: peer).serialized())
        default:
            counters.record("unsupported method")
            peer.send(response(to: message, 501, "Not Implemented", peer: peer).serialized())
        }
    }

    static let responsePrefix = Array("SIP/2.0 ".utf8)

    /// Counts a refusal, under the device too when it is known.
    func refuse(_ reason: String, session: GB28181Session?) {
        counters.record(reason)
        session?.state.withLock { $0.refused[reason, default: 0] += 1 }
    }

    // MARK: - REGISTER

    private func register(_ message: SIPMessage, from peer: SIPPeer) async {
        func reply(_ code: Int, _ reason: String, _ extra: [(String, String)] = []) {
            peer.send(response(to: message, code, reason, peer: peer, extra: extra).serialized())
        }
        guard let deviceID = message.header("from").flatMap(SIPMessage.user(ofAddress:)) else {
            counters.record("malformed SIP")
            return reply(400, "Bad Request")
        }
        let now = clock.now
        let banKey = "\(deviceID)@\(peer.host)"
        if let until = state.withLock({ $0.failures[banKey]?.bannedUntil }), now < until {
            refuse("banned", session: session(deviceID))
            session(deviceID)?.publish()
            return reply(403, "Forbidden")
        }
        guard let session = session(deviceID) else {
            counters.record("unknown device")
            logger.info("gb28181: REGISTER from \(deviceID) at \(peer.address), which is not configured: refused (403)")
            return reply(403, "Forbidden")
        }
        let settings = session.settings
        let contact = message.header("contact")
        guard let expiresText = message.header("expires") ?? contact.flatMap({ SIPMessage.parameter("expires", in: $0) }),
            let requested = Int(expiresText.trimmingCharacters(in: .whitespaces)), requested >= 0
        else {
            counters.record("missing Expires")
            return reply(400, "Bad Request", [("Warning", "399 gatehouse \"Expires required\"")])
        }
        guard let authorization = message.header("authorization"), authorization.lowercased().hasPrefix("digest ") else {
            return reply(401, "Unauthorized", [("WWW-Authenticate", challenge(realm: settings.domain, stale: false, now: now))])
        }
        let fields = DigestAuthentication.parse(String(authorization.dropFirst(7)))
        guard let nonce = fields["nonce"], let issued = state.withLock({ $0.nonces[nonce] }) else {
            counters.record("unknown nonce")
            return reply(401, "Unauthorized", [("WWW-Authenticate", challenge(realm: settings.domain, stale: false, now: now))])
        }
        guard now.seconds - issued.seconds <= Self.nonceLifetimeSeconds else {
            state.withLock { _ = $0.nonces.removeValue(forKey: nonce) }
            return reply(401, "Unauthorized", [("WWW-Authenticate", challenge(realm: settings.domain, stale: true, now: now))])
        }
        let expected = fields["realm"] == settings.domain
            ? DigestAuthentication.expectedResponse(fields: fields, method: "REGISTER", password: settings.password) : nil
        guard let expected, let response = fields["response"], DeviceRequests.constantTimeEqual(expected, response.lowercased()) else {
            refuse("auth failure", session: session)
            let banned = state.withLock { s -> Bool in
                var entry = s.failures[banKey] ?? (0, nil)
                entry.count += 1
                let ban = entry.count >= settings.failuresBeforeBan && settings.banMinutes > 0
                if ban { entry = (0, now.adding(seconds: settings.banMinutes * 60)) }
                s.failures[banKey] = entry
                return ban
            }
            logger.warning("gb28181: device \(deviceID) at \(peer.address) sent a wrong registration password\(banned ? "; refused for \(Int(settings.banMinutes)) min" : "")")
            let wasOnline = session.state.withLock { s -> Bool in
                defer { (s.registered, s.online) = (false, false) }
                return s.online || s.registeredAt == nil
            }
            reply(403, "Forbidden")
            session.publish()
            if wasOnline {
                await session.save()
                await session.context.down(reason: "auth failure")
            }
            return
        }
        state.withLock { _ = $0.failures.removeValue(forKey: banKey) }
        let granted = min(requested, settings.maxExpiresSeconds)
        var extra: [(String, String)] = []
        if let contact { extra.append(("Contact", contact)) }
        extra.append(("Expires", String(granted)))
        extra.append(("Date", Self.sipDate(now, zone: zone)))
        // The state first, then the 200: a device sends its first MESSAGE the moment the 200 arrives.
        if granted == 0 {
            session.state.withLock { s in (s.registered, s.online, s.expiresAt, s.registeredHost) = (false, false, nil, nil) }
            reply(200, "OK", extra)
            session.publish()
            logger.notice("gb28181: device \(deviceID) unregistered")
            await session.save()
            await session.context.down(reason: "unregistered")
            return
        }
        let fresh = session.state.withLock { s -> Bool in
            let fresh = !s.registered
            s.registered = true
            s.online = true
            s.registeredAt = now
            s.lastKeepalive = now
            s.lastActivity = now
            s.expiresAt = now.adding(seconds: Double(granted))
            s.peer = peer
            s.registeredHost = peer.host
            return fresh
        }
        reply(200, "OK", extra)
        session.publish()
        logger.notice("gb28181: device \(deviceID) registered over \(peer.transport.rawValue) from \(peer.address) for \(granted) s")
        await session.save()
        await session.context.seen()
        if fresh { queryAfterRegistration(session) }
    }

    private func challenge(realm: String, stale: Bool, now: Timestamp) -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        let nonce = bytes.map { String(format: "%02x", $0) }.joined()
        state.withLock { s in
            if s.nonces.count >= Self.maxNonces {
                s.nonces = s.nonces.filter { now.seconds - $0.value.seconds <= Self.nonceLifetimeSeconds }
                // Still full (a flood): forget the oldest half; their devices get stale=true and retry.
                if s.nonces.count >= Self.maxNonces {
                    let keep = s.nonces.sorted { $0.value > $1.value }.prefix(Self.maxNonces / 2)
                    s.nonces = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
                }
            }
            s.nonces[nonce] = now
        }
        return "Digest realm=\"\(realm)\", nonce=\"\(nonce)\", qop=\"auth\", algorithm=MD5\(stale ? ", stale=true" : "")"
    }

    /// `yyyy-MM-ddTHH:mm:ss.SSS` in the gateway's zone, no offset: what devices set their clocks from.
    static func sipDate(_ time: Timestamp, zone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: time.date)
        let ms = Int(((time.milliseconds % 1000) + 1000) % 1000)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03d", c.year ?? 0, c.month ?? 0, c.day ?? 0, c.hour ?? 0, c.minute ?? 0,
            c.second ?? 0, ms)
    }

    // MARK: - MANSCDP

    private func manscdp(_ message: SIPMessage, from peer: SIPPeer) async {
        func reply(_ code: Int, _ reason: String) { peer.send(response(to: message, code, reason, peer: peer).serialized()) }
        guard let sender = message.header("from").flatMap(SIPMessage.user(ofAddress:)) else {
            counters.record("malformed SIP")
            return reply(400, "Bad Request")
        }
        guard let session = session(sender) else {
            counters.record("unknown device")
            return reply(403, "Forbidden")
        }
        let (registered, registeredHost) = session.state.withLock { ($0.registered, $0.registeredHost) }
        guard registered else {
            // 404 makes most devices register again (wvp does the same).
            refuse("not registered", session: session)
            session.publish()
            return reply(404, "Not Found")
        }
        // MESSAGEs carry no credentials: one in a registered device's name must come from the IP it
        // registered from. Only the IP: NAT rebinding changes the port. A device whose IP changed
        // (DHCP) gets 404 and registers again from the new one.
        if let registeredHost, registeredHost != peer.host {
            refuse("wrong source address", session: session)
            session.publish()
            logger.warning("gb28181: MESSAGE in the name of \(sender) from \(peer.host), but it registered from \(registeredHost): refused (404)")
            return reply(404, "Not Found")
        }
        let body: MANSCDPBody
        do {
            body = try MANSCDPBody.parse(message.body)
        } catch {
            refuse(error.counter, session: session)
            session.publish()
            logger.warning("gb28181: device \(sender) sent a body the gateway cannot read: \(error)")
            _ = try? await session.context.quarantine(
                QuarantineRecord(
                    deviceID: session.context.config.id, driver: session.context.config.driver, route: "SIP \(message.method ?? "")",
                    contentType: message.header("content-type"), remote: peer.address, reason: error.description, payload: Data(message.body)))
            return reply(400, "Bad Request")
        }
        let now = clock.now
        let moved = session.state.withLock { s -> Bool in
            s.charset = body.charset
            // NAT rebinding: answer where the device is now.
            let moved = s.peer?.address != peer.address || s.peer?.transport != peer.transport
            s.peer = peer
            s.lastActivity = now
            return moved
        }
        let cameBack = session.state.withLock { s -> Bool in
            defer { s.online = true }
            return !s.online
        }
        if cameBack {
            logger.notice("gb28181: device \(sender) is sending again")
            await session.context.seen()
        }
        if cameBack || moved { await session.save() }
        // The console's device page shows the last MANSCDP body but a keepalive, as unmapped
        // (channel names and alarm descriptions are the device's own text).
        if !(body.root == "Notify" && body.cmdType == "Keepalive") {
            session.context.keepLastPayload(message.body, contentType: message.header("content-type"), mapped: nil)
        }
        switch (body.root, body.cmdType) {
        case ("Notify", "Keepalive"):
            session.state.withLock { $0.lastKeepalive = now }
            reply(200, "OK")
            session.publish()
            // Keeps the device directory's own silence check (offline_after_seconds) quiet too.
            await session.context.seen()
        case ("Notify", "Alarm"):
            await alarm(body, message: message, session: session, peer: peer)
        case ("Notify", "Catalog") where body.element.child("DeviceList")?.children("Item").contains(where: { $0.child("Event") != nil }) == true:
            // A catalog notification: changes of channels, not a whole catalog. Answered once kept.
            await channelChanges(body, message: message, session: session, peer: peer)
        case ("Response", "Catalog"), ("Notify", "Catalog"):
            reply(200, "OK")
            await catalogPage(body, session: session)
            await session.context.seen()
        case ("Response", "DeviceStatus") where body.deviceID != session.id:
            // The status of one channel (an NVR asked for it, or a device reporting on its own).
            reply(200, "OK")
            if let online = body.text("Online") {
                await applyChannelStatus([(body.deviceID, online.uppercased() == "ONLINE" ? "ON" : "OFF", nil)], sn: body.sn, session: session)
            }
        case ("Response", "DeviceInfo"), ("Response", "DeviceStatus"):
            reply(200, "OK")
            let fields = ["Manufacturer", "Model", "Firmware", "Channel", "Online", "Status", "Encode", "Record"]
            session.state.withLock { s in
                for name in fields { if let value = body.text(name) { s.deviceInfo[name] = value } }
            }
            logger.info("gb28181: device \(sender) \(body.cmdType): \(fields.compactMap { n in body.text(n).map { "\(n)=\($0)" } }.joined(separator: " "))")
            await session.context.seen()
        case ("Response", _):
            // Results of controls and subscriptions: delivered, nothing to keep.
            reply(200, "OK")
        default:
            refuse("unknown CmdType", session: session)
            session.publish()
            logger.info("gb28181: device \(sender) sent <\(body.root)> CmdType \(body.cmdType), which the gateway does not handle")
            reply(400, "Bad Request")
        }
    }

    private func alarm(_ body: MANSCDPBody, message: SIPMessage, session: GB28181Session, peer: SIPPeer) async {
        let channelName = session.state.withLock { $0.channels[body.deviceID]?.name }
        let draft = GB28181AlarmKinds.draft(
            body, deviceID: session.id, zone: session.context.config.timeZone, overrides: session.settings.kinds, channelName: channelName)
        do {
            let outcomes = try await session.context.submit([draft])
            guard outcomes.allSatisfy(\.isAccepted) else {
                // Not durable (disk budget): no 200, so the device sends it again.
                logger.warning("gb28181: alarm \(body.sn) from \(session.id) refused by the queue (\(outcomes)); not acknowledged")
                return
            }
        } catch {
            logger.warning("gb28181: alarm \(body.sn) from \(session.id) not committed: \(error); not acknowledged")
            return
        }
        // Acknowledged only once durable: the 200, then the Response the device waits for.
        peer.send(response(to: message, 200, "OK", peer: peer).serialized())
        let ack = MANSCDPBody.encode(root: "Response", cmdType: "Alarm", sn: body.sn, deviceID: body.deviceID, extra: "<Result>OK</Result>\r\n", charset: body.charset)
        send("MESSAGE", body: ack, to: session)
    }

    private func catalogPage(_ body: MANSCDPBody, session: GB28181Session) async {
        let now = clock.now
        let sum = Int(body.text("SumNum") ?? "") ?? 0
        var items: [String: GB28181Channel] = [:]
        for item in body.element.child("DeviceList")?.children("Item") ?? [] {
            guard let id = item.child("DeviceID")?.trimmedText, !id.isEmpty else { continue }
            let status = item.child("Status")?.trimmedText.uppercased()
            items[id] = GB28181Channel(name: item.child("Name")?.trimmedText ?? "", status: status?.isEmpty == false ? status : nil)
        }
        let complete = session.state.withLock { s -> [String: GB28181Channel]? in
            var page = s.catalogPages[body.sn] ?? (sum, [:], now)
            page.sum = max(page.sum, sum)
            page.items.merge(items) { _, new in new }
            guard page.items.count >= page.sum else {
                s.catalogPages[body.sn] = page
                return nil
            }
            s.catalogPages[body.sn] = nil
            return page.items
        }
        guard let complete else { return }
        logger.notice("gb28181: device \(session.id) catalog: \(complete.count) channel(s) \(complete.keys.sorted().joined(separator: ", "))")
        // Names first (the whole catalog replaces the list), then each channel's status as a change.
        let statuses = session.state.withLock { s -> [(String, String, String?)] in
            let old = s.channels
            s.channels = Dictionary(uniqueKeysWithValues: complete.map { id, channel in (id, GB28181Channel(name: channel.name, status: old[id]?.status)) })
            return complete.compactMap { id, channel in channel.status.map { (id, $0, nil) } }
        }
        await applyChannelStatus(statuses, sn: body.sn, session: session)
        session.publish()
        await session.save()
    }

    /// A catalog notification (NOTIFY, or MESSAGE `Notify`/`Catalog`) whose items carry `Event`:
    /// ON/OFF/VLOST/DEFECT change a channel's status, ADD/UPDATE its entry, DEL removes it. The
    /// events and the new registration are committed before the 200, so a refused commit is re-sent.
    private func channelChanges(_ body: MANSCDPBody, message: SIPMessage, session: GB28181Session, peer: SIPPeer) async {
        var statuses: [(String, String, String?)] = []
        for item in body.element.child("DeviceList")?.children("Item") ?? [] {
            guard let id = item.child("DeviceID")?.trimmedText, !id.isEmpty, let event = item.child("Event")?.trimmedText.uppercased() else { continue }
            let name = item.child("Name")?.trimmedText
            switch event {
            case "ON", "OFF", "VLOST", "DEFECT":
                statuses.append((id, event, name))
            case "ADD", "UPDATE":
                let status = item.child("Status")?.trimmedText.uppercased()
                session.state.withLock { s in
                    var channel = s.channels[id] ?? GB28181Channel(name: "", status: nil)
                    if let name, !name.isEmpty { channel.name = name }
                    s.channels[id] = channel
                }
                if let status, !status.isEmpty { statuses.append((id, status, name)) }
                logger.notice("gb28181: device \(session.id) channel \(id) \(event == "ADD" ? "added" : "updated")")
            case "DEL":
                session.state.withLock { _ = $0.channels.removeValue(forKey: id) }
                logger.notice("gb28181: device \(session.id) channel \(id) deleted")
            default:
                logger.info("gb28181: device \(session.id) channel \(id): catalog event \(event) not known; ignored")
            }
        }
        guard await applyChannelStatus(statuses, sn: body.sn, session: session) else { return }
        peer.send(response(to: message, 200, "OK", peer: peer).serialized())
        session.publish()
        await session.context.seen()
    }

    /// Sets channel statuses and commits the events their changes make, with the registration
    /// as the device's cursor in the same transaction: OFF → `device.offline` and back ON →
    /// `device.online` (point = channel), VLOST → `camera.video-loss`, DEFECT → `vendor.other`.
    /// A channel first seen ON says nothing; first seen in another status, it is news.
    /// Returns false when the queue did not take them (the device's message stays unanswered).
    @discardableResult
    private func applyChannelStatus(_ changes: [(id: String, status: String, name: String?)], sn: String, session: GB28181Session) async -> Bool {
        var drafts: [EventDraft] = []
        session.state.withLock { s in
            for change in changes {
                var channel = s.channels[change.id] ?? GB28181Channel(name: change.name ?? "", status: nil)
                if let name = change.name, !name.isEmpty { channel.name = name }
                let old = channel.status
                channel.status = change.status
                s.channels[change.id] = channel
                guard old != change.status, old != nil || change.status != "ON" else { continue }
                let kind: EventKind
                var attributes: [String: JSONValue] = ["channelStatus": .string(change.status)]
                switch change.status {
                case "ON": kind = .deviceOnline
                case "OFF":
                    kind = .deviceOffline
                    attributes["reason"] = .string("channel off")
                case "VLOST": kind = .cameraVideoLoss
                case "DEFECT":
                    kind = .vendorOther
                    attributes["description"] = .string("channel defect")
                default: continue
                }
                if let old { attributes["previousStatus"] = .string(old) }
                if !channel.name.isEmpty { attributes["pointName"] = .string(channel.name) }
                drafts.append(EventDraft(kind: kind, point: change.id, attributes: attributes))
            }
        }
        guard !drafts.isEmpty else { return true }
        do {
            let outcomes = try await session.context.submit(drafts, cursor: session.saved.encoded)
            guard outcomes.allSatisfy(\.isAccepted) else {
                logger.warning("gb28181: channel status of \(session.id) refused by the queue (\(outcomes)); not acknowledged")
                return false
            }
        } catch {
            logger.warning("gb28181: channel status of \(session.id) not committed: \(error); not acknowledged")
            return false
        }
        for draft in drafts { logger.notice("gb28181: device \(session.id) channel \(draft.point ?? "?"): \(draft.kind.rawValue)") }
        session.publish()
        return true
    }

    // MARK: - Our own requests (UAC)

    private func queryAfterRegistration(_ session: GB28181Session) {
        let charset = session.state.withLock { $0.charset }
        func query(_ cmd: String) {
            let sn = state.withLock { s -> Int in
                defer { s.nextSN += 1 }
                return s.nextSN
            }
            send("MESSAGE", body: MANSCDPBody.encode(root: "Query", cmdType: cmd, sn: String(sn), deviceID: session.id, charset: charset), to: session)
        }
        if session.settings.queryCatalog { query("Catalog") }
        if session.settings.queryDeviceInfo {
            query("DeviceInfo")
            query("DeviceStatus")
        }
        if session.settings.subscribeAlarms {
            let sn = state.withLock { s -> Int in
                defer { s.nextSN += 1 }
                return s.nextSN
            }
            let body = MANSCDPBody.encode(
                root: "Query", cmdType: "Alarm", sn: String(sn), deviceID: session.id,
                extra: "<StartAlarmPriority>0</StartAlarmPriority>\r\n<EndAlarmPriority>0</EndAlarmPriority>\r\n<AlarmMethod>0</AlarmMethod>\r\n", charset: charset)
            send("SUBSCRIBE", body: body, to: session, extra: [("Event", "presence"), ("Expires", "3600")])
        }
    }

    /// Sends a request of ours (Query, Alarm Response, SUBSCRIBE) to where the device last spoke from.
    func send(_ method: String, body: [UInt8], to session: GB28181Session, extra: [(String, String)] = []) {
        guard let peer = session.state.withLock({ $0.peer }) else { return }
        let cseq = state.withLock { s -> Int in
            defer { s.nextCSeq += 1 }
            return s.nextCSeq
        }
        let settings = session.settings
        var headers: [(name: String, value: String)] = [
            ("Via", "SIP/2.0/\(peer.transport.rawValue) \(peer.local);rport;branch=z9hG4bK\(Self.token())"),
            ("From", "<sip:\(settings.platformID)@\(settings.domain)>;tag=\(Self.token())"),
            ("To", "<sip:\(session.id)@\(settings.domain)>"),
            ("Call-ID", "\(Self.token())@gatehouse"),
            ("CSeq", "\(cseq) \(method)"),
            ("Max-Forwards", "70"),
            ("User-Agent", "Gatehouse"),
            ("Content-Type", "Application/MANSCDP+xml"),
        ]
        if method == "SUBSCRIBE" { headers.append(("Contact", "<sip:\(settings.platformID)@\(peer.local)>")) }
        headers += extra.map { (name: $0.0, value: $0.1) }
        let request = SIPMessage(start: .request(method: method, uri: "sip:\(session.id)@\(peer.address)"), headers: headers, body: body)
        let bytes = request.serialized()
        peer.send(bytes)
        // UDP loses datagrams: resend until a final answer (RFC 3261 timer E: 0.5 s doubling to 4 s, for 32 s).
        guard peer.transport == .udp, let key = Self.transactionKey(request) else { return }
        state.withLock { _ = $0.unanswered.insert(key) }
        retransmit(bytes, key: key, to: peer, after: 0.5, elapsed: 0)
    }

    private func retransmit(_ bytes: [UInt8], key: String, to peer: SIPPeer, after interval: Double, elapsed: Double) {
        _ = clock.schedule(after: .milliseconds(Int64(interval * 1000))) { [weak self] in
            guard let self, self.state.withLock({ $0.unanswered.contains(key) }) else { return }
            guard elapsed + interval < 32 else {
                self.state.withLock { _ = $0.unanswered.remove(key) }
                self.counters.record("unanswered request")
                return
            }
            peer.send(bytes)
            self.retransmit(bytes, key: key, to: peer, after: min(interval * 2, 4), elapsed: elapsed + interval)
        }
    }

    /// Call-ID and CSeq number: what ties an answer to our request.
    static func transactionKey(_ message: SIPMessage) -> String? {
        guard let callID = message.header("call-id"), let cseq = message.header("cseq")?.split(separator: " ").first else { return nil }
        return "\(callID) \(cseq)"
    }

    static func token() -> String { String(UInt64.random(in: 0...UInt64.max), radix: 16) }

    /// A response to `request`: Via (the top one with `received`/`rport` filled in), From, To
    /// (with our tag), Call-ID and CSeq copied, then `extra`.
    func response(to request: SIPMessage, _ code: Int, _ reason: String, peer: SIPPeer, extra: [(String, String)] = []) -> SIPMessage {
        var headers: [(name: String, value: String)] = []
        var firstVia = true
        for via in request.values("via") {
            guard firstVia else {
                headers.append(("Via", via))
                continue
            }
            firstVia = false
            var parts = via.split(separator: ";", omittingEmptySubsequences: false).map(String.init)
            parts.removeAll { $0.lowercased().hasPrefix("received=") }
            if let index = parts.firstIndex(where: { $0.lowercased() == "rport" || $0.lowercased().hasPrefix("rport=") }) {
                parts[index] = "rport=\(peer.port)"
            }
            parts.insert("received=\(peer.host)", at: min(1, parts.count))
            headers.append(("Via", parts.joined(separator: ";")))
        }
        if let from = request.header("from") { headers.append(("From", from)) }
        if var to = request.header("to") {
            if code > 100, SIPMessage.parameter("tag", in: to) == nil { to += ";tag=\(Self.token().prefix(8))" }
            headers.append(("To", to))
        }
        for name in ["call-id", "cseq"] { if let value = request.header(name) { headers.append((name == "cseq" ? "CSeq" : "Call-ID", value)) } }
        headers.append(("User-Agent", "Gatehouse"))
        headers += extra.map { (name: $0.0, value: $0.1) }
        return SIPMessage(start: .response(code: code, reason: reason), headers: headers, body: [])
    }
}
