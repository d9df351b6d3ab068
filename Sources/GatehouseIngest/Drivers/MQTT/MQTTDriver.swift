import Foundation
import GatehouseCore
import GatehouseProfiles
import GatehouseQueue
import Hummingbird

/// Devices that publish to an MQTT broker (cloud-connected LPR cameras, one-key alarm buttons,
/// smoke, water, gas and temperature sensors): the gateway subscribes at QoS 1 with a persistent
/// session and maps each message with the device's profile, the same profiles HTTP pushes use.
/// A message is acknowledged to the broker only after its event is committed
/// (`MQTTInboundConnection`). See Drivers/MQTT/README.md.
public struct MQTTDriver: Driver {
    public let name = "mqtt"
    public let runsPerDevice = true
    /// The profile driver's loaded profiles and option declarations, so that an MQTT payload is
    /// mapped by exactly the machinery an HTTP push is.
    private let profiles = ProfileDriver()

    public init() {}

    public var options: DriverOptionSet {
        DriverOptionSet(
            [OptionDeclaration("profile", .string, "the folder under adapters_directory that maps this device's messages")]
                + MQTTDeviceSettings.declarations,
            dependent: profiles.options.dependent)
    }

    public func validate(device: DeviceConfig) -> [String] {
        MQTTDeviceSettings.problems(in: device) + profiles.validate(device: device)
    }

    public func reload(config: GatehouseConfig) -> [String] { profiles.reload(config: config) }

    public func mountRoutes(on router: RouterGroup<IngestRequestContext>, context: DriverContext) {}

    /// Live messages and quarantine replay: the route is `mqtt:<topic>`, and the profile reads
    /// the topic as `$header.mqtt-topic`.
    public func decode(_ payload: RawPayload, device: DeviceConfig) throws(PayloadError) -> [EventDraft] {
        let topic = payload.route.flatMap { $0.hasPrefix(Self.routePrefix) ? String($0.dropFirst(Self.routePrefix.count)) : nil }
        let profile = try profiles.profile(for: device, route: nil)
        let request = ProfileRequest(body: payload.body, contentType: payload.contentType, headers: topic.map { ["mqtt-topic": $0] } ?? [:])
        return try ProfileDriver.drafts(request, profile: profile, device: device)
    }

    static let routePrefix = "mqtt:"

    public func run(device: DeviceConfig, context: DriverContext) async throws {
        let settings: MQTTDeviceSettings
        do {
            settings = try MQTTDeviceSettings(device)
        } catch {
            throw MQTTConfigError(problems: error.problems)
        }
        let deviceContext = context.device(device)
        let logger = deviceContext.logger
        var backoff = settings.retryInitialSeconds
        var lastProblem: String?
        while !Task.isCancelled {
            do throws(MQTTInboundFailure) {
                let connection = try MQTTInboundConnection(settings: settings.connection)
                try await connection.connect(clock: context.clock, timeoutSeconds: settings.connectTimeoutSeconds)
                logger.info(
                    "mqtt: subscribed to '\(settings.connection.topics.joined(separator: "', '"))' on \(settings.connection.host):\(settings.connection.port) as \(settings.connection.clientID)")
                lastProblem = nil
                backoff = settings.retryInitialSeconds
                await deviceContext.seen()
                try await connection.receive { messages in
                    await commit(messages, settings: settings, device: deviceContext)
                }
            } catch {
                guard !Task.isCancelled else { return }
                let reason = error.description
                // The status log carries the reason (device down); the log says it once per new reason, so a
                // broker that stays away or a password that stays wrong costs no line per attempt.
                if reason != lastProblem {
                    logger.warning("mqtt: \(reason)")
                    lastProblem = reason
                }
                await deviceContext.down(reason: reason)
                let delay: Double
                switch error {
                case .refused:
                    // Credentials, authorisation, client id, TLS: an operator must act; retry slowly, never in a storm.
                    delay = settings.refusedRetrySeconds
                case .transient:
                    delay = backoff * Double.random(in: 0.5...1.0)
                    backoff = min(backoff * 2, settings.retryMaxSeconds)
                }
                try? await context.clock.sleep(for: .milliseconds(Int64(delay * 1000)))
            }
        }
    }

    /// Maps and commits one read's messages (what does not map goes to quarantine in the same
    /// transaction); true when all of it is durable, so the messages may be acknowledged.
    func commit(_ messages: [MQTTInboundMessage], settings: MQTTDeviceSettings, device: DeviceContext) async -> Bool {
        var drafts: [EventDraft] = []
        var quarantine: [QuarantineRecord] = []
        for message in messages {
            let route = Self.routePrefix + message.topic
            var reason: String?
            if !settings.connection.topics.contains(where: { MQTTTopicFilter.matches($0, topic: message.topic) }) {
                // A persistent session keeps the subscriptions of an earlier config: kept, not lost.
                reason = "topic '\(message.topic)' does not match options.topic '\(settings.connection.topics.joined(separator: ", "))'"
            } else {
                do {
                    let made = try decode(RawPayload(body: message.payload, contentType: nil, route: route), device: device.config)
                    drafts += made
                    device.keepLastPayload(message.payload, contentType: nil, mapped: made)
                } catch {
                    device.keepLastPayload(message.payload, contentType: nil, mapped: nil)
                    reason = error.reason
                }
            }
            if let reason {
                quarantine.append(
                    QuarantineRecord(deviceID: device.config.id, driver: name, route: route, reason: reason, payload: Data(message.payload)))
            }
        }
        do {
            let outcomes = try await device.submit(drafts, quarantine: quarantine)
            let refused = outcomes.filter { !$0.isAccepted }.count
            if refused > 0 {
                device.logger.warning("mqtt: the disk budget refused \(refused) of \(messages.count) message(s); they stay with the broker")
                return false
            }
            return true
        } catch {
            device.logger.error("mqtt: could not commit \(messages.count) message(s), they stay with the broker: \(error)")
            return false
        }
    }
}

struct MQTTConfigError: Error, CustomStringConvertible {
    let problems: [String]
    var description: String { problems.joined(separator: "; ") }
}

/// A device's broker, subscription and retry settings, read from `address`, `auth` and `options`.
struct MQTTDeviceSettings: Sendable, Equatable {
    var connection: MQTTInboundConnection.Settings
    var connectTimeoutSeconds = 10.0
    var retryInitialSeconds = 1.0
    var retryMaxSeconds = 60.0
    var refusedRetrySeconds = 300.0

    static let declarations: [OptionDeclaration] = [
        OptionDeclaration("topic", .string, "the topic filter to subscribe to (+ and # wildcards; {device} is this device's id)"),
        OptionDeclaration("client_id", .string, "a client id unique on the broker and stable across restarts (default gatehouse-<host>-<device>)"),
        OptionDeclaration("protocol", .choice(["3.1.1", "5"]), default: .string("5"), "MQTT protocol version"),
        OptionDeclaration("keepalive_seconds", .int(5...65_535), default: .int(30), "MQTT keepalive"),
        OptionDeclaration("session_expiry_seconds", .int(0...Int(UInt32.max)), default: .int(86_400), "how long the broker keeps the session while the gateway is away (MQTT 5)"),
        OptionDeclaration("max_batch", .int(1...65_535), default: .int(500), "most messages committed (and acknowledged) together; MQTT 5 Receive Maximum"),
        OptionDeclaration("ca_file", .string, "mqtts: the broker's CA certificate (PEM); default: the system's CAs"),
        OptionDeclaration("client_certificate_file", .string, "mqtts: a client certificate (PEM), with client_key_file"),
        OptionDeclaration("client_key_file", .string, "mqtts: the client certificate's key (PEM)"),
        OptionDeclaration("connect_timeout_seconds", .double(0.1...300), default: .double(10), "how long to wait for CONNACK"),
        OptionDeclaration("retry_initial_seconds", .double(0.01...3600), default: .double(1), "first pause after a lost connection (doubles, jittered)"),
        OptionDeclaration("retry_max_seconds", .double(0.01...86_400), default: .double(60), "longest pause after a lost connection"),
        OptionDeclaration("refused_retry_seconds", .double(1...86_400), default: .double(300), "pause after the broker refused the credentials or client id, or the TLS handshake failed"),
    ]

    init(_ device: DeviceConfig) throws(MQTTConfigError) {
        let problems = Self.problems(in: device)
        guard problems.isEmpty, let address = device.address.flatMap(Self.brokerAddress) else {
            throw MQTTConfigError(problems: problems.isEmpty ? ["address: not a broker URL"] : problems)
        }
        let o = device.options
        var username: String?
        var password: Secret?
        if case .basic(let user, let secret) = device.auth {
            username = user
            password = secret
        }
        connection = MQTTInboundConnection.Settings(
            host: address.host, port: address.port, useTLS: address.tls, caFile: o.string("ca_file"),
            clientCertificateFile: o.string("client_certificate_file"), clientKeyFile: o.string("client_key_file"),
            username: username, password: password, protocolV5: o.string("protocol") != "3.1.1",
            clientID: o.string("client_id") ?? Self.defaultClientID(device: device.id),
            keepaliveSeconds: o.int("keepalive_seconds") ?? 30, sessionExpirySeconds: o.int("session_expiry_seconds") ?? 86_400,
            topics: [Self.topic(device)].compactMap { $0 }, maxBatch: o.int("max_batch") ?? 500)
        if address.tls, connection.caFile == nil { connection.caFile = Self.systemCAFile }
        connectTimeoutSeconds = o.double("connect_timeout_seconds") ?? connectTimeoutSeconds
        retryInitialSeconds = o.double("retry_initial_seconds") ?? retryInitialSeconds
        retryMaxSeconds = max(retryInitialSeconds, o.double("retry_max_seconds") ?? retryMaxSeconds)
        refusedRetrySeconds = o.double("refused_retry_seconds") ?? refusedRetrySeconds
    }

    /// Debian's bundle of the system's trusted CAs (ca-certificates).
    static let systemCAFile = "/etc/ssl/certs/ca-certificates.crt"

    /// The device's topic filter with `{device}` replaced.
    static func topic(_ device: DeviceConfig) -> String? {
        device.options.string("topic").map { $0.replacingOccurrences(of: "{device}", with: device.id) }
    }

    /// Stable across restarts (so the broker keeps the session) and distinct per gateway host.
    static func defaultClientID(device: String) -> String {
        var name = [CChar](repeating: 0, count: 256)
        let host = gethostname(&name, name.count) == 0
            ? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "gateway"
        return "gatehouse-\(host)-\(device)"
    }

    /// `mqtt://host[:port]` (1883) or `mqtts://host[:port]` (8883).
    static func brokerAddress(_ text: String) -> (host: String, port: Int, tls: Bool)? {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(), scheme == "mqtt" || scheme == "mqtts",
            let host = url.host, !host.isEmpty, url.path.isEmpty || url.path == "/", url.user == nil
        else { return nil }
        let tls = scheme == "mqtts"
        let port = url.port ?? (tls ? 8883 : 1883)
        guard (1...65_535).contains(port) else { return nil }
        return (host, port, tls)
    }

    static func problems(in device: DeviceConfig) -> [String] {
        var problems: [String] = []
        let o = device.options
        var tls = false
        if let address = device.address {
            if let broker = brokerAddress(address) {
                tls = broker.tls
            } else {
                problems.append("address: '\(address)' is not a broker URL (expected mqtt://host[:port] or mqtts://host[:port], e.g. mqtt://127.0.0.1:1883)")
            }
        } else {
            problems.append("address: required (the broker's URL, mqtt://host[:port] or mqtts://host[:port] for TLS)")
        }
        if let topic = topic(device) {
            if let problem = MQTTTopicFilter.problem(topic) { problems.append("options.topic: '\(topic)' \(problem)") }
        } else {
            problems.append("options.topic: required (the topic filter this device publishes on, e.g. sensors/{device}/# or lpr/gate-east/+)")
        }
        switch device.auth {
        case .token:
            problems.append("auth: a token cannot log in to a broker (give username and password: auth: {username: …, password: {env: …}})")
        case .digest:
            problems.append("auth: scheme digest does not apply to MQTT (leave scheme out: the username and password go in CONNECT)")
        case .basic, nil: break
        }
        if let id = o.string("client_id"), id.isEmpty || id.utf8.count > 65_535 {
            problems.append("options.client_id: must be 1 to 65535 bytes")
        }
        let files = ["ca_file", "client_certificate_file", "client_key_file"]
        for key in files {
            guard let path = o.string(key) else { continue }
            if !tls { problems.append("options.\(key): TLS files need an mqtts:// address") }
            if !FileManager.default.isReadableFile(atPath: path) { problems.append("options.\(key): '\(path)' cannot be read (expected a PEM file)") }
        }
        if (o.string("client_certificate_file") == nil) != (o.string("client_key_file") == nil) {
            problems.append("options.client_certificate_file and options.client_key_file: give both or neither")
        }
        return problems
    }
}

/// MQTT topic filters (MQTT 3.1.1 §4.7, MQTT 5 §4.7): `+` one whole level, `#` the rest.
enum MQTTTopicFilter {
    /// Why `filter` is not a valid filter, or nil.
    static func problem(_ filter: String) -> String? {
        if filter.isEmpty { return "is empty (expected a topic filter such as sensors/{device}/#)" }
        if filter.utf8.count > 65_535 { return "is longer than 65535 bytes" }
        if filter.contains("\u{0}") { return "contains a NUL character" }
        let levels = filter.split(separator: "/", omittingEmptySubsequences: false)
        for (index, level) in levels.enumerated() {
            if level.contains("#"), level != "#" || index != levels.count - 1 {
                return "uses # other than as the whole last level (expected e.g. sensors/#)"
            }
            if level.contains("+"), level != "+" {
                return "uses + inside a level (expected + as a whole level, e.g. sensors/+/alarm)"
            }
        }
        return nil
    }

    /// Whether `topic` (a concrete topic name) matches `filter`.
    static func matches(_ filter: String, topic: String) -> Bool {
        let f = filter.split(separator: "/", omittingEmptySubsequences: false)
        let t = topic.split(separator: "/", omittingEmptySubsequences: false)
        // Topics starting with $ (broker internals) are not matched by a leading wildcard.
        if topic.hasPrefix("$"), let first = f.first, first == "+" || first == "#" { return false }
        var i = 0
        while i < f.count {
            if f[i] == "#" { return true }
            guard i < t.count else { return false }
            if f[i] != "+", f[i] != t[i] { return false }
            i += 1
        }
        return i == t.count
    }
}
