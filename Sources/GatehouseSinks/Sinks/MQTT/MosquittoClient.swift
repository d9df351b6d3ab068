import CMosquitto
import Dispatch
import Foundation
import GatehouseCore
import Synchronization

/// One libmosquitto client on its own network thread (`mosquitto_loop_start`), as async calls.
///
/// libmosquitto is the maintained MQTT client Debian carries; it speaks 3.1.1 and 5, TLS,
/// persistent sessions and QoS 1 retries. What it does not give is an async API: its results
/// arrive as C callbacks on its thread, so this type turns them into state under a lock and a
/// `WakeUpSignal` that the sending task waits on (with a time limit on the injected clock).
final class MosquittoClient: Sendable {
    enum Failure: Error, CustomStringConvertible {
        /// Worth retrying: network down, broker restarting, a timeout.
        case transient(String)
        /// An operator must act: credentials, authorisation, client id, protocol.
        case refused(String)

        var description: String {
            switch self {
            case .transient(let reason), .refused(let reason): reason
            }
        }
    }

    private struct State {
        var connected = false
        /// The network thread runs and reconnects by itself; connect is never called twice.
        var loopRunning = false
        /// The broker's last refusal of CONNECT, kept until the next attempt.
        var refusal: String?
        var lastDisconnect: String?
        /// Message ids published and not acknowledged yet.
        var pending: Set<Int32> = []
        /// Acknowledgements that arrived before `publish` returned their id.
        var ackedEarly: Set<Int32> = []
        /// A PUBACK with an MQTT 5 reason code of 0x80 or more.
        var negative: (mid: Int32, code: Int32)?
        /// Bumped on every disconnect, so a batch knows its messages' fate is unknown.
        var generation = 0
    }

    // libmosquitto is thread-safe for publish and disconnect while its network thread runs.
    nonisolated(unsafe) private let handle: OpaquePointer
    private let state = Mutex(State())
    private let signal = WakeUpSignal()
    private let config: MQTTSinkConfig
    private let clock: any TimerClock
    private let version: Int32

    private static let libraryReady: Bool = {
        mosquitto_lib_init()
        return true
    }()

    init(config: MQTTSinkConfig, clock: any TimerClock) throws {
        _ = Self.libraryReady
        self.config = config
        self.clock = clock
        version = config.protocolVersion == .v5 ? Int32(MQTT_PROTOCOL_V5) : Int32(MQTT_PROTOCOL_V311)
        // clean_session false: the broker keeps the session, so QoS 1 messages in flight at a
        // disconnect are completed after the reconnect.
        guard let handle = mosquitto_new(config.clientID, false, nil) else {
            throw Failure.refused("mosquitto_new failed for client id '\(config.clientID)'")
        }
        self.handle = handle
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(self).toOpaque())
        mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, version)
        mosquitto_int_option(handle, MOSQ_OPT_TCP_NODELAY, 1)
        // libmosquitto's in-flight window for both protocol versions (its old
        // max_inflight_messages_set is this option); an MQTT 5 broker's Receive Maximum caps it.
        mosquitto_int_option(handle, MOSQ_OPT_SEND_MAXIMUM, Int32(config.maxInflightMessages))
        // libmosquitto reconnects by itself on its thread; 1 s doubling to 30 s.
        mosquitto_reconnect_delay_set(handle, 1, 30, true)
        if let username = config.username {
            try check(mosquitto_username_pw_set(handle, username, config.password?.value), "username/password")
        }
        if let ca = config.caFile {
            try check(mosquitto_tls_set(handle, ca, nil, config.clientCertificateFile, config.clientKeyFile, nil), "TLS files")
        }
        mosquitto_connect_v5_callback_set(handle) { _, context, rc, _, _ in
            MosquittoClient.from(context)?.connected(code: rc)
        }
        mosquitto_disconnect_v5_callback_set(handle) { _, context, rc, _ in
            MosquittoClient.from(context)?.disconnected(code: rc)
        }
        mosquitto_publish_v5_callback_set(handle) { _, context, mid, reason, _ in
            MosquittoClient.from(context)?.acknowledged(mid: mid, reason: reason)
        }
    }

    deinit {
        mosquitto_loop_stop(handle, true)
        mosquitto_destroy(handle)
    }

    private static func from(_ context: UnsafeMutableRawPointer?) -> MosquittoClient? {
        context.map { Unmanaged<MosquittoClient>.fromOpaque($0).takeUnretainedValue() }
    }

    private func check(_ rc: Int32, _ what: String) throws {
        guard rc == MOSQ_ERR_SUCCESS.rawValue else {
            throw Failure.refused("\(what): \(Self.errorText(rc))")
        }
    }

    // MARK: callbacks, on libmosquitto's thread

    private func connected(code: Int32) {
        state.withLock { s in
            if code == 0 {
                s.connected = true
                s.refusal = nil
            } else {
                s.connected = false
                s.refusal = Self.connackText(code, version: version)
            }
        }
        // On a refusal the library tries again after its own delay (1 s doubling to 30 s), so a
        // wrong password costs the broker a handful of attempts a minute, not a storm.
        signal.signal()
    }

    private func disconnected(code: Int32) {
        state.withLock { s in
            s.connected = false
            s.generation += 1
            if code != 0 { s.lastDisconnect = String(cString: mosquitto_strerror(code)) }
        }
        signal.signal()
    }

    private func acknowledged(mid: Int32, reason: Int32) {
        state.withLock { s in
            if reason >= 0x80 { s.negative = (mid, reason) }
            if s.pending.remove(mid) == nil { s.ackedEarly.insert(mid) }
        }
        signal.signal()
    }

    // MARK: the sending task

    /// Connects (once; libmosquitto then reconnects by itself) and waits for the broker's CONNACK.
    func connect() async throws(Failure) {
        let deadline = clock.now.adding(seconds: config.connectTimeoutSeconds)
        if !state.withLock({ $0.loopRunning }) {
            let (rc, running, reason) = await connectOnce()
            state.withLock { $0.loopRunning = running }
            if rc != MOSQ_ERR_SUCCESS.rawValue {
                throw .transient("cannot connect to \(config.host):\(config.port): \(reason)")
            }
        }
        while true {
            let (connected, refusal) = state.withLock { ($0.connected, $0.refusal) }
            if connected { return }
            if let refusal { throw .refused(refusal) }
            let left = Double(deadline.milliseconds - clock.now.milliseconds) / 1000
            if left <= 0 {
                throw .transient("no answer to CONNECT from \(config.host):\(config.port) within \(config.connectTimeoutSeconds) s")
            }
            await signal.wait(timeout: .milliseconds(Int64(left * 1000)), clock: clock)
        }
    }

    /// The blocking TCP connect and CONNECT, off the cooperative pool; then the network thread.
    private func connectOnce() async -> (rc: Int32, loopRunning: Bool, reason: String) {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { [self] in
                var properties: OpaquePointer? = nil
                defer { mosquitto_property_free_all(&properties) }
                var rc: Int32
                if config.protocolVersion == .v5 {
                    // Without a session expiry an MQTT 5 broker drops the session at disconnect.
                    mosquitto_property_add_int32(&properties, Int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL.rawValue), UInt32(config.sessionExpirySeconds))
                    rc = mosquitto_connect_bind_v5(handle, config.host, Int32(config.port), Int32(config.keepaliveSeconds), nil, properties)
                } else {
                    rc = mosquitto_connect(handle, config.host, Int32(config.port), Int32(config.keepaliveSeconds))
                }
                // errno belongs to this thread: read it here.
                let reason = Self.errorText(rc)
                var running = false
                if rc == MOSQ_ERR_SUCCESS.rawValue || rc == MOSQ_ERR_ERRNO.rawValue {
                    // Also after a refused TCP connect: the network thread keeps retrying with backoff.
                    let started = mosquitto_loop_start(handle)
                    running = started == MOSQ_ERR_SUCCESS.rawValue
                    if rc == MOSQ_ERR_SUCCESS.rawValue, !running { rc = started }
                }
                continuation.resume(returning: (rc, running, reason))
            }
        }
    }

    /// Publishes every message at QoS 1 and returns once the broker acknowledged them all.
    func publishAll(_ messages: [(topic: String, payload: Data, eventID: String?)]) async throws(Failure) {
        let generation = state.withLock { s -> Int in
            s.pending.removeAll()
            s.ackedEarly.removeAll()
            s.negative = nil
            return s.generation
        }
        for message in messages {
            var mid: Int32 = 0
            var properties: OpaquePointer? = nil
            if version == Int32(MQTT_PROTOCOL_V5) {
                if let id = message.eventID {
                    mosquitto_property_add_string_pair(&properties, Int32(MQTT_PROP_USER_PROPERTY.rawValue), "event-id", id)
                }
                mosquitto_property_add_string(&properties, Int32(MQTT_PROP_CONTENT_TYPE.rawValue), "application/json")
            }
            let rc = message.payload.withUnsafeBytes { bytes in
                mosquitto_publish_v5(handle, &mid, message.topic, Int32(bytes.count), bytes.baseAddress, 1, false, properties)
            }
            mosquitto_property_free_all(&properties)
            guard rc == MOSQ_ERR_SUCCESS.rawValue else {
                throw .transient("publish to '\(message.topic)' failed: \(Self.errorText(rc))" + Self.refusedTopicHint(messages.map(\.topic)))
            }
            state.withLock { s in
                if s.ackedEarly.remove(mid) == nil { s.pending.insert(mid) }
            }
        }
        let deadline = clock.now.adding(seconds: config.ackTimeoutSeconds)
        while true {
            let (pending, negative, current, connected) = state.withLock { ($0.pending.count, $0.negative, $0.generation, $0.connected) }
            if let negative {
                throw .refused("the broker refused a message: \(String(cString: mosquitto_reason_string(negative.code))) (0x\(String(negative.code, radix: 16)))")
            }
            if pending == 0 { return }
            if current != generation || !connected {
                throw .transient(
                    "connection to \(config.host):\(config.port) lost with \(pending) message(s) unacknowledged"
                        + Self.refusedTopicHint(messages.map(\.topic)))
            }
            let left = Double(deadline.milliseconds - clock.now.milliseconds) / 1000
            if left <= 0 { throw .transient("\(pending) message(s) not acknowledged within \(config.ackTimeoutSeconds) s") }
            await signal.wait(timeout: .milliseconds(Int64(left * 1000)), clock: clock)
        }
    }

    func disconnect() {
        mosquitto_disconnect(handle)
        mosquitto_loop_stop(handle, false)
    }

    /// The MQTT interface of NATS closes the connection of a client that publishes a topic with
    /// `.` or ` ` in it (its log: "characters ' ' and '.' not supported for MQTT topics"), with no
    /// PUBACK and no reason the client sees; a batch lost that way names the topic and the fix.
    static func refusedTopicHint(_ topics: [String]) -> String {
        guard let topic = topics.first(where: { $0.contains(".") || $0.contains(" ") }) else { return "" }
        return "; if the broker is the MQTT interface of NATS, it closed the connection for topic '\(topic)', as it refuses '.' and ' ' "
            + "in topics (set topic_replace_dots: true, and keep '.' and ' ' out of the topic template)"
    }

    private static func errorText(_ rc: Int32) -> String { String(cString: gatehouse_mosquitto_error_text(rc)) }

    /// CONNACK codes as an operator reads them: MQTT 3.1.1 return codes or MQTT 5 reason codes.
    static func connackText(_ code: Int32, version: Int32) -> String { String(cString: gatehouse_mosquitto_refusal_text(code, version)) }
}
