import AsyncHTTPClient
import Crypto
import Foundation
import GatehouseCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Plays a Hikvision ISAPI camera (one channel) or NVR (several): `alertStream` behind HTTP
/// Digest as a never-ending `multipart/mixed` body, with `videoloss inactive` keep-alives,
/// alarms fired from tests (or repeated every second while held, as NVRs do), garbage and
/// truncated parts on demand; `deviceInfo`, `Event/triggers` and `motionDetection` for
/// third-party clients (pyhik); and listening-mode pushes (XML, JSON, multipart with a picture).
public final class HikvisionCamera: Sendable {
    public enum Format: String, Sendable, CaseIterable { case xml, json, multipart }

    /// One alarm report.
    public struct Alert: Sendable, Equatable {
        public var eventType: String
        public var active: Bool
        public var channel: Int
        public var ioPort: Int?
        /// `dateTime` as written; nil writes the camera's clock with +08:00.
        public var dateTime: String?
        /// Which of the three schema namespaces to use (0…2), or nil for none.
        public var namespace: Int?
        public var relationEvent: String?

        public init(
            eventType: String, active: Bool = true, channel: Int = 1, ioPort: Int? = nil, dateTime: String? = nil, namespace: Int? = 0,
            relationEvent: String? = nil
        ) {
            self.eventType = eventType
            self.active = active
            self.channel = channel
            self.ioPort = ioPort
            self.dateTime = dateTime
            self.namespace = namespace
            self.relationEvent = relationEvent
        }
    }

    /// What the simulator saw and sent, for tests.
    public struct Figures: Sendable, Equatable {
        /// Every request to the stream path, answered or refused.
        public var streamRequests = 0
        public var challenges = 0
        public var refusedCredentials = 0
        public var streamsOpened = 0
        public var heartbeatsSent = 0
        public var alertsSent = 0
        public var requests: [String] = []
    }

    static let namespaces = [
        "http://www.hikvision.com/ver20/XMLSchema", "http://www.isapi.org/ver20/XMLSchema", "http://www.std-cgi.com/ver20/XMLSchema",
    ]

    public let username: String
    public let password: String
    public let channels: Int
    public let realm: String
    public let boundary = "boundary"
    private let heartbeatInterval: Duration?
    private let state = Mutex(State())
    private let server = SimulatedServer(name: "hikvision camera simulator")
    private let digest: SimulatedDigest
    private let logger: Logger

    private struct State {
        var figures = Figures()
        var streams: [Int: AsyncStream<ByteBuffer>.Continuation] = [:]
        var nextStream = 0
        /// Alarms held active: repeated every second on every stream, as an NVR does.
        var held: [String: Alert] = [:]
    }

    /// `channels` > 1 plays an NVR. `heartbeatInterval` nil sends no keep-alives (for stall tests).
    public init(
        username: String = "admin", password: String = "hik12345", channels: Int = 1, heartbeatInterval: Duration? = .seconds(5),
        logger: Logger
    ) {
        self.username = username
        self.password = password
        self.channels = max(1, channels)
        self.heartbeatInterval = heartbeatInterval
        self.realm = channels > 1 ? "DS-7608NI-K2" : "DS-2CD2043G2-I"
        digest = SimulatedDigest(username: username, password: password, realm: realm)
        self.logger = logger
    }

    /// Closes the open streams. Pushes go through `HTTPClient.shared` (each with its own
    /// timeout), so a camera a failed test drops has no client of its own left to shut down.
    public func shutdown() async {
        closeStreams()
    }

    public var figures: Figures { state.withLock { $0.figures } }
    public var openStreams: Int { state.withLock { $0.streams.count } }

    // MARK: - Firing

    /// Sends one alert part to every open stream.
    public func fire(_ alert: Alert, format: Format = .xml) {
        let body = format == .json ? json(alert) : xml(alert)
        let type = format == .json ? "application/json; charset=\"UTF-8\"" : "application/xml; charset=\"UTF-8\""
        send(part(body, contentType: type))
        state.withLock { $0.figures.alertsSent += 1 }
    }

    /// Holds an alarm active: it is sent now and repeated every second until `release`.
    public func hold(_ alert: Alert) {
        state.withLock { $0.held["\(alert.eventType)/\(alert.channel)/\(alert.ioPort ?? 0)"] = alert }
        fire(alert)
    }

    /// Stops repeating a held alarm; `sayInactive` sends its inactive part (else it just goes quiet).
    public func release(_ alert: Alert, sayInactive: Bool = true) {
        state.withLock { _ = $0.held.removeValue(forKey: "\(alert.eventType)/\(alert.channel)/\(alert.ioPort ?? 0)") }
        if sayInactive {
            var end = alert
            end.active = false
            fire(end)
        }
    }

    /// Writes raw bytes to every stream: garbage, a truncated part, a lying Content-Length.
    public func sendRaw(_ bytes: [UInt8]) { send(ByteBuffer(bytes: bytes)) }

    /// A part with a `Content-Length` header of `length` instead of the true one.
    public func part(_ body: String, contentType: String = "application/xml; charset=\"UTF-8\"", length: Int? = nil) -> ByteBuffer {
        let size = length ?? body.utf8.count
        return ByteBuffer(string: "--\(boundary)\r\nContent-Type: \(contentType)\r\nContent-Length: \(size)\r\n\r\n\(body)\r\n")
    }

    /// Ends every open stream (the camera rebooting or dropping the connection).
    public func closeStreams() {
        let open = state.withLock { s -> [AsyncStream<ByteBuffer>.Continuation] in
            defer { s.streams.removeAll() }
            return Array(s.streams.values)
        }
        for continuation in open { continuation.finish() }
    }

    private func send(_ buffer: ByteBuffer) {
        let open = state.withLock { Array($0.streams.values) }
        for continuation in open { continuation.yield(buffer) }
    }

    // MARK: - Documents

    public func xml(_ alert: Alert) -> String {
        let ns = alert.namespace.map { " xmlns=\"\(Self.namespaces[$0 % 3])\"" } ?? ""
        var fields = "<ipAddress>10.255.255.1</ipAddress><portNo>80</portNo><protocol>HTTP</protocol><macAddress>44:19:b6:10:22:7e</macAddress>"
        fields += "<channelID>\(alert.channel)</channelID>"
        if channels > 1 { fields += "<dynChannelID>\(alert.channel)</dynChannelID>" }
        fields += "<dateTime>\(alert.dateTime ?? Self.now())</dateTime><activePostCount>1</activePostCount>"
        fields += "<eventType>\(alert.eventType)</eventType><eventState>\(alert.active ? "active" : "inactive")</eventState>"
        fields += "<eventDescription>\(alert.eventType) alarm</eventDescription>"
        if let port = alert.ioPort { fields += "<inputIOPortID>\(port)</inputIOPortID>" }
        if let relation = alert.relationEvent {
            fields += "<DurationList><Duration><relationEvent>\(relation)</relationEvent><occurrences>1</occurrences></Duration></DurationList>"
        }
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<EventNotificationAlert version=\"2.0\"\(ns)>\n\(fields)\n</EventNotificationAlert>"
    }

    public func json(_ alert: Alert) -> String {
        var text = """
            {"ipAddress":"10.255.255.1","portNo":80,"protocol":"HTTP","macAddress":"44:19:b6:10:22:7e","channelID":\(alert.channel),\
            "dateTime":"\(alert.dateTime ?? Self.now())","activePostCount":1,"eventType":"\(alert.eventType)",\
            "eventState":"\(alert.active ? "active" : "inactive")","eventDescription":"\(alert.eventType) alarm"
            """
        if let port = alert.ioPort { text += ",\"inputIOPortID\":\(port)" }
        return text + "}"
    }

    static func now() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(secondsFromGMT: 8 * 3600)
        return formatter.string(from: Date()).replacingOccurrences(of: "Z", with: "+08:00")
    }

    // MARK: - The ISAPI server

    /// Serves until cancelled; `waitUntilRunning()` gives the port.
    public func run(port: Int = 0) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.server.run(host: "127.0.0.1", port: port, logger: self.logger) { await self.respond(to: $0) } }
            group.addTask { try await self.repeatHeld() }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    public func waitUntilRunning(timeout: Duration = .seconds(60)) async throws -> Int {
        try await server.waitUntilRunning(timeout: timeout) { HikvisionTerminalError(description: $0) }
    }

    /// The NVR habit: every held alarm again each second; keep-alives every `heartbeatInterval`.
    private func repeatHeld() async throws {
        var tick = 0
        let heartbeatTicks = heartbeatInterval.map { max(1, Int($0.components.seconds * 4 + $0.components.attoseconds / 250_000_000_000_000_000)) }
        while true {
            try await Task.sleep(for: .milliseconds(250))
            tick += 1
            if tick % 4 == 0 {
                for alert in state.withLock({ Array($0.held.values) }) { fire(alert) }
            }
            if let heartbeatTicks, tick % heartbeatTicks == 0, openStreams > 0 {
                state.withLock { $0.figures.heartbeatsSent += 1 }
                send(part(xml(Alert(eventType: "videoloss", active: false, channel: 1))))
            }
        }
    }

    func respond(to request: Request) async -> Response {
        let path = request.uri.path
        let streamPath = path == "/ISAPI/Event/notification/alertStream" || path == "/Event/notification/alertStream"
        state.withLock {
            $0.figures.requests.append(path)
            if streamPath { $0.figures.streamRequests += 1 }
        }
        guard let header = request.headers[.authorization], digest.verify(header, method: request.method.rawValue, uri: request.uri.description) else {
            let refused = request.headers[.authorization]?.lowercased().hasPrefix("digest ") ?? false
            state.withLock {
                $0.figures.challenges += 1
                if refused { $0.figures.refusedCredentials += 1 }
            }
            var headers = HTTPFields()
            headers[.wwwAuthenticate] = digest.challenge()
            return Response(status: .unauthorized, headers: headers)
        }
        switch path {
        case "/ISAPI/Event/notification/alertStream", "/Event/notification/alertStream":
            return openStream()
        case "/ISAPI/System/deviceInfo":
            return Self.xmlResponse(deviceInfo)
        case "/ISAPI/Event/triggers":
            return Self.xmlResponse(triggers)
        case let p where p.hasSuffix("/motionDetection"):
            return Self.xmlResponse(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><MotionDetection version=\"2.0\" xmlns=\"\(Self.namespaces[0])\"><enabled>true</enabled></MotionDetection>")
        default:
            return Response(status: .notFound)
        }
    }

    private func openStream() -> Response {
        let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream(bufferingPolicy: .bufferingNewest(1024))
        let id = state.withLock { s -> Int in
            s.nextStream += 1
            s.streams[s.nextStream] = continuation
            s.figures.streamsOpened += 1
            return s.nextStream
        }
        continuation.onTermination = { [weak self] _ in self?.state.withLock { _ = $0.streams.removeValue(forKey: id) } }
        var headers = HTTPFields()
        headers[.contentType] = "multipart/mixed; boundary=\(boundary)"
        return Response(status: .ok, headers: headers, body: ResponseBody(asyncSequence: stream))
    }

    var deviceInfo: String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <DeviceInfo version="2.0" xmlns="\(Self.namespaces[0])">
        <deviceName>\(channels > 1 ? "Simulated NVR" : "Simulated Camera")</deviceName>
        <deviceID>a1b2c3d4-e5f6-7788-99aa-4419b610227e</deviceID>
        <model>\(realm)</model><serialNumber>\(realm)20250314AAWR000000001</serialNumber>
        <macAddress>44:19:b6:10:22:7e</macAddress><firmwareVersion>V5.7.3</firmwareVersion>
        <deviceType>\(channels > 1 ? "NVR" : "IPCamera")</deviceType>
        </DeviceInfo>
        """
    }

    /// Motion, intrusion and IO on every channel, notifying the surveillance centre.
    var triggers: String {
        var list = ""
        for channel in 1...channels {
            for type in ["VMD", "fielddetection", "linedetection", "IO"] {
                list += "<EventTrigger><id>\(type)-\(channel)</id><eventType>\(type)</eventType>"
                list += type == "IO" ? "<inputIOPortID>\(channel)</inputIOPortID>" : "<videoInputChannelID>\(channel)</videoInputChannelID>"
                list += "<EventTriggerNotificationList><EventTriggerNotification><id>center</id><notificationMethod>center</notificationMethod></EventTriggerNotification></EventTriggerNotificationList></EventTrigger>"
            }
        }
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><EventNotification version=\"2.0\" xmlns=\"\(Self.namespaces[0])\"><EventTriggerList version=\"2.0\" xmlns=\"\(Self.namespaces[0])\">\(list)</EventTriggerList></EventNotification>"
    }

    static func xmlResponse(_ xml: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/xml"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: xml)))
    }

    // MARK: - Listening mode

    /// The body and Content-Type of one listening-mode push.
    public func pushBody(_ alert: Alert, format: Format) -> (body: [UInt8], contentType: String) {
        switch format {
        case .xml:
            return (Array(xml(alert).utf8), "application/xml; charset=\"UTF-8\"")
        case .json:
            return (Array(json(alert).utf8), "application/json; charset=\"UTF-8\"")
        case .multipart:
            return SimulatedPush.multipart(
                boundary: "boundary", alert: xml(alert),
                alertDisposition: "form-data; name=\"\(alert.eventType).xml\"; filename=\"\(alert.eventType).xml\"",
                alertType: "application/xml; charset=\"UTF-8\"",
                pictureDisposition: "form-data; name=\"detectionPicture.jpg\"; filename=\"detectionPicture.jpg\"")
        }
    }

    /// POSTs alerts to `url` as the camera's HTTP listening host; returns each status (0 when the connection failed).
    public func push(_ alerts: [Alert], to url: String, format: Format) async -> [Int] {
        var statuses: [Int] = []
        for alert in alerts {
            let (body, type) = pushBody(alert, format: format)
            statuses.append(await post(body, contentType: type, to: url))
        }
        return statuses
    }

    /// POSTs raw bytes (a heartBeat, a malformed alert) to `url`; returns the status.
    public func post(_ body: [UInt8], contentType: String, to url: String) async -> Int {
        await SimulatedPush.post(body, contentType: contentType, to: url, client: .shared)
    }
}
