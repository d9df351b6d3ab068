import AsyncHTTPClient
import Foundation
import GatehouseCore
import NIOCore
import Synchronization

/// Posts SOAP envelopes to one camera: WS-Security on every authenticated call, and HTTP Digest
/// on top once the camera answers 401 with a Digest challenge (Hikvision ≥ 5.7.13, INSTAR).
final class ONVIFClient: Sendable {
    /// Replies larger than this are refused (a PullMessages reply of 100 messages is ~100 KiB).
    static let maxReplyBytes = 4 << 20

    let http: HTTPClient
    let credentials: ONVIFSOAP.Credentials?
    /// The configured host: addresses the camera hands out are rewritten to it (NAT, a LAN
    /// address the gateway cannot reach); their ports are kept (Tapo serves events on another port).
    let configuredHost: String?
    private let state = Mutex<State>(State())

    private struct State {
        var challenge: HikvisionDigestClient.Challenge?
        var nc = 0
        /// Camera clock minus gateway clock, in milliseconds.
        var offsetMilliseconds: Int64 = 0
    }

    init(http: HTTPClient, credentials: ONVIFSOAP.Credentials?, configuredHost: String?) {
        self.http = http
        self.credentials = credentials
        self.configuredHost = configuredHost
    }

    var offsetMilliseconds: Int64 {
        get { state.withLock { $0.offsetMilliseconds } }
        set { state.withLock { $0.offsetMilliseconds = newValue } }
    }

    /// Sends `operation` and returns the body's first element; throws `.fault`, `.unauthorized`,
    /// `.malformed` (with the bytes kept by `lastBody` for quarantine) or `.transport`.
    func call(
        _ operation: ONVIFSOAP.Operation, body: String, to url: String, gatewayNow: Timestamp, timeout: Duration,
        authenticated: Bool = true, referenceParameters: [ONVIFElement] = []
    ) async throws(ONVIFError) -> ONVIFElement {
        let bytes = try await post(operation, body: body, to: url, gatewayNow: gatewayNow, timeout: timeout, authenticated: authenticated, referenceParameters: referenceParameters)
        return try ONVIFSOAP.body(bytes)
    }

    /// Like `call`, but returns the raw reply too, so an unreadable one can be quarantined.
    func post(
        _ operation: ONVIFSOAP.Operation, body: String, to url: String, gatewayNow: Timestamp, timeout: Duration,
        authenticated: Bool = true, referenceParameters: [ONVIFElement] = []
    ) async throws(ONVIFError) -> [UInt8] {
        let cameraNow = gatewayNow.adding(seconds: Double(offsetMilliseconds) / 1000)
        let useCredentials = authenticated ? credentials : nil
        let envelope = ONVIFSOAP.envelope(
            operation, body: body, to: url, credentials: useCredentials, token: useCredentials.map { _ in .fresh(cameraTime: cameraNow) },
            referenceParameters: referenceParameters)
        var answeredChallenge = false
        var retriedConnection = false
        while true {
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/soap+xml; charset=utf-8; action=\"\(operation.action)\"")
            request.headers.add(name: "SOAPAction", value: "\"\(operation.action)\"")
            let sentDigest = authenticated ? digestAuthorization(url: url) : nil
            if let sentDigest { request.headers.add(name: "Authorization", value: sentDigest) }
            request.body = .bytes(ByteBuffer(string: envelope))
            let status: UInt
            let reply: [UInt8]
            let challengeHeader: String?
            do {
                let response = try await http.execute(request, timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000))
                status = response.status.code
                challengeHeader = response.headers["WWW-Authenticate"].first
                reply = Array(try await response.body.collect(upTo: Self.maxReplyBytes).readableBytesView)
            } catch is CancellationError {
                throw .transport("cancelled")
            } catch let error as NIOTooManyBytesError {
                throw .transport("\(operation.bodyElement) reply from \(url) is larger than \(Self.maxReplyBytes) bytes (\(error))")
            } catch {
                // Cameras close idle keep-alive connections without saying so: one more try on a
                // fresh connection before it counts as a failure (not after a timeout: that was slow, not closed).
                let timedOut = (error as? HTTPClientError).map { [.deadlineExceeded, .readTimeout, .connectTimeout].contains($0) } ?? false
                if !retriedConnection, !timedOut, !Task.isCancelled {
                    retriedConnection = true
                    continue
                }
                throw .transport("\(operation.bodyElement) to \(url) failed: \(error)")
            }
            if status == 401 {
                // A Digest challenge we have not answered yet (or a stale nonce after an answered
                // one): answer once. Refused again, or no challenge at all: the credentials are wrong.
                if authenticated, credentials != nil, !answeredChallenge, let header = challengeHeader,
                    let challenge = HikvisionDigestClient.challenge(header)
                {
                    state.withLock {
                        $0.challenge = challenge
                        $0.nc = 0
                    }
                    answeredChallenge = true
                    continue
                }
                state.withLock { $0.challenge = nil }
                throw .unauthorized(
                    "\(url) refused user '\(credentials?.username ?? "")' with HTTP 401\(sentDigest == nil ? "" : " to HTTP Digest") (wrong password, or the user is not an ONVIF user)")
            }
            if (200..<300).contains(status) { return reply }
            // Faults come with 400 or 500; anything else without a fault is a transport problem.
            if let fault = ONVIFSOAP.fault(in: reply) {
                if fault.isNotAuthorized, authenticated, credentials != nil {
                    throw .unauthorized("\(url) refused user '\(credentials?.username ?? "")': \(fault) (wrong password, or a clock the offset does not cover)")
                }
                throw .fault(fault)
            }
            throw .transport("\(operation.bodyElement) to \(url) answered HTTP \(status): \(String(decoding: reply.prefix(160), as: UTF8.self))")
        }
    }

    /// Best effort, in a task of its own: the device's task is usually being cancelled when this runs.
    func unsubscribe(_ subscription: ONVIFSOAP.Subscription, gatewayNow: Timestamp, timeout: Duration) async {
        await Task {
            _ = try? await self.call(
                .unsubscribe, body: ONVIFSOAP.unsubscribe, to: subscription.address, gatewayNow: gatewayNow, timeout: timeout,
                referenceParameters: subscription.referenceParameters)
        }.value
    }

    private func digestAuthorization(url: String) -> String? {
        guard let credentials else { return nil }
        guard let (challenge, nc) = state.withLock({ s -> (HikvisionDigestClient.Challenge, Int)? in
            guard let challenge = s.challenge else { return nil }
            s.nc += 1
            return (challenge, s.nc)
        }) else { return nil }
        let components = URLComponents(string: url)
        var uri = components?.percentEncodedPath ?? "/"
        if uri.isEmpty { uri = "/" }
        if let query = components?.percentEncodedQuery { uri += "?" + query }
        return HikvisionDigestClient.authorization(
            challenge, method: "POST", uri: uri, username: credentials.username, password: credentials.password,
            cnonce: HikvisionDigestClient.newCnonce(), nc: nc)
    }

    /// An address the camera handed out, made reachable: a scheme added where missing, a
    /// duplicated port (`h:8106:8106`) removed, the host replaced by the configured one.
    func normalize(_ address: String) -> String {
        var text = address.trimmingCharacters(in: .whitespacesAndNewlines)
        if !text.lowercased().hasPrefix("http://") && !text.lowercased().hasPrefix("https://") { text = "http://" + text }
        // http://host:port:port/path → http://host:port/path
        if let match = text.firstMatch(of: /^(https?:\/\/[^\/:]+:(\d+)):\2(\/.*)?$/) {
            text = String(match.1) + String(match.3 ?? "")
        }
        guard let host = configuredHost, var components = URLComponents(string: text) else { return text }
        components.host = host
        return components.string ?? text
    }
}

