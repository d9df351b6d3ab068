import AsyncHTTPClient
import Foundation
import GatehouseCore
import GatehouseQueue
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Hikvision access-control terminals over ISAPI: `AccessControllerEvent` pushed by HTTP
/// listening (JSON or multipart/form-data), or the terminal's event log read by `AcsEvent`
/// search with Digest authentication, the last `serialNo` committed with the events.
/// See Drivers/HikvisionACS/README.md.
public struct HikvisionACSDriver: Driver {
    public let name = "hikvision-acs"
    /// Only devices with `mode: poll` do long-running work; push devices wait for cancellation.
    public let runsPerDevice = true

    public init() {}

    // MARK: - Config

    public var options: DriverOptionSet { DriverOptionSet(HikvisionACSOptions.declarations) }

    public func validate(device: DeviceConfig) -> [String] {
        HikvisionACSOptions.problems(in: device)
    }

    // MARK: - Push

    public func mountRoutes(on router: RouterGroup<IngestRequestContext>, context: DriverContext) {
        router.post("/v1/hikvision-acs/:device") { request, requestContext in
            await context.push(request, requestContext, driver: name) { push in
                let device = try push.authorize(deviceID: push.parameter("device") ?? "")
                return try await receive(try await push.body(), device: device, push: push)
            }
        }
        // Terminals configured with one URL for all: the device is found by macAddress or serial number.
        router.post("/v1/hikvision-acs") { request, requestContext in
            await context.push(request, requestContext, driver: name) { push in
                let body = try await push.body()
                let parsed: HikvisionACSPush
                do {
                    parsed = try HikvisionACSRecords.parsePush(body, contentType: push.contentType)
                } catch let error as PayloadError {
                    throw Rejection(.unprocessableContent, "invalid-event", "\(error.reason) (not kept: the device is only known from the body)")
                }
                guard let device = identify(parsed, among: context.devices(of: name)) else {
                    throw Rejection(
                        .forbidden, "unknown-device",
                        "no hikvision-acs device has serial '\(parsed.macAddress ?? parsed.deviceSerial ?? "")' (set serial: to the terminal's MAC address or serial number, or post to /v1/hikvision-acs/<device id>)")
                }
                return try await receive(body, device: try push.authorize(deviceID: device.id), push: push)
            }
        }
    }

    /// The configured device a device-agnostic post speaks for: `macAddress` (any separators,
    /// any case) or the terminal's serial number, against `serial:`.
    func identify(_ push: HikvisionACSPush, among devices: [DeviceConfig]) -> DeviceConfig? {
        let candidates = [push.macAddress, push.deviceSerial].compactMap { $0 }.map(Self.normalizedIdentity)
        guard !candidates.isEmpty else { return nil }
        return devices.first { device in
            device.driver == name && device.serial.map { candidates.contains(Self.normalizedIdentity($0)) } ?? false
        }
    }

    static func normalizedIdentity(_ text: String) -> String {
        text.lowercased().filter { $0 != ":" && $0 != "-" && $0 != " " }
    }

    /// Maps, commits and answers one pushed body; 200 only after the commit.
    func receive(_ body: [UInt8], device: DeviceContext, push: PushRequest) async throws(Rejection) -> Response {
        let parsed = try await push.decode(body, device: device.config) { () throws(PayloadError) in
            try HikvisionACSRecords.parsePush(body, contentType: push.contentType)
        }
        guard let record = parsed.record else {
            // heartBeat and other alerts: the terminal is alive, nothing to store.
            await device.seen()
            return Self.ok
        }
        let config = device.config
        var draft = HikvisionACSRecords.draft(for: record, identity: config.serial ?? config.id, zone: config.timeZone)
        if parsed.pictures > 0 { draft.attributes?["pictures"] = .number(Double(parsed.pictures)) }
        try await push.commit([draft], device: device)
        return Self.ok
    }

    /// `ResponseStatus` OK, which every firmware takes as delivered.
    static var ok: Response {
        .json(.ok, Data(#"{"statusCode":1,"statusString":"OK","subStatusCode":"ok"}"#.utf8))
    }

    /// Quarantine replay of a pushed body (JSON or multipart, by the kept content type).
    public func decode(_ payload: RawPayload, device: DeviceConfig) throws(PayloadError) -> [EventDraft] {
        let push = try HikvisionACSRecords.parsePush(payload.body, contentType: payload.contentType)
        guard let record = push.record else { return [] }
        return [HikvisionACSRecords.draft(for: record, identity: device.serial ?? device.id, zone: device.timeZone)]
    }

    // MARK: - Polling

    public func run(device: DeviceConfig, context: DriverContext) async throws {
        let options = try HikvisionACSOptions(device)
        guard options.mode == .poll else {
            // Push devices have nothing to run: wait for cancellation without holding a timer.
            let (stream, continuation) = AsyncStream<Never>.makeStream()
            await withTaskCancellationHandler {
                for await _ in stream {}
            } onCancel: {
                continuation.finish()
            }
            return
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let poller = HikvisionACSPoller(options: options, client: client, context: context.device(device))
        do {
            try await poller.run()
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }
}

/// A device's options (typed by `declarations`) and what polling needs from its entry.
struct HikvisionACSOptions: Equatable {
    enum Mode: String { case push, poll }
    var mode: Mode = .push
    var pollIntervalSeconds: Double = 5
    var maxResults = 30
    var requestTimeoutSeconds: Double = 10
    /// `http://host:port` of the terminal (poll).
    var baseURL: String?
    var username: String?
    var password: String?
    var useDigest = true

    /// The options a hikvision-acs device takes (README: Config).
    static let declarations: [OptionDeclaration] = [
        OptionDeclaration("mode", .choice(["push", "poll"]), default: .string("push"), "push: the terminal posts events; poll: we search its log"),
        OptionDeclaration("poll_interval_seconds", .double(0.1...3600), default: .double(5), "mode poll: pause between searches"),
        OptionDeclaration("max_results", .int(1...100), default: .int(30), "mode poll: records asked for per page"),
        OptionDeclaration("request_timeout_seconds", .double(0.5...120), default: .double(10), "mode poll: how long one request may take"),
    ]

    init(_ device: DeviceConfig) throws(HikvisionACSConfigError) {
        let problems = Self.problems(in: device)
        guard problems.isEmpty else { throw HikvisionACSConfigError(problems: problems) }
        let options = device.options
        mode = options.string("mode").flatMap(Mode.init(rawValue:)) ?? .push
        if let value = options.double("poll_interval_seconds") { pollIntervalSeconds = value }
        if let value = options.int("max_results") { maxResults = value }
        if let value = options.double("request_timeout_seconds") { requestTimeoutSeconds = value }
        let client = ISAPIClientConfig(device)
        (baseURL, username, password, useDigest) = (client.baseURL, client.username, client.password, client.useDigest)
    }

    static func problems(in device: DeviceConfig) -> [String] {
        // Option values were checked by the config loader; what is left is what poll needs besides them.
        guard device.options.string("mode") == Mode.poll.rawValue else { return [] }
        return ISAPIClientConfig.problems(in: device, noun: "terminal", mode: "poll", example: "192.168.30.15")
    }
}

struct HikvisionACSConfigError: Error, CustomStringConvertible {
    let problems: [String]
    var description: String { problems.joined(separator: "; ") }
}

/// An ISAPI request that did not succeed, with what was asked and what came back.
struct HikvisionACSRequestError: Error, CustomStringConvertible {
    let description: String
}

/// One terminal's polling loop: search after the stored serialNo, page through, commit each
/// page with its last serialNo, sleep the poll interval.
final class HikvisionACSPoller: Sendable {
    static let path = "/ISAPI/AccessControl/AcsEvent?format=json"
    let options: HikvisionACSOptions
    let client: HTTPClient
    let context: DeviceContext
    var device: DeviceConfig { context.config }
    var driver: String { context.config.driver }
    var logger: Logger { context.logger }
    private let state = Mutex<State>(State())

    private struct State {
        var cursor: Int64?
        var challenge: HikvisionDigestClient.Challenge?
        var nc = 0
        /// When the terminal last refused the credentials; polling pauses `authBackoffSeconds` after.
        var refusedAt: ContinuousClock.Instant?
    }

    /// The pause after refused credentials, so a wrong password does not lock the user on the terminal.
    static let authBackoffSeconds: Double = 30

    init(options: HikvisionACSOptions, client: HTTPClient, context: DeviceContext) {
        self.options = options
        self.client = client
        self.context = context
    }

    func run() async throws {
        let stored = try await context.cursor()
        state.withLock { $0.cursor = stored.flatMap { Int64($0) } }
        logger.info("hikvision-acs terminal \(options.baseURL ?? "?"): resuming after serialNo \(stored ?? "none")")
        while !Task.isCancelled {
            do {
                try await poll()
            } catch is CancellationError {
                return
            } catch {
                logger.warning("hikvision-acs terminal \(options.baseURL ?? "?"): \(error)")
                await context.down(reason: "\(error)")
            }
            let refused = state.withLock { $0.refusedAt != nil }
            let pause = refused ? max(options.pollIntervalSeconds, Self.authBackoffSeconds) : options.pollIntervalSeconds
            state.withLock { $0.refusedAt = nil }
            try await context.clock.sleep(for: .milliseconds(Int(pause * 1000)))
        }
    }

    /// One search from the cursor to the end of the log.
    func poll() async throws {
        let begin = (state.withLock { $0.cursor } ?? 0) + 1
        let searchID = UUID().uuidString
        var position = 0
        while !Task.isCancelled {
            let body = HikvisionACSRecords.searchRequest(searchID: searchID, position: position, maxResults: options.maxResults, beginSerialNo: begin)
            let reply = try await post(body)
            let page: HikvisionACSRecords.SearchPage
            do {
                page = try HikvisionACSRecords.parseSearch(reply)
            } catch {
                throw HikvisionACSRequestError(description: "unreadable AcsEvent reply at position \(position): \(error.reason)")
            }
            await context.seen()
            // Only records after the cursor: firmware that ignores beginSerialNo must not bring back old ones.
            let current = state.withLock { $0.cursor } ?? 0
            let fresh = page.records.filter { ($0.serialNo ?? Int64.max) > current }
            let unreadable = page.rejected.filter { ($0.serialNo ?? Int64.max) > current }
            let identity = device.serial ?? device.id
            let last = (fresh.compactMap(\.serialNo) + unreadable.compactMap(\.serialNo)).max()
            if !fresh.isEmpty || !unreadable.isEmpty {

                // Entries that cannot be read are kept in the same transaction that moves the cursor past them.
                let kept = unreadable.map {
                    QuarantineRecord(
                        deviceID: device.id, driver: driver, route: Self.path, contentType: "application/json",
                        remote: options.baseURL, reason: "AcsEvent \($0.reason)", payload: $0.json)
                }
                let outcomes = try await context.submit(
                    fresh.map { HikvisionACSRecords.draft(for: $0, identity: identity, zone: device.timeZone) }, quarantine: kept,
                    cursor: last.map { String($0) })
                if let refused = outcomes.first(where: { !$0.isAccepted }) {
                    throw HikvisionACSRequestError(description: "queue refused records up to serialNo \(last.map(String.init) ?? "?") (\(refused)); will read them again")
                }
                if let last { state.withLock { $0.cursor = last } }
            }
            guard page.more, page.numOfMatches > 0 else { return }
            position += page.numOfMatches
        }
    }

    /// POSTs a search; answers one Digest challenge (or a stale nonce) and never loops on 401.
    func post(_ body: [UInt8]) async throws -> [UInt8] {
        guard let base = options.baseURL else { throw HikvisionACSRequestError(description: "no address configured") }
        var renegotiated = false
        while true {
            var request = HTTPClientRequest(url: base + Self.path)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            if let authorization = authorization() { request.headers.add(name: "Authorization", value: authorization) }
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await client.execute(request, timeout: .milliseconds(Int64(options.requestTimeoutSeconds * 1000)))
            let reply = Array(try await response.body.collect(upTo: 8 << 20).readableBytesView)
            if response.status == .unauthorized {
                let header = response.headers["WWW-Authenticate"].first ?? ""
                // A cached nonce may have gone stale: take the new challenge once. A fresh challenge
                // refused means wrong credentials: forget it and give up until the next round.
                guard !renegotiated, options.useDigest, let challenge = HikvisionDigestClient.challenge(header) else {
                    state.withLock {
                        $0.challenge = nil
                        $0.refusedAt = context.clock.instant
                    }
                    throw HikvisionACSRequestError(
                        description: "\(base)\(Self.path) refused user '\(options.username ?? "")' (401, \(header.isEmpty ? "no challenge" : header)); not retrying for \(Int(Self.authBackoffSeconds)) s, terminals lock users after repeated failures")
                }
                state.withLock {
                    $0.challenge = challenge
                    $0.nc = 0
                }
                renegotiated = true
                continue
            }
            guard response.status == .ok else {
                throw HikvisionACSRequestError(
                    description: "\(base)\(Self.path) answered \(response.status.code) (expected 200): \(String(decoding: reply.prefix(200), as: UTF8.self))")
            }
            return reply
        }
    }

    private func authorization() -> String? {
        guard let username = options.username, let password = options.password else { return nil }
        guard options.useDigest else { return HikvisionDigestClient.basic(username: username, password: password) }
        guard let (challenge, nc) = state.withLock({ s -> (HikvisionDigestClient.Challenge, Int)? in
            guard let challenge = s.challenge else { return nil }
            s.nc += 1
            return (challenge, s.nc)
        }) else { return nil }
        let uri = Self.path
        return HikvisionDigestClient.authorization(
            challenge, method: "POST", uri: uri, username: username, password: password, cnonce: HikvisionDigestClient.newCnonce(), nc: nc)
    }
}
