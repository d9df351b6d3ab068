import Foundation
import GatehouseCore

/// Events published to an MQTT broker at QoS 1 (`type: mqtt`).
public struct MQTTSinkConfig: SinkSettings {
    public static let typeName = "mqtt"

    public enum ProtocolVersion: String, Sendable, CaseIterable {
        case v311 = "3.1.1"
        case v5 = "5"
    }

    public var host: String
    public var port: Int
    public var protocolVersion: ProtocolVersion
    /// Stable across restarts, so the broker keeps the session (and any in-flight messages).
    public var clientID: String
    /// `{site}`, `{kind}`, `{device}`, `{priority}` are replaced per event.
    public var topic: String
    public var username: String?
    public var password: Secret?
    public var caFile: String?
    public var clientCertificateFile: String?
    public var clientKeyFile: String?
    public var keepaliveSeconds: Int
    public var connectTimeoutSeconds: Double
    public var ackTimeoutSeconds: Double
    /// How long the broker keeps the session while the gateway is away (MQTT 5).
    public var sessionExpirySeconds: Int
    /// QoS 1 messages sent and not yet acknowledged at any moment. libmosquitto's own default
    /// (20) makes a batch wait one round trip per 20 messages; an MQTT 5 broker may lower it
    /// further with its Receive Maximum.
    public var maxInflightMessages: Int
    /// `.` in a placeholder's value becomes `_`: the MQTT interface of NATS maps topic levels to
    /// subject tokens separated by `.`, and nats-server 2.9 closes the connection of a client
    /// that publishes a topic containing one (`camera.motion` would never be acknowledged).
    public var replaceDotsInTopic: Bool

    public static let placeholders = ["site", "kind", "device", "priority"]

    public init(
        host: String, port: Int = 1883, protocolVersion: ProtocolVersion = .v5, clientID: String,
        topic: String = "gatehouse/{site}/{kind}", username: String? = nil, password: Secret? = nil,
        caFile: String? = nil, clientCertificateFile: String? = nil, clientKeyFile: String? = nil,
        keepaliveSeconds: Int = 30, connectTimeoutSeconds: Double = 10, ackTimeoutSeconds: Double = 30,
        sessionExpirySeconds: Int = 86_400, maxInflightMessages: Int = 1000, replaceDotsInTopic: Bool = false
    ) {
        self.host = host
        self.port = port
        self.protocolVersion = protocolVersion
        self.clientID = clientID
        self.topic = topic
        self.username = username
        self.password = password
        self.caFile = caFile
        self.clientCertificateFile = clientCertificateFile
        self.clientKeyFile = clientKeyFile
        self.keepaliveSeconds = keepaliveSeconds
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.ackTimeoutSeconds = ackTimeoutSeconds
        self.sessionExpirySeconds = sessionExpirySeconds
        self.maxInflightMessages = maxInflightMessages
        self.replaceDotsInTopic = replaceDotsInTopic
    }

    /// Reads the keys of a `type: mqtt` section; TLS files must be readable now, not at the first send.
    static func read(_ map: YAMLMapping, environment: [String: String]) -> MQTTSinkConfig? {
        let host = map.string("host", required: true, expected: "the broker's host name or address, such as 127.0.0.1")
        let topic = map.string("topic") ?? "gatehouse/{site}/{kind}"
        if let problem = Self.topicProblem(topic) {
            map.log.report(map.node("topic"), key: map.join("topic"), "'\(topic)' \(problem)")
        }
        let clientID = map.string("client_id", required: true, expected: "a client id unique to this gateway, such as gatehouse-<site>")
        if let clientID, clientID.isEmpty || clientID.utf8.count > 65_535 {
            map.log.report(map.node("client_id"), key: map.join("client_id"), "must be 1 to 65535 bytes")
        }
        let tls = SinkTLSFiles.read(map)
        if !tls.isEmpty, tls.caFile == nil {
            // libmosquitto turns TLS on only with a CA to verify the broker against.
            map.log.report(map.node("tls"), key: map.join("tls"), "ca_file is required for TLS (the broker's CA certificate, PEM)")
        }
        let config = MQTTSinkConfig(
            host: host ?? "", port: map.int("port", default: tls.isEmpty ? 1883 : 8883, range: 1...65_535),
            protocolVersion: map.choice("protocol", default: .v5) ?? .v5, clientID: clientID ?? "", topic: topic,
            username: map.string("username"), password: map.secret("password", environment: environment),
            caFile: tls.caFile, clientCertificateFile: tls.clientCertificateFile, clientKeyFile: tls.clientKeyFile,
            keepaliveSeconds: map.int("keepalive_seconds", default: 30, range: 5...65_535),
            connectTimeoutSeconds: map.double("connect_timeout_seconds", default: 10, range: 0.1...300),
            ackTimeoutSeconds: map.double("ack_timeout_seconds", default: 30, range: 0.1...3600),
            sessionExpirySeconds: map.int("session_expiry_seconds", default: 86_400, range: 0...Int(UInt32.max)),
            maxInflightMessages: map.int("max_inflight_messages", default: 1000, range: 1...65_535),
            replaceDotsInTopic: map.bool("topic_replace_dots", default: false))
        return host == nil || clientID == nil ? nil : config
    }

    /// Why a topic template cannot be published to, or nil.
    static func topicProblem(_ topic: String) -> String? {
        if topic.isEmpty { return "is empty (expected a topic such as gatehouse/{site}/{kind})" }
        if topic.contains("+") || topic.contains("#") { return "contains a wildcard (+ or #), which cannot be published to" }
        var rest = topic[...]
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else { return "has a '{' without '}'" }
            let name = String(rest[rest.index(after: open)..<close])
            if !placeholders.contains(name) {
                return "has an unknown placeholder {\(name)} (expected \(placeholders.map { "{\($0)}" }.joined(separator: ", ")))"
            }
            rest = rest[rest.index(after: close)...]
        }
        return nil
    }

    /// The topic for one event. Values that would break the topic's levels (`/`, `+`, `#`, and `.`
    /// with `topic_replace_dots`) are replaced by `_`. One pass over the template: this runs once
    /// per published message, where four Foundation `replacingOccurrences` cost a sixth of the
    /// sink's CPU.
    func topic(site: String, kind: String, device: String, priority: String) -> String {
        func level(_ value: String) -> String {
            let breaks = value.utf8.contains { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "#") || (replaceDotsInTopic && $0 == UInt8(ascii: ".")) }
            guard breaks else { return value }
            let reserved: Set<Character> = replaceDotsInTopic ? ["/", "+", "#", "."] : ["/", "+", "#"]
            return String(value.map { reserved.contains($0) ? "_" : $0 })
        }
        var result = ""
        var rest = topic[...]
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            result += rest[..<open]
            switch rest[rest.index(after: open)..<close] {
            case "site": result += level(site)
            case "kind": result += level(kind)
            case "device": result += level(device)
            case "priority": result += level(priority)
            default: result += rest[open...close]  // not reached: the config check refuses unknown placeholders
            }
            rest = rest[rest.index(after: close)...]
        }
        return result + rest
    }
}
