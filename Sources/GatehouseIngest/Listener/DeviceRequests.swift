import Crypto
import Foundation
import GatehouseCore
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix
import Synchronization

/// What push drivers share on the listener: who the device is, whether it may send, and
/// reading its body within the size and time limits.
public final class DeviceRequests: Sendable {
    private let limits: Mutex<(maxBodyBytes: Int, timeoutSeconds: Double)>
    public let devices: DeviceDirectory
    let digest = DigestAuthentication()
    let deadlines = BodyDeadlines()

    public init(config: IngestListenerConfig, devices: DeviceDirectory) {
        self.devices = devices
        limits = Mutex((config.maxBodyBytes, config.requestTimeoutSeconds))
    }

    public func update(config: IngestListenerConfig) {
        limits.withLock { $0 = (config.maxBodyBytes, config.requestTimeoutSeconds) }
    }

    /// `max_body_bytes` as configured now.
    public var maxBodyBytes: Int { limits.withLock { $0.maxBodyBytes } }

    /// The configured device `id`, if this request may speak for it.
    public func authorize(deviceID id: String, request: Request, context: IngestRequestContext) throws(Rejection) -> DeviceConfig {
        guard let device = devices.device(id) else {
            throw Rejection(.notFound, "unknown-device", "unknown device '\(id)' (configure it under devices: in the gateway config)")
        }
        guard device.allowFrom.admits(context.remoteIP) else {
            throw Rejection(.forbidden, "source-not-allowed", "source address \(context.remoteIP ?? "unknown") is not in allow_from of device '\(id)'")
        }
        switch device.auth {
        case nil:
            return device
        case .token(let secret):
            let presented = Self.bearer(request) ?? Self.tokenHeader.flatMap { request.headers[$0] }
            guard let presented else {
                throw Rejection(.unauthorized, "missing-credentials", "device '\(id)' needs a token: send 'Authorization: Bearer <token>' or 'X-Gatehouse-Token'")
            }
            guard Self.constantTimeEqual(presented, secret.value) else {
                throw Rejection(.unauthorized, "bad-credentials", "wrong token for device '\(id)'")
            }
        case .basic(let username, let password):
            guard let (user, pass) = Self.basic(request) else {
                throw Rejection(.unauthorized, "missing-credentials", "device '\(id)' needs HTTP Basic credentials")
            }
            guard Self.constantTimeEqual(user, username), Self.constantTimeEqual(pass, password.value) else {
                throw Rejection(.unauthorized, "bad-credentials", "wrong username or password for device '\(id)'")
            }
        case .digest(let username, let password):
            guard let header = request.headers[.authorization], header.lowercased().hasPrefix("digest ") else {
                throw Rejection(
                    .unauthorized, "missing-credentials", "device '\(id)' needs HTTP Digest credentials",
                    authenticate: digest.challenge(now: devices.clock.now.date))
            }
            guard digest.verify(header: header, method: request.method.rawValue, uri: request.uri.description, username: username, password: password.value, now: devices.clock.now.date) else {
                throw Rejection(
                    .unauthorized, "bad-credentials", "wrong or stale Digest credentials for device '\(id)'",
                    authenticate: digest.challenge(now: devices.clock.now.date))
            }
        }
        return device
    }

    /// The whole body, refused when larger than `max_body_bytes` or slower than `request_timeout_seconds`.
    public func body(of request: Request) async throws(Rejection) -> ByteBuffer {
        let (maxBytes, timeout) = limits.withLock { $0 }
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > maxBytes {
            throw Rejection(.contentTooLarge, "body-too-large", "body of \(declared) bytes exceeds the limit of \(maxBytes) bytes")
        }
        // The deadline is swept by `BodyDeadlines`, not a racing `Task.sleep` (cancelling a sleep
        // keeps its timer and continuation until the deadline, ~400 B each, which at 10,000
        // requests/s held tens of megabytes) nor a NIO timer per request (two event-loop wake-ups each).
        let timedOut = Atomic<Bool>(false)
        let collector = Task { try await request.body.collect(upTo: maxBytes) }
        let read = deadlines.register(timeout: .nanoseconds(Int64(timeout * 1e9))) {
            timedOut.store(true, ordering: .relaxed)
            collector.cancel()
        }
        defer { deadlines.finished(read) }
        do {
            let buffer = try await withTaskCancellationHandler {
                try await collector.value
            } onCancel: {
                collector.cancel()
            }
            // A cancelled body stream may end early instead of throwing: never take a cut body as whole.
            if timedOut.load(ordering: .relaxed) { throw CancellationError() }
            return buffer
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw Rejection(.contentTooLarge, "body-too-large", "body exceeds the limit of \(maxBytes) bytes")
        } catch is NIOTooManyBytesError {
            // A chunked body (no Content-Length to refuse up front) that grew past the limit.
            throw Rejection(.contentTooLarge, "body-too-large", "body exceeds the limit of \(maxBytes) bytes")
        } catch {
            if timedOut.load(ordering: .relaxed) {
                throw Rejection(.requestTimeout, "body-timeout", "body not received within \(timeout) s")
            }
            throw Rejection(.badRequest, "body-unreadable", "could not read the body: \(error)")
        }
    }

    static let tokenHeader = HTTPField.Name("X-Gatehouse-Token")

    /// The token of `Authorization: Bearer <token>`, read over the header's bytes: it is on every
    /// request of a token device, and lower-casing and Foundation's trimming showed in profiles.
    static func bearer(_ request: Request) -> String? {
        guard let value = request.headers[.authorization] else { return nil }
        let bytes = value.utf8
        let scheme = "bearer ".utf8
        guard bytes.count >= scheme.count, zip(bytes, scheme).allSatisfy({ $0 | 0x20 == $1 }) else { return nil }
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 }
        let token = bytes.dropFirst(scheme.count).drop(while: isSpace)
        guard let last = token.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(Substring(token[...last]))
    }

    static func basic(_ request: Request) -> (String, String)? {
        guard let value = request.headers[.authorization], value.lowercased().hasPrefix("basic "),
            let data = Data(base64Encoded: String(value.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
            let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    /// Compares every byte of `presented` whatever matched, so the time taken depends only on what
    /// the sender sent, never on how much of the secret it got right (nor on the secret's length).
    static func constantTimeEqual(_ presented: String, _ secret: String) -> Bool {
        let secretBytes = Array(secret.utf8)
        var difference: UInt8 = presented.utf8.count == secretBytes.count ? 0 : 1
        guard !secretBytes.isEmpty else { return presented.utf8.isEmpty }
        for (index, byte) in presented.utf8.enumerated() { difference |= byte ^ secretBytes[index % secretBytes.count] }
        return difference == 0
    }
}
