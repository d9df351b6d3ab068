import Crypto
import Foundation
import GatehouseCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Plays an ONVIF camera's device and event services on 127.0.0.1: GetSystemDateAndTime (no
/// credentials), GetDeviceInformation, GetServices/GetCapabilities, CreatePullPointSubscription,
/// PullMessages (long-poll), Renew and Unsubscribe, the media service's GetProfiles and
/// GetSnapshotUri with the snapshot itself (a JPEG as `SnapshotCamera` makes them), behind WS-Security UsernameToken digests
/// checked against the camera's own clock (which can be set off), and optionally HTTP Digest.
/// Subscriptions expire on the camera's clock and a reboot forgets them; faults, unreadable
/// replies, a wrong password and vendor quirks can be switched on; tests fire alarms by topic.
public final class ONVIFCamera: Sendable {
    /// Vendor behaviour the simulator can put on (the driver's quirk table must cope).
    public enum Vendor: String, Sendable, CaseIterable {
        /// Plain ONVIF.
        case generic
        /// Manufacturer "HIKVISION": every request must also carry HTTP Digest (firmware ≥ 5.7.13).
        case hikvision
        /// Manufacturer "AXIS": a generic subscription address with ReferenceParameters that must be echoed.
        case axis
        /// Manufacturer "Uniview": durations only in minutes (`PT10M`); seconds are InvalidArgs.
        case uniview
        /// Manufacturer "TP-Link" (Tapo): one subscription at a time; InitialTerminationTime required.
        case tapo

        var manufacturer: String {
            switch self {
            case .generic: "Gatehouse Sim"
            case .hikvision: "HIKVISION"
            case .axis: "AXIS"
            case .uniview: "Uniview"
            case .tapo: "TP-Link"
            }
        }
    }

    /// What the camera saw, for tests.
    public struct Figures: Sendable, Equatable {
        /// Requests by body element (`PullMessages`, `Renew`…).
        public var requests: [String: Int] = [:]
        /// Requests refused for credentials (WS-Security or HTTP Digest).
        public var refusedCredentials = 0
        /// Requests refused because `Created` was outside the window of the camera's clock.
        public var staleCreated = 0
        public var subscriptionsCreated = 0
        public var unsubscribed = 0
        /// Requests that named a subscription the camera does not have.
        public var unknownSubscription = 0
        /// Largest number of live subscriptions at once.
        public var maxLive = 0

        public func count(_ operation: String) -> Int { requests[operation] ?? 0 }
        public var total: Int { requests.values.reduce(0, +) }
    }

    /// One property the camera holds (a detector's current state), replayed as `Initialized`.
    struct Property {
        var topic: String
        var source: [(String, String)]
        var data: [(String, String)]
        var time: Date
    }

    struct Subscription {
        var id: Int
        var termination: Date
        var queue: [String] = []
    }

    private struct State {
        var figures = Figures()
        var subscriptions: [Int: Subscription] = [:]
        var nextID = 1
        var properties: [String: Property] = [:]
        var clockOffset: Double
        var password: String
        /// Faults to answer the next request of an operation with.
        var faults: [String: [String]] = [:]
        var malformedPulls = 0
        var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]
        var inFlight = 0
        /// What the snapshot shows, the frame count, snapshots served, and the path GetSnapshotUri
        /// names now (`moveSnapshot()` changes it, so the old URI answers 404).
        var picture = SnapshotCamera.Picture.sharp
        var frame = 0
        var snapshotsServed = 0
        var snapshotPath = "/onvif/snapshot/1.jpg"
    }

    public let username: String
    public let vendor: Vendor
    public let model: String
    public let firmware: String
    /// How far a `Created` may be from the camera's clock (anti-replay).
    public let createdWindowSeconds: Double
    /// The longest a PullMessages is held open (real time), whatever Timeout asks.
    public let maxHold: Duration
    private let now: @Sendable () -> Date
    private let state: Mutex<State>
    private let server = SimulatedServer(name: "onvif camera simulator")
    private let nonceKey = SymmetricKey(size: .bits256)
    /// The snapshot URI is protected by HTTP Digest (GET), as on most cameras, with the initial password.
    private let snapshotDigest: SimulatedDigest
    private let logger: Logger

    /// `now` is the gateway-side truth (tests pass their clock); the camera reads it plus
    /// `clockOffsetSeconds`.
    public init(
        username: String = "gateway", password: String = "Demo#2025", vendor: Vendor = .generic, model: String = "SimCam 1",
        firmware: String = "V5.7.3", clockOffsetSeconds: Double = 0, createdWindowSeconds: Double = 300,
        maxHold: Duration = .seconds(60), now: @escaping @Sendable () -> Date = { Date() }, logger: Logger
    ) {
        self.username = username
        self.vendor = vendor
        self.model = model
        self.firmware = firmware
        self.createdWindowSeconds = createdWindowSeconds
        self.maxHold = maxHold
        self.now = now
        self.logger = logger
        state = Mutex(State(clockOffset: clockOffsetSeconds, password: password))
        snapshotDigest = SimulatedDigest(username: username, password: password, realm: "IP Camera Snapshot")
    }

    // MARK: - Controls

    public var figures: Figures { state.withLock { $0.figures } }
    /// Requests being answered now (a test moves its clock only while this is 0).
    public var requestsInFlight: Int { state.withLock { $0.inFlight } }
    public var liveSubscriptions: Int { state.withLock { s in s.subscriptions.values.filter { $0.termination > cameraTime(s) }.count } }

    /// The camera's clock.
    public var cameraNow: Date { state.withLock { cameraTime($0) } }

    /// What the media service's snapshot shows from now on.
    public func setPicture(_ picture: SnapshotCamera.Picture) { state.withLock { $0.picture = picture } }
    /// Snapshots served from the URI GetSnapshotUri names.
    public var snapshotsServed: Int { state.withLock { $0.snapshotsServed } }
    /// Moves the snapshot to a new path (as a firmware update may): the URI handed out before answers 404.
    public func moveSnapshot() {
        state.withLock { s in
            let next = (Int(s.snapshotPath.split(separator: "/").last?.split(separator: ".").first ?? "1") ?? 1) + 1
            s.snapshotPath = "/onvif/snapshot/\(next).jpg"
        }
    }

    public func setClockOffset(_ seconds: Double) { state.withLock { $0.clockOffset = seconds } }
    public func setPassword(_ password: String) { state.withLock { $0.password = password } }

    /// Forgets every subscription (they answer ResourceUnknown from now on), as a reboot does;
    /// detector states are kept (the camera sends them as `Initialized` to the next subscriber).
    public func reboot() {
        state.withLock { $0.subscriptions.removeAll() }
        wakeAll()
    }

    /// Another client's subscription (or one a gateway leaked) that holds a pull point for `seconds`.
    public func holdPullPoint(seconds: Double) {
        state.withLock { s in
            s.subscriptions[s.nextID] = Subscription(id: s.nextID, termination: cameraTime(s).addingTimeInterval(seconds))
            s.nextID += 1
        }
    }

    /// Answers the next request of `operation` (`PullMessages`, `Renew`, `CreatePullPointSubscription`…)
    /// with a SOAP fault whose subcode is `subcode` (`ter:InvalidArgs`, `wsrf-rw:ResourceUnknownFault`).
    public func failNext(_ operation: String, subcode: String) {
        state.withLock { $0.faults[operation, default: []].append(subcode) }
    }

    /// The next `count` PullMessages replies are not XML.
    public func sendUnreadablePulls(_ count: Int = 1) { state.withLock { $0.malformedPulls += count } }

    /// Queues a NotificationMessage whose XML is `xml` verbatim to every live subscription.
    public func sendRaw(_ xml: String) {
        state.withLock { s in
            for id in s.subscriptions.keys { s.subscriptions[id]?.queue.append(xml) }
        }
        wakeAll()
    }

    /// A detector changes state (`Changed`), or fires once (`property: false`: no PropertyOperation).
    /// `time` is the camera's UtcTime (default: its clock); `utcText` replaces it verbatim.
    public func fire(
        topic: String, source: [(String, String)] = [("VideoSourceConfigurationToken", "vsc_1")], data: [(String, String)],
        property: Bool = true, time: Date? = nil, utcText: String? = nil
    ) {
        state.withLock { s in
            let stamp = time ?? cameraTime(s)
            if property {
                let key = topic + "|" + source.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
                s.properties[key] = Property(topic: topic, source: source, data: data, time: stamp)
            }
            let xml = Self.notification(topic: topic, operation: property ? "Changed" : nil, source: source, data: data, utcText: utcText ?? Self.utc(stamp))
            for id in s.subscriptions.keys { s.subscriptions[id]?.queue.append(xml) }
        }
        wakeAll()
    }

    /// A boolean detector: `State`/`IsMotion`/`LogicalState` by topic.
    public func alarm(_ topic: String, active: Bool, source: [(String, String)] = [("VideoSourceConfigurationToken", "vsc_1")], time: Date? = nil) {
        let item: String
        if topic.hasSuffix("CellMotionDetector/Motion") { item = "IsMotion" }
        else if topic.hasSuffix("TamperDetector/Tamper") { item = "IsTamper" }
        else if topic.contains("DigitalInput") { item = "LogicalState" }
        else { item = "State" }
        fire(topic: topic, source: source, data: [(item, active ? "true" : "false")], time: time)
    }

    // MARK: - Serving

    public func run(port: Int = 0) async throws {
        try await server.run(host: "127.0.0.1", port: port, logger: logger) { request in await self.respond(to: request) }
    }

    public func waitUntilRunning(timeout: Duration = .seconds(60)) async throws -> Int {
        try await server.waitUntilRunning(timeout: timeout) { ONVIFCameraError(description: $0) }
    }

    private func cameraTime(_ s: State) -> Date { now().addingTimeInterval(s.clockOffset) }

    func respond(to request: Request) async -> Response {
        state.withLock { $0.inFlight += 1 }
        defer { state.withLock { $0.inFlight -= 1 } }
        if request.method == .get, request.uri.path.hasPrefix("/onvif/snapshot/") { return snapshot(request) }
        guard request.method == .post else { return Response(status: .methodNotAllowed) }
        let text: String
        do {
            text = String(decoding: try await request.body.collect(upTo: 1 << 20).readableBytesView, as: UTF8.self)
        } catch {
            return Response(status: .contentTooLarge)
        }
        let operation = Self.bodyElement(text) ?? ""
        let authority = request.head.authority ?? "127.0.0.1"
        state.withLock { $0.figures.requests[operation, default: 0] += 1 }
        // HTTP Digest first, as Hikvision firmware checks it before looking at the envelope.
        if vendor == .hikvision {
            let password = state.withLock { $0.password }
            guard let header = request.headers[.authorization], verifyDigest(header, uri: request.uri.description, password: password) else {
                if request.headers[.authorization] != nil { state.withLock { $0.figures.refusedCredentials += 1 } }
                var headers = HTTPFields()
                headers[.wwwAuthenticate] = "Digest qop=\"auth\", realm=\"IP Camera(C2358)\", nonce=\"\(digestNonce())\", stale=\"FALSE\""
                return Response(status: .unauthorized, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "<html>401 -- Unauthorized</html>")))
            }
        }
        if operation != "GetSystemDateAndTime" {
            if let refusal = checkUsernameToken(text) { return refusal }
        }
        if let subcode = state.withLock({ s -> String? in s.faults[operation]?.isEmpty == false ? s.faults[operation]?.removeFirst() : nil }) {
            return Self.fault(subcode: subcode, reason: "simulated fault")
        }
        let base = "http://\(authority)"
        let idx = request.uri.queryParameters.get("Idx").flatMap { Int($0) }
        switch operation {
        case "GetSystemDateAndTime": return Self.ok(systemDateAndTime())
        case "GetDeviceInformation":
            return Self.ok("<tds:GetDeviceInformationResponse><tds:Manufacturer>\(vendor.manufacturer)</tds:Manufacturer><tds:Model>\(model)</tds:Model><tds:FirmwareVersion>\(firmware)</tds:FirmwareVersion><tds:SerialNumber>SIM0001</tds:SerialNumber><tds:HardwareId>1.0</tds:HardwareId></tds:GetDeviceInformationResponse>")
        case "GetServices":
            return Self.ok("""
                <tds:GetServicesResponse><tds:Service><tds:Namespace>http://www.onvif.org/ver10/device/wsdl</tds:Namespace><tds:XAddr>\(base)/onvif/device_service</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>\
                <tds:Service><tds:Namespace>http://www.onvif.org/ver10/events/wsdl</tds:Namespace><tds:XAddr>\(base)/onvif/Events</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>\
                <tds:Service><tds:Namespace>http://www.onvif.org/ver10/media/wsdl</tds:Namespace><tds:XAddr>\(base)/onvif/Media</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service></tds:GetServicesResponse>
                """)
        case "GetCapabilities":
            return Self.ok("""
                <tds:GetCapabilitiesResponse><tds:Capabilities><tt:Device><tt:XAddr>\(base)/onvif/device_service</tt:XAddr></tt:Device>\
                <tt:Events><tt:XAddr>\(base)/onvif/Events</tt:XAddr><tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport>\
                <tt:WSPullPointSupport>true</tt:WSPullPointSupport><tt:WSPausableSubscriptionManagerInterfaceSupport>false</tt:WSPausableSubscriptionManagerInterfaceSupport></tt:Events>\
                <tt:Media><tt:XAddr>\(base)/onvif/Media</tt:XAddr><tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media></tds:Capabilities></tds:GetCapabilitiesResponse>
                """)
        case "CreatePullPointSubscription": return createSubscription(text, base: base)
        case "PullMessages": return await pull(text, idx: idx)
        case "Renew": return renew(text, idx: idx)
        case "Unsubscribe": return unsubscribe(text, idx: idx)
        case "SetSynchronizationPoint": return Self.ok("<tev:SetSynchronizationPointResponse/>")
        case "GetProfiles":
            return Self.ok("<trt:GetProfilesResponse><trt:Profiles token=\"Profile_1\" fixed=\"true\"><tt:Name>mainStream</tt:Name></trt:Profiles><trt:Profiles token=\"Profile_2\" fixed=\"true\"><tt:Name>subStream</tt:Name></trt:Profiles></trt:GetProfilesResponse>")
        case "GetSnapshotUri":
            let path = state.withLock { $0.snapshotPath }
            return Self.ok("""
                <trt:GetSnapshotUriResponse><trt:MediaUri><tt:Uri>\(base)\(path)</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>\
                <tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetSnapshotUriResponse>
                """)
        default:
            return Self.fault(subcode: "ter:ActionNotSupported", reason: "operation '\(operation)' not simulated")
        }
    }

    // MARK: - Snapshot

    /// `GET` of the URI GetSnapshotUri names: a JPEG encoded as `SnapshotCamera` encodes its own,
    /// behind HTTP Digest; any other snapshot path is 404 (a moved snapshot).
    private func snapshot(_ request: Request) -> Response {
        let (path, picture, frame) = state.withLock { s -> (String, SnapshotCamera.Picture, Int) in
            s.frame += 1
            return (s.snapshotPath, s.picture, s.frame)
        }
        guard request.uri.path == path else { return Response(status: .notFound) }
        guard let header = request.headers[.authorization], snapshotDigest.verify(header, method: "GET", uri: request.uri.description) else {
            if request.headers[.authorization] != nil { state.withLock { $0.figures.refusedCredentials += 1 } }
            var headers = HTTPFields()
            headers[.wwwAuthenticate] = snapshotDigest.challenge()
            return Response(status: .unauthorized, headers: headers)
        }
        // Frozen repeats frame 1; the others move with the frame, as a live camera's picture does.
        let (width, height) = (640, 360)
        let scene = SnapshotCamera.scene(picture == .frozen ? .sharp : picture, frame: picture == .frozen ? 1 : frame, width: width, height: height)
        guard let jpeg = try? SnapshotCamera.encode(rgb: scene, width: width, height: height) else { return Response(status: .internalServerError) }
        state.withLock { $0.snapshotsServed += 1 }
        return Response(status: .ok, headers: [.contentType: "image/jpeg"], body: .init(byteBuffer: ByteBuffer(bytes: jpeg)))
    }

    // MARK: - WS-Security

    /// nil when the UsernameToken is right and fresh on the camera's clock; else the fault to answer.
    private func checkUsernameToken(_ text: String) -> Response? {
        let (password, cameraNow) = state.withLock { ($0.password, cameraTime($0)) }
        guard let user = Self.element("Username", in: text), let digest = Self.element("Password", in: text),
            let nonceText = Self.element("Nonce", in: text), let nonce = Data(base64Encoded: nonceText), let created = Self.element("Created", in: text)
        else {
            state.withLock { $0.figures.refusedCredentials += 1 }
            return Self.fault(subcode: "ter:NotAuthorized", reason: "Sender not Authorized", status: .badRequest)
        }
        var hasher = Insecure.SHA1()
        hasher.update(data: nonce)
        hasher.update(data: Data(created.utf8))
        hasher.update(data: Data(password.utf8))
        let expected = Data(hasher.finalize()).base64EncodedString()
        guard user == username, expected == digest else {
            state.withLock { $0.figures.refusedCredentials += 1 }
            return Self.fault(subcode: "ter:NotAuthorized", reason: "Sender not Authorized", status: .badRequest)
        }
        guard let createdTime = DeviceTimeParser.parseRFC3339(created), abs(createdTime.date.timeIntervalSince(cameraNow)) <= createdWindowSeconds else {
            state.withLock { $0.figures.staleCreated += 1 }
            return Self.fault(subcode: "ter:NotAuthorized", reason: "Created \(created) is not recent", status: .badRequest)
        }
        return nil
    }

    // MARK: - Subscriptions

    private func createSubscription(_ text: String, base: String) -> Response {
        guard let requested = Self.element("InitialTerminationTime", in: text) else {
            // Tapo answers 500 without it; the driver always sends it.
            return Self.fault(subcode: "ter:InvalidArgVal", reason: "InitialTerminationTime required", status: .internalServerError)
        }
        return state.withLock { s -> Response in
            let cameraNow = cameraTime(s)
            guard let termination = termination(requested, cameraNow: cameraNow) else {
                return Self.fault(subcode: "ter:InvalidArgs", reason: "InitialTerminationTime '\(requested)' not accepted")
            }
            s.subscriptions = s.subscriptions.filter { $0.value.termination > cameraNow }
            if vendor == .tapo, !s.subscriptions.isEmpty {
                return Self.fault(subcode: "ter:TooManySubscriptions", reason: "one pull point only")
            }
            let id = s.nextID
            s.nextID += 1
            var subscription = Subscription(id: id, termination: termination)
            // The new subscriber hears the current state of every property first.
            subscription.queue = s.properties.values.sorted { $0.topic < $1.topic }.map {
                Self.notification(topic: $0.topic, operation: "Initialized", source: $0.source, data: $0.data, utcText: Self.utc(cameraNow))
            }
            s.subscriptions[id] = subscription
            s.figures.subscriptionsCreated += 1
            s.figures.maxLive = max(s.figures.maxLive, s.subscriptions.count)
            let reference: String
            if vendor == .axis {
                reference = "<wsa:Address>\(base)/onvif/services</wsa:Address><wsa:ReferenceParameters><dom0:SubscriptionId xmlns:dom0=\"http://www.axis.com/2009/event\">\(id)</dom0:SubscriptionId></wsa:ReferenceParameters>"
            } else {
                reference = "<wsa:Address>\(base)/onvif/Subscription?Idx=\(id)</wsa:Address>"
            }
            return Self.ok("<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference>\(reference)</tev:SubscriptionReference><wsnt:CurrentTime>\(Self.utc(cameraNow))</wsnt:CurrentTime><wsnt:TerminationTime>\(Self.utc(termination))</wsnt:TerminationTime></tev:CreatePullPointSubscriptionResponse>")
        }
    }

    /// A duration (`PT600S`, `PT10M`) or an absolute time, per the vendor's rules.
    private func termination(_ text: String, cameraNow: Date) -> Date? {
        let value = text.trimmingCharacters(in: .whitespaces)
        if value.hasPrefix("P") {
            if vendor == .uniview, value.hasSuffix("S") { return nil }
            guard let match = value.wholeMatch(of: /PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?/) else { return nil }
            let seconds = (match.1.flatMap { Double($0) } ?? 0) * 3600 + (match.2.flatMap { Double($0) } ?? 0) * 60 + (match.3.flatMap { Double($0) } ?? 0)
            return seconds > 0 ? cameraNow.addingTimeInterval(seconds) : nil
        }
        guard let time = DeviceTimeParser.parseRFC3339(value), time.date > cameraNow else { return nil }
        return time.date
    }

    /// The subscription a request names: `?Idx=` in the URL, or the echoed `SubscriptionId` (Axis).
    private func subscriptionID(_ text: String, idx: Int?) -> Int? {
        if vendor == .axis {
            guard text.contains("IsReferenceParameter=\"true\"") || text.contains("IsReferenceParameter='true'") else { return nil }
            return Self.element("SubscriptionId", in: text).flatMap { Int($0) }
        }
        return idx
    }

    /// The live subscription a request names, or the ResourceUnknown fault to answer.
    private func live(_ text: String, idx: Int?) -> Result<Int, FaultReply> {
        let id = subscriptionID(text, idx: idx)
        return state.withLock { s in
            guard let id, let subscription = s.subscriptions[id], subscription.termination > cameraTime(s) else {
                s.figures.unknownSubscription += 1
                if let id { s.subscriptions[id] = nil }
                return .failure(FaultReply(Self.fault(subcode: "wsrf-rw:ResourceUnknownFault", reason: "no such subscription", detail: "<wsrf-rw:ResourceUnknownFault/>")))
            }
            return .success(id)
        }
    }

    struct FaultReply: Error { let response: Response; init(_ r: Response) { response = r } }

    private func pull(_ text: String, idx: Int?) async -> Response {
        let id: Int
        switch live(text, idx: idx) {
        case .success(let found): id = found
        case .failure(let reply): return reply.response
        }
        if state.withLock({ s -> Bool in
            guard s.malformedPulls > 0 else { return false }
            s.malformedPulls -= 1
            return true
        }) {
            return Response(status: .ok, headers: [.contentType: "application/soap+xml"], body: .init(byteBuffer: ByteBuffer(string: "<s:Envelope><s:Body><tev:PullMessagesResponse><wsnt:Notifi")))
        }
        let limit = Self.element("MessageLimit", in: text).flatMap { Int($0) } ?? 100
        let timeout = Self.element("Timeout", in: text).flatMap { Self.seconds($0) } ?? 10
        let hold = min(Duration.milliseconds(Int64(timeout * 1000)), maxHold)
        if state.withLock({ $0.subscriptions[id]?.queue.isEmpty ?? true }) {
            await waitForMessages(for: id, upTo: hold)
        }
        return state.withLock { s -> Response in
            let cameraNow = cameraTime(s)
            guard var subscription = s.subscriptions[id], subscription.termination > cameraNow else {
                s.figures.unknownSubscription += 1
                return Self.fault(subcode: "wsrf-rw:ResourceUnknownFault", reason: "no such subscription", detail: "<wsrf-rw:ResourceUnknownFault/>")
            }
            let taken = Array(subscription.queue.prefix(max(1, limit)))
            subscription.queue.removeFirst(taken.count)
            s.subscriptions[id] = subscription
            return Self.ok("<tev:PullMessagesResponse><tev:CurrentTime>\(Self.utc(cameraNow))</tev:CurrentTime><tev:TerminationTime>\(Self.utc(subscription.termination))</tev:TerminationTime>\(taken.joined())</tev:PullMessagesResponse>")
        }
    }

    private func renew(_ text: String, idx: Int?) -> Response {
        let id: Int
        switch live(text, idx: idx) {
        case .success(let found): id = found
        case .failure(let reply): return reply.response
        }
        return state.withLock { s -> Response in
            let cameraNow = cameraTime(s)
            guard let requested = Self.element("TerminationTime", in: text), let termination = termination(requested, cameraNow: cameraNow) else {
                return Self.fault(subcode: "ter:InvalidArgs", reason: "TerminationTime not accepted")
            }
            s.subscriptions[id]?.termination = termination
            return Self.ok("<wsnt:RenewResponse><wsnt:TerminationTime>\(Self.utc(termination))</wsnt:TerminationTime><wsnt:CurrentTime>\(Self.utc(cameraNow))</wsnt:CurrentTime></wsnt:RenewResponse>")
        }
    }

    private func unsubscribe(_ text: String, idx: Int?) -> Response {
        let id: Int
        switch live(text, idx: idx) {
        case .success(let found): id = found
        case .failure(let reply): return reply.response
        }
        state.withLock { s in
            s.subscriptions[id] = nil
            s.figures.unsubscribed += 1
        }
        wakeAll()
        return Self.ok("<wsnt:UnsubscribeResponse/>")
    }

    // MARK: - Long-poll

    /// Returns when a message is queued, the camera reboots, or `limit` passes (real time). The
    /// subscription's queue is looked at again in the lock that registers the waiter: a message
    /// fired between the caller's look and the registration would wake nobody, and the pull would
    /// sit out its whole timeout (ONVIF alarms 30 s late in the camera benchmark).
    private func waitForMessages(for subscription: Int, upTo limit: Duration) async {
        let id = UUID()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: limit) }
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let resumeNow = self.state.withLock { s -> Bool in
                            if Task.isCancelled || !(s.subscriptions[subscription]?.queue.isEmpty ?? true) { return true }
                            s.waiters[id] = continuation
                            return false
                        }
                        if resumeNow { continuation.resume() }
                    }
                } onCancel: {
                    self.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    private func wakeAll() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            defer { s.waiters.removeAll() }
            return Array(s.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    // MARK: - XML

    static let namespaces = """
        xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing" \
        xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tev="http://www.onvif.org/ver10/events/wsdl" \
        xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:tt="http://www.onvif.org/ver10/schema" \
        xmlns:tns1="http://www.onvif.org/ver10/topics" xmlns:ter="http://www.onvif.org/ver10/error" \
        xmlns:wsrf-rw="http://docs.oasis-open.org/wsrf/rw-2" xmlns:trt="http://www.onvif.org/ver10/media/wsdl"
        """

    static func ok(_ body: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/soap+xml; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope \(namespaces)><s:Header/><s:Body>\(body)</s:Body></s:Envelope>")))
    }

    static func fault(subcode: String, reason: String, status: HTTPResponse.Status = .badRequest, detail: String = "") -> Response {
        let body = """
            <s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>\(subcode)</s:Value></s:Subcode></s:Code>\
            <s:Reason><s:Text xml:lang="en">\(reason)</s:Text></s:Reason>\(detail.isEmpty ? "" : "<s:Detail>\(detail)</s:Detail>")</s:Fault>
            """
        var response = ok(body)
        response.status = status
        return response
    }

    static func notification(topic: String, operation: String?, source: [(String, String)], data: [(String, String)], utcText: String) -> String {
        let items = { (list: [(String, String)]) in list.map { "<tt:SimpleItem Name=\"\($0.0)\" Value=\"\($0.1)\"/>" }.joined() }
        let op = operation.map { " PropertyOperation=\"\($0)\"" } ?? ""
        return """
            <wsnt:NotificationMessage><wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">\(topic)</wsnt:Topic>\
            <wsnt:Message><tt:Message UtcTime="\(utcText)"\(op)><tt:Source>\(items(source))</tt:Source><tt:Data>\(items(data))</tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>
            """
    }

    private func systemDateAndTime() -> String {
        let time = state.withLock { cameraTime($0) }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: time)
        return """
            <tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>\
            <tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone><tt:UTCDateTime><tt:Time><tt:Hour>\(c.hour ?? 0)</tt:Hour><tt:Minute>\(c.minute ?? 0)</tt:Minute><tt:Second>\(c.second ?? 0)</tt:Second></tt:Time>\
            <tt:Date><tt:Year>\(c.year ?? 1970)</tt:Year><tt:Month>\(c.month ?? 1)</tt:Month><tt:Day>\(c.day ?? 1)</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>
            """
    }

    static func utc(_ date: Date) -> String {
        String(Timestamp(date).rfc3339.prefix(19)) + "Z"
    }

    /// The text of the first element with this local name.
    static func element(_ local: String, in text: String) -> String? {
        guard let regex = try? Regex("<(?:[A-Za-z0-9_.-]+:)?\(local)(?:\\s[^>]*)?>([^<]*)</") else { return nil }
        guard let match = text.firstMatch(of: regex), let value = match.output[1].substring else { return nil }
        return String(value).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The local name of the first element in the SOAP Body.
    static func bodyElement(_ text: String) -> String? {
        guard let match = text.firstMatch(of: /<(?:[A-Za-z0-9_.-]+:)?Body(?:\s[^>]*)?>\s*<(?:[A-Za-z0-9_.-]+:)?([A-Za-z]+)/) else { return nil }
        return String(match.1)
    }

    static func seconds(_ duration: String) -> Double? {
        guard let match = duration.wholeMatch(of: /PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?/) else { return nil }
        return (match.1.flatMap { Double($0) } ?? 0) * 3600 + (match.2.flatMap { Double($0) } ?? 0) * 60 + (match.3.flatMap { Double($0) } ?? 0)
    }

    // MARK: - HTTP Digest (vendor hikvision)

    private func digestNonce() -> String {
        let stamp = String(Int64(Date().timeIntervalSince1970))
        let mac = HMAC<SHA256>.authenticationCode(for: Data(stamp.utf8), using: nonceKey)
        return stamp + "." + Data(mac).prefix(12).map { String(format: "%02x", $0) }.joined()
    }

    private func verifyDigest(_ header: String, uri: String, password: String) -> Bool {
        guard header.lowercased().hasPrefix("digest ") else { return false }
        let fields = SimulatedDigest.parse(String(header.dropFirst(7)))
        guard fields["username"] == username, fields["realm"] == "IP Camera(C2358)", fields["uri"] == uri, let nonce = fields["nonce"],
            let response = fields["response"], let nc = fields["nc"], let cnonce = fields["cnonce"], fields["qop"] == "auth"
        else { return false }
        let parts = nonce.split(separator: ".")
        guard parts.count == 2 else { return false }
        let mac = HMAC<SHA256>.authenticationCode(for: Data(String(parts[0]).utf8), using: nonceKey)
        guard Data(mac).prefix(12).map({ String(format: "%02x", $0) }).joined() == parts[1] else { return false }
        let ha1 = SimulatedDigest.md5("\(username):IP Camera(C2358):\(password)")
        let ha2 = SimulatedDigest.md5("POST:\(uri)")
        return SimulatedDigest.md5("\(ha1):\(nonce):\(nc):\(cnonce):auth:\(ha2)") == response.lowercased()
    }
}

public struct ONVIFCameraError: Error, CustomStringConvertible {
    public let description: String
}
