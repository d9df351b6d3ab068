import AsyncHTTPClient
import Foundation
import GatehouseCore
import NIOCore
import NIOPosix

/// What one probe found, in the failure classes of the camera notes §5. `busy`, `auth-failed` and
/// `not-found` come from a camera that answered: it is alive, with a problem to report.
public enum LivenessProblem: String, Sendable, Codable, Equatable {
    /// Connect refused or timed out: nothing listens, or the host is gone.
    case unreachable
    /// Connected, but no complete reply in time (a hung application with a live kernel).
    case timeout
    /// A reply no camera of that protocol sends: garbage, a wrong CSeq, over the size bounds.
    case protocolError = "protocol"
    /// 404: the stream path or channel is wrong: a configuration error, not an offline camera.
    case notFound = "not-found"
    /// 453/503: stream or client limit reached; the camera is alive.
    case busy
    /// 401 after sending credentials, or 403: alive, but the credentials are refused.
    case authFailed = "auth-failed"

    /// Whether the camera answered.
    public var alive: Bool { [.notFound, .busy, .authFailed].contains(self) }
}

struct LivenessProbeResult: Sendable, Equatable {
    /// nil: a clean answer.
    var problem: LivenessProblem?
    /// For the status log and `device.offline`'s reason: what happened, in words.
    var detail: String
    var alive: Bool { problem?.alive ?? true }

    static func ok(_ detail: String) -> Self { Self(problem: nil, detail: detail) }
}

/// Runs one probe of one camera under a deadline on the injected clock.
struct LivenessProber: Sendable {
    let http: HTTPClient
    let timeout: Duration
    let maxSnapshotBytes: Int
    let clock: any TimerClock

    /// `credentials` nil: send none (none configured, or the camera refused them).
    func probe(_ kind: LivenessProbeKind, target: String, credentials: (username: String, password: String)?) async -> LivenessProbeResult {
        await withTaskGroup(of: LivenessProbeResult?.self) { group in
            group.addTask { await self.run(kind, target: target, credentials: credentials) }
            group.addTask {
                // The deadline: on a ManualClock it passes when the test moves time.
                try? await clock.sleep(for: timeout)
                return Task.isCancelled ? nil : LivenessProbeResult(problem: .timeout, detail: "no answer within \(Self.seconds(timeout))")
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? LivenessProbeResult(problem: .timeout, detail: "cancelled")
        }
    }

    private func run(_ kind: LivenessProbeKind, target: String, credentials: (username: String, password: String)?) async -> LivenessProbeResult {
        switch kind {
        case .rtspDescribe, .rtspOptions:
            return await rtsp(kind == .rtspDescribe ? .describe : .options, url: target, credentials: credentials)
        case .tcp:
            return await tcp(target)
        case .snapshot:
            return await snapshot(target, credentials: credentials)
        case .onvif:
            return await onvif(target)
        }
    }

    private var connectTimeout: TimeAmount { .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000) }

    func rtsp(_ method: RTSPProbe.Method, url: String, credentials: (username: String, password: String)?) async -> LivenessProbeResult {
        do {
            let exchange = try await RTSPProbe(url: url, method: method, credentials: credentials, connectTimeout: connectTimeout).run()
            return Self.classify(rtsp: exchange, method: method)
        } catch let failure as RTSPProbe.Failure {
            switch failure {
            case .unreachable(let text): return LivenessProbeResult(problem: .unreachable, detail: text)
            case .protocolError(let text): return LivenessProbeResult(problem: .protocolError, detail: text)
            }
        } catch {
            // A write that failed because the peer reset the connection, or cancellation by the deadline.
            return LivenessProbeResult(problem: .protocolError, detail: "\(error)")
        }
    }

    /// RTSP status → verdict (camera notes §2, §5).
    static func classify(rtsp exchange: RTSPProbe.Exchange, method: RTSPProbe.Method) -> LivenessProbeResult {
        let response = exchange.response
        let status = "\(method.rawValue) answered \(response.status) \(response.reason)"
        switch response.status {
        case 200..<300: return .ok(status)
        case 401 where exchange.sentCredentials, 403: return LivenessProbeResult(problem: .authFailed, detail: status)
        // Asks for credentials we do not send (none configured, or withheld after a refusal): the server answers.
        case 401: return .ok(status + " (no credentials sent)")
        case 404: return LivenessProbeResult(problem: .notFound, detail: status + " (wrong stream path or channel?)")
        case 453, 503: return LivenessProbeResult(problem: .busy, detail: status + " (stream or client limit)")
        default: return LivenessProbeResult(problem: .protocolError, detail: status)
        }
    }

    func tcp(_ target: String) async -> LivenessProbeResult {
        guard let (host, port) = CameraLiveness.hostAndPort(target), let port else {
            return LivenessProbeResult(problem: .protocolError, detail: "'\(target)' is not host:port")
        }
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(connectTimeout)
                .connect(host: host, port: port).get()
            try? await channel.close()
            return .ok("TCP connect to \(host):\(port)")
        } catch {
            return LivenessProbeResult(problem: .unreachable, detail: "cannot connect to \(host):\(port): \(RTSPProbe.describe(error))")
        }
    }

    func snapshot(_ url: String, credentials: (username: String, password: String)?) async -> LivenessProbeResult {
        let fetcher = SnapshotFetcher(client: http, timeout: connectTimeout, maxBytes: maxSnapshotBytes)
        do {
            let bytes = try await fetcher.fetch(url, username: credentials?.username, password: credentials?.password)
            guard bytes.starts(with: [0xFF, 0xD8, 0xFF]) else {
                return LivenessProbeResult(problem: .protocolError, detail: "snapshot is not a JPEG (\(bytes.count) bytes, first \(bytes.prefix(3).map { String(format: "%02X", $0) }.joined(separator: " ")))")
            }
            return .ok("snapshot of \(bytes.count) bytes")
        } catch let failure as SnapshotFetcher.Failure {
            switch failure.status {
            case 401? where credentials != nil, 403?: return LivenessProbeResult(problem: .authFailed, detail: failure.description)
            case 401?: return .ok("snapshot asks for credentials (none sent)")
            case 404?: return LivenessProbeResult(problem: .notFound, detail: failure.description)
            case 453?, 503?: return LivenessProbeResult(problem: .busy, detail: failure.description)
            default: return LivenessProbeResult(problem: .protocolError, detail: failure.description)
            }
        } catch {
            return Self.classify(http: error, url: url)
        }
    }

    func onvif(_ url: String) async -> LivenessProbeResult {
        // The driver's own SOAP client and parser, unauthenticated as the notes' sample D.
        let client = ONVIFClient(http: http, credentials: nil, configuredHost: nil)
        do {
            let body = try await client.call(
                .getSystemDateAndTime, body: ONVIFSOAP.getSystemDateAndTime, to: url, gatewayNow: clock.now, timeout: timeout, authenticated: false)
            guard body.descendant("SystemDateAndTime") != nil || body.name == "GetSystemDateAndTimeResponse" else {
                return LivenessProbeResult(problem: .protocolError, detail: "GetSystemDateAndTime answered '\(body.name)'")
            }
            return .ok("GetSystemDateAndTime answered")
        } catch {
            switch error {
            // A fault is the ONVIF stack answering (some ask for credentials even here).
            case .fault(let fault): return .ok("GetSystemDateAndTime answered a fault: \(fault)")
            case .unauthorized(let text): return .ok("GetSystemDateAndTime asks for credentials: \(text)")
            case .malformed(let text): return LivenessProbeResult(problem: .protocolError, detail: text)
            case .transport(let text):
                let lower = text.lowercased()
                if lower.contains("answered http 404") { return LivenessProbeResult(problem: .notFound, detail: text) }
                if lower.contains("answered http 401") { return .ok("GetSystemDateAndTime asks for credentials") }
                if lower.contains("answered http 503") { return LivenessProbeResult(problem: .busy, detail: text) }
                if lower.contains("answered http") { return LivenessProbeResult(problem: .protocolError, detail: text) }
                if lower.contains("deadline") || lower.contains("timeout") || lower.contains("timed out") {
                    return LivenessProbeResult(problem: .timeout, detail: text)
                }
                return LivenessProbeResult(problem: .unreachable, detail: text)
            }
        }
    }

    static func classify(http error: any Error, url: String) -> LivenessProbeResult {
        if let client = error as? HTTPClientError {
            if client == .connectTimeout { return LivenessProbeResult(problem: .unreachable, detail: "cannot connect to \(url): connect timeout") }
            if [.deadlineExceeded, .readTimeout].contains(client) { return LivenessProbeResult(problem: .timeout, detail: "\(url): \(client)") }
            return LivenessProbeResult(problem: .protocolError, detail: "\(url): \(client)")
        }
        return LivenessProbeResult(problem: .unreachable, detail: "cannot connect to \(url): \(RTSPProbe.describe(error))")
    }

    static func seconds(_ duration: Duration) -> String {
        let value = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return value == value.rounded() ? "\(Int(value)) s" : String(format: "%.1f s", value)
    }
}
