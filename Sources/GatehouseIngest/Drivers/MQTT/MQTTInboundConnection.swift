import CMosquitto
import Dispatch
import Foundation
import GatehouseCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One message as the broker delivered it (QoS 1).
struct MQTTInboundMessage: Sendable, Equatable {
    var topic: String
    var payload: [UInt8]
}

/// Why a connection ended or could not be made.
enum MQTTInboundFailure: Error, Equatable, CustomStringConvertible {
    /// Worth retrying soon: network down, broker restarting, a lost connection.
    case transient(String)
    /// An operator must act: credentials, authorisation, client id, protocol, TLS files.
    case refused(String)

    var description: String {
        switch self {
        case .transient(let reason), .refused(let reason): reason
        }
    }
}

/// A libmosquitto client driven by hand, so that QoS 1 messages are acknowledged only after
/// they are committed.
///
/// libmosquitto (2.0.x, lib/handle_publish.c) queues the PUBACK of a QoS 1 message *before* it
/// calls `on_message`, and with the library's own network thread (`mosquitto_loop_start`) that
/// PUBACK can be on the wire before a handed-off message is committed. With
/// `mosquitto_threaded_set(true)` `packet__queue` (lib/packet_mosq.c) only queues, so this type
/// runs the loop itself: read (the callbacks collect the messages), hand them over and wait for
/// the commit, and only then `mosquitto_loop_write`, which sends the PUBACKs of that read. A
/// connection dropped in between (crash, commit refused) leaves the messages unacknowledged,
/// and the broker sends them again to the same persistent session.
///
/// Every libmosquitto call runs on one serial dispatch queue (blocking `poll` and `connect`
/// stay off the cooperative pool); a fresh handle per connection leaves no queued packet of a
/// dropped connection behind.
final class MQTTInboundConnection: Sendable {
    struct Settings: Sendable, Equatable {
        var host: String
        var port: Int
        var useTLS: Bool
        var caFile: String?
        var clientCertificateFile: String?
        var clientKeyFile: String?
        var username: String?
        var password: Secret?
        var protocolV5: Bool
        var clientID: String
        var keepaliveSeconds: Int
        var sessionExpirySeconds: Int
        var topics: [String]
        /// Most messages committed in one transaction (and acknowledged together).
        var maxBatch: Int
    }

    private struct State {
        /// CONNACK's code once it arrived.
        var connack: Int32?
        var messages: [MQTTInboundMessage] = []
        /// The library's error log lines until CONNACK: a failed TLS handshake's reason (OpenSSL's
        /// "certificate verify failed", a broker's "certificate required" alert) appears only there.
        var libraryErrors: [String] = []
    }

    nonisolated(unsafe) private let handle: OpaquePointer
    private let queue = DispatchQueue(label: "gatehouse.mqtt-in")
    private let state = Mutex(State())
    let settings: Settings

    private static let libraryReady: Bool = {
        mosquitto_lib_init()
        return true
    }()

    init(settings: Settings) throws(MQTTInboundFailure) {
        _ = Self.libraryReady
        self.settings = settings
        // clean session off: the broker keeps the subscription and the unacknowledged messages.
        guard let handle = mosquitto_new(settings.clientID, false, nil) else {
            throw .refused("mosquitto_new failed for client id '\(settings.clientID)'")
        }
        self.handle = handle
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(self).toOpaque())
        mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, settings.protocolV5 ? Int32(MQTT_PROTOCOL_V5) : Int32(MQTT_PROTOCOL_V311))
        // MQTT 5: how many unacknowledged messages the broker may send at once, so one read
        // (and one commit) can carry a whole batch.
        mosquitto_int_option(handle, MOSQ_OPT_RECEIVE_MAXIMUM, Int32(min(settings.maxBatch, 65_535)))
        // Only queue packets; this type writes them, after the commit.
        mosquitto_threaded_set(handle, true)
        if let username = settings.username {
            try check(mosquitto_username_pw_set(handle, username, settings.password?.value), "username/password")
        }
        if settings.useTLS {
            try check(
                mosquitto_tls_set(handle, settings.caFile, nil, settings.clientCertificateFile, settings.clientKeyFile, nil), "TLS files")
        }
        mosquitto_connect_v5_callback_set(handle) { _, context, rc, _, _ in
            MQTTInboundConnection.from(context)?.state.withLock { $0.connack = rc }
        }
        mosquitto_log_callback_set(handle) { _, context, level, text in
            guard level == MOSQ_LOG_ERR, let text, let connection = MQTTInboundConnection.from(context) else { return }
            connection.state.withLock { $0.libraryErrors.append(String(cString: text)) }
        }
        mosquitto_message_v5_callback_set(handle) { _, context, message, _ in
            guard let connection = MQTTInboundConnection.from(context), let message else { return }
            let m = message.pointee
            let topic = m.topic.map { String(cString: $0) } ?? ""
            let payload = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(m.payloadlen))) } ?? []
            connection.state.withLock { $0.messages.append(MQTTInboundMessage(topic: topic, payload: payload)) }
        }
    }

    deinit {
        // Closes the socket without writing what is queued: PUBACKs of uncommitted messages never go out.
        mosquitto_destroy(handle)
    }

    private static func from(_ context: UnsafeMutableRawPointer?) -> MQTTInboundConnection? {
        context.map { Unmanaged<MQTTInboundConnection>.fromOpaque($0).takeUnretainedValue() }
    }

    private func check(_ rc: Int32, _ what: String) throws(MQTTInboundFailure) {
        guard rc == MOSQ_ERR_SUCCESS.rawValue else { throw .refused("\(what): \(Self.errorText(rc))") }
    }

    private func onQueue<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: work()) }
        }
    }

    /// Connects, waits for CONNACK and subscribes every topic at QoS 1. `deadline` is checked
    /// between reads on `clock`.
    func connect(clock: any TimerClock, timeoutSeconds: Double) async throws(MQTTInboundFailure) {
        let settings = settings
        let (rc, reason) = await onQueue { [self] () -> (Int32, String) in
            var properties: OpaquePointer? = nil
            defer { mosquitto_property_free_all(&properties) }
            let rc: Int32
            if settings.protocolV5 {
                // Without a session expiry an MQTT 5 broker drops the session at disconnect.
                mosquitto_property_add_int32(&properties, Int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL.rawValue), UInt32(settings.sessionExpirySeconds))
                rc = mosquitto_connect_bind_v5(handle, settings.host, Int32(settings.port), Int32(settings.keepaliveSeconds), nil, properties)
            } else {
                rc = mosquitto_connect(handle, settings.host, Int32(settings.port), Int32(settings.keepaliveSeconds))
            }
            return (rc, Self.errorText(rc))
        }
        guard rc == MOSQ_ERR_SUCCESS.rawValue else {
            if let tls = tlsFailure() { throw tls }
            throw .transient("cannot connect to \(settings.host):\(settings.port): \(reason)")
        }
        let deadline = clock.now.adding(seconds: timeoutSeconds)
        while true {
            try Task.checkCancellation(or: .transient("cancelled"))
            let lost = await onQueue { [self] in exchange(timeoutMilliseconds: 100) }
            if let connack = state.withLock({ $0.connack }) {
                guard connack == 0 else { throw .refused(Self.connackText(connack, v5: settings.protocolV5)) }
                break
            }
            if lost != nil, let tls = tlsFailure() { throw tls }
            if let lost {
                // A broker that wants a client certificate sends its alert and closes; when the CONNECT
                // written after the handshake meets the closed socket, the alert is never read.
                let hint = settings.useTLS && settings.clientCertificateFile == nil
                    ? " (a broker that requires a client certificate closes the connection so when it gets none: options.client_certificate_file and client_key_file)"
                    : ""
                throw .transient("connection to \(settings.host):\(settings.port) lost before CONNACK: \(lost)\(hint)")
            }
            if clock.now.milliseconds >= deadline.milliseconds {
                throw .transient("no answer to CONNECT from \(settings.host):\(settings.port) within \(timeoutSeconds) s")
            }
        }
        // From here on the library's log (a line per packet) is not needed.
        await onQueue { [self] in mosquitto_log_callback_set(handle, nil) }
        let failed = await onQueue { [self] () -> String? in
            for topic in settings.topics {
                let rc = mosquitto_subscribe_v5(handle, nil, topic, 1, 0, nil)
                if rc != MOSQ_ERR_SUCCESS.rawValue { return "subscribe to '\(topic)': \(Self.errorText(rc))" }
            }
            return nil
        }
        if let failed { throw .refused(failed) }
    }

    /// Reads, hands each read's messages to `commit` and acknowledges them after it returns
    /// true; returns nothing: it throws when the connection ends or `commit` says no (the
    /// messages stay unacknowledged), and stops when the task is cancelled.
    func receive(commit: @Sendable ([MQTTInboundMessage]) async -> Bool) async throws(MQTTInboundFailure) {
        while true {
            if Task.isCancelled {
                // Everything queued now belongs to committed messages: say goodbye cleanly.
                await onQueue { [self] in
                    mosquitto_disconnect(handle)
                    _ = write()
                }
                throw .transient("cancelled")
            }
            let (lost, messages) = await onQueue { [self] () -> (String?, [MQTTInboundMessage]) in
                let lost = read(timeoutMilliseconds: 200)
                return (lost, state.withLock { s in defer { s.messages.removeAll(keepingCapacity: true) }; return s.messages })
            }
            // Messages read before a loss are committed too: the broker sends them again
            // anyway, and content dedup stores them once.
            if !messages.isEmpty, !(await commit(messages)) {
                throw .transient("\(messages.count) message(s) not committed; left unacknowledged for the broker to send again")
            }
            if let lost { throw .transient("connection to \(settings.host):\(settings.port) lost: \(lost)") }
            if let lost = await onQueue({ [self] in write() }) {
                throw .transient("connection to \(settings.host):\(settings.port) lost: \(lost)")
            }
        }
    }

    /// Shuts the socket under the loop, so that nothing queued is written any more (PUBACKs of
    /// messages being committed included): a crash, as the broker sees it. For tests.
    func drop() {
        let fd = mosquitto_socket(handle)
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    // MARK: on the queue

    /// Before CONNACK nothing is acknowledged yet, so reading and writing may interleave freely.
    private func exchange(timeoutMilliseconds: Int32) -> String? {
        if let lost = write() { return lost }
        return read(timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Waits up to the timeout for data, then reads until the socket has no more or a batch is
    /// full; the PUBACKs this queues stay queued. Returns why the connection is gone, or nil.
    private func read(timeoutMilliseconds: Int32) -> String? {
        let fd = mosquitto_socket(handle)
        guard fd >= 0 else { return "not connected" }
        var wait = timeoutMilliseconds
        repeat {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, wait)
            if ready < 0 { return errno == EINTR ? nil : String(cString: strerror(errno)) }
            if ready == 0 { return nil }
            let rc = mosquitto_loop_read(handle, 1)
            if rc != MOSQ_ERR_SUCCESS.rawValue { return Self.errorText(rc) }
            wait = 0
        } while state.withLock({ $0.messages.count }) < settings.maxBatch
        return nil
    }

    /// Sends what is queued (PUBACKs, SUBSCRIBE, PINGREQ) and keeps the connection alive.
    private func write() -> String? {
        if mosquitto_want_write(handle) {
            let rc = mosquitto_loop_write(handle, 1)
            if rc != MOSQ_ERR_SUCCESS.rawValue { return Self.errorText(rc) }
        }
        let rc = mosquitto_loop_misc(handle)
        return rc == MOSQ_ERR_SUCCESS.rawValue ? nil : Self.errorText(rc)
    }

    static func errorText(_ rc: Int32) -> String { String(cString: gatehouse_mosquitto_error_text(rc)) }

    /// CONNACK codes as an operator reads them: MQTT 3.1.1 return codes or MQTT 5 reason codes.
    static func connackText(_ code: Int32, v5: Bool) -> String {
        let refusal = String(cString: gatehouse_mosquitto_refusal_text(code, v5 ? Int32(MQTT_PROTOCOL_V5) : Int32(MQTT_PROTOCOL_V311)))
        return "\(refusal) (check auth: username and password, options.client_id and the broker's access rules)"
    }

    /// A failed TLS handshake, from OpenSSL's lines in the library's log: an operator must act
    /// (a CA or client certificate that does not fit the broker), so it is not retried soon.
    private func tlsFailure() -> MQTTInboundFailure? {
        let lines = state.withLock { s in defer { s.libraryErrors.removeAll() }; return s.libraryErrors }
        // "OpenSSL Error[0]: error:0A000086:SSL routines::certificate verify failed": the reason is the last part.
        var reasons: [String] = []
        for line in lines where line.hasPrefix("OpenSSL Error") {
            let reason = line.split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? line
            if !reasons.contains(reason) { reasons.append(reason) }
        }
        guard !reasons.isEmpty else { return nil }
        return .refused(
            "TLS with \(settings.host):\(settings.port) failed: \(reasons.joined(separator: "; ")) "
                + "(check options.ca_file, the broker's certificate name against the address, and options.client_certificate_file/client_key_file)")
    }
}

extension Task where Success == Never, Failure == Never {
    fileprivate static func checkCancellation(or failure: MQTTInboundFailure) throws(MQTTInboundFailure) {
        if Task.isCancelled { throw failure }
    }
}
