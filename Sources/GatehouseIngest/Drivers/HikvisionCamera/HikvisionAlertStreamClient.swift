import AsyncHTTPClient
import Foundation
import GatehouseCore
import GatehouseQueue
import Logging
import NIOCore
import Synchronization

/// Holds one camera's `GET /ISAPI/Event/notification/alertStream` open: Digest (one answer to a
/// challenge, never a loop), parts to alarms through the device's tracker, reconnect with
/// jittered exponential backoff on the injected clock, reconnect when no byte came for
/// `stall_seconds` (half-open TCP), and a long pause after a refused password so the camera
/// does not lock the gateway's user out.
final class HikvisionAlertStreamClient: Sendable {
    static let paths = ["/ISAPI/Event/notification/alertStream", "/Event/notification/alertStream"]

    let driver: HikvisionCameraDriver
    let device: DeviceContext
    let options: HikvisionCameraOptions
    private let lastByte = Mutex<ContinuousClock.Instant?>(nil)
    /// Whether the current connection delivered a part: a stream that worked for a while and
    /// then stalled or dropped starts the backoff over.
    private let delivered = Mutex(false)

    init(driver: HikvisionCameraDriver, device: DeviceContext, options: HikvisionCameraOptions) {
        self.driver = driver
        self.device = device
        self.options = options
    }

    var logger: Logger { device.logger }
    var clock: any DriverClock { device.clock }

    /// Why a connection ended.
    enum StreamEnd: Error, CustomStringConvertible {
        case refused(String)
        /// 404: old firmware serves the stream without the /ISAPI prefix.
        case notFound(String)
        case failed(String)
        case stalled(Double)
        case closed

        var description: String {
            switch self {
            case .refused(let text), .notFound(let text), .failed(let text): text
            case .stalled(let seconds): "alertStream stalled: no byte for \(Self.format(seconds)) s (stall_seconds); reconnecting"
            case .closed: "the camera closed alertStream"
            }
        }

        static func format(_ value: Double) -> String { value == value.rounded() ? String(Int(value)) : String(value) }
    }

    /// Holds the stream through `client`, the driver's, shared by all its cameras.
    func run(client: HTTPClient) async throws {
        var failures = 0
        var pathIndex = 0
        while !Task.isCancelled {
            let pause: Double
            delivered.withLock { $0 = false }
            do {
                let gotData = try await stream(client: client, path: Self.paths[pathIndex])
                failures = gotData ? 0 : failures + 1
                pause = Self.backoff(failures: failures, initial: options.reconnectInitialSeconds, cap: options.reconnectMaxSeconds)
                await device.down(reason: StreamEnd.closed.description)
            } catch is CancellationError {
                return
            } catch let end as StreamEnd {
                if Task.isCancelled { return }
                if case .notFound = end, pathIndex + 1 < Self.paths.count {
                    pathIndex += 1
                    continue
                }
                failures = delivered.withLock { $0 } ? 1 : failures + 1
                if case .refused = end {
                    pause = options.authRetrySeconds
                } else {
                    pause = Self.backoff(failures: failures, initial: options.reconnectInitialSeconds, cap: options.reconnectMaxSeconds)
                }
                logger.warning("hikvision-camera \(options.baseURL ?? "?"): \(end)")
                await device.down(reason: end.description)
            } catch {
                if Task.isCancelled { return }
                failures = delivered.withLock { $0 } ? 1 : failures + 1
                pause = Self.backoff(failures: failures, initial: options.reconnectInitialSeconds, cap: options.reconnectMaxSeconds)
                logger.warning("hikvision-camera \(options.baseURL ?? "?"): alertStream failed: \(error)")
                await device.down(reason: "alertStream failed: \(error)")
            }
            // Alarms the camera stopped repeating close while it is away too, not only while a stream is open.
            try? await driver.closeQuiet(device)
            try await clock.sleep(for: .milliseconds(Int64(pause * 1000)))
        }
    }

    /// Jittered exponential backoff: `initial · 2^(failures-1)`, capped, times a random 0.5–1
    /// so a site's cameras do not reconnect in step after a switch reboot.
    static func backoff(failures: Int, initial: Double, cap: Double, jitter: Double = Double.random(in: 0.5...1)) -> Double {
        guard failures > 0 else { return initial * jitter }
        let exponential = initial * pow(2, Double(min(failures - 1, 30)))
        return min(cap, exponential) * jitter
    }

    /// One connection: returns when the camera ends the stream (true when it sent any part).
    func stream(client: HTTPClient, path: String) async throws -> Bool {
        guard let base = options.baseURL else { throw StreamEnd.failed("no address configured") }
        // The device's turn among those connecting (`connect_concurrency`) lasts until the stream is open or refused.
        guard let turn = await device.connectTurn() else { throw CancellationError() }
        defer { turn.end() }
        var response = try await client.execute(request(base + path, authorization: nil), deadline: .distantFuture)
        if response.status == .unauthorized {
            let header = response.headers["WWW-Authenticate"].first ?? ""
            _ = try? await response.body.collect(upTo: 64 << 10)
            let authorization: String?
            if options.useDigest, let challenge = HikvisionDigestClient.challenge(header), let username = options.username, let password = options.password {
                authorization = HikvisionDigestClient.authorization(
                    challenge, method: "GET", uri: path, username: username, password: password, cnonce: HikvisionDigestClient.newCnonce(), nc: 1)
            } else if let username = options.username, let password = options.password {
                authorization = HikvisionDigestClient.basic(username: username, password: password)
            } else {
                authorization = nil
            }
            response = try await client.execute(request(base + path, authorization: authorization), deadline: .distantFuture)
            if response.status == .unauthorized {
                _ = try? await response.body.collect(upTo: 64 << 10)
                throw StreamEnd.refused(
                    "camera refused user '\(options.username ?? "")' (401 after an authenticated request): wrong password? not retrying for \(StreamEnd.format(options.authRetrySeconds)) s (auth_retry_seconds), cameras lock users after repeated failures")
            }
        }
        guard response.status == .ok else {
            let text = String(buffer: (try? await response.body.collect(upTo: 4096)) ?? ByteBuffer())
            let message = "\(base)\(path) answered \(response.status.code) (expected 200): \(text.prefix(200))"
            throw response.status == .notFound ? StreamEnd.notFound(message) : StreamEnd.failed(message)
        }
        let contentType = response.headers["Content-Type"].first
        guard let boundary = HikvisionAlertStreamParser.boundary(contentType: contentType) else {
            throw StreamEnd.failed("alertStream Content-Type '\(contentType ?? "")' has no boundary (expected multipart/mixed; boundary=…)")
        }
        turn.end()
        logger.info("hikvision-camera \(base): alertStream open (boundary \(boundary))")
        await device.seen()
        lastByte.withLock { $0 = clock.instant }
        let body = response.body
        return try await driver.ticker.withTicks(clock: clock) { ticks in
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    defer { ticks.end() }
                    var parser = HikvisionAlertStreamParser(boundary: boundary, maxPartBytes: self.options.maxPartBytes)
                    var parts = false
                    for try await chunk in body {
                        // While its parts are committed the camera is not silent, we are busy (a
                        // slow disk): no stall is counted until the next read starts.
                        self.lastByte.withLock { $0 = nil }
                        defer { self.lastByte.withLock { $0 = self.clock.instant } }
                        for output in parser.feed(chunk.readableBytesView) {
                            switch output {
                            case .part(let part):
                                parts = true
                                self.delivered.withLock { $0 = true }
                                try await self.handle(part, path: path)
                            case .malformed(let reason, let bytes):
                                try await self.quarantine(bytes, reason: reason, path: path, contentType: nil)
                            case .end:
                                return parts
                            }
                        }
                    }
                    return parts
                }
                // The watchdog, in this task on the driver's beat rather than in a task of its
                // own per stream: stall detection and quiet stops, both on the injected clock.
                // Throwing here cancels the reader.
                for await _ in ticks.beats {
                    // Quiet stops first: a camera that went silent also stalls its stream.
                    try await self.driver.closeQuiet(self.device)
                    let last = self.lastByte.withLock { $0 }
                    if let last, self.clock.instant - last >= .milliseconds(Int64(self.options.stallSeconds * 1000)) {
                        throw StreamEnd.stalled(self.options.stallSeconds)
                    }
                }
                // The reader ended the beats: its result, or its error.
                return try await group.next() ?? false
            }
        }
    }

    private func request(_ url: String, authorization: String?) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        return request
    }

    /// One part: an alert to the tracker (pictures in the stream are not kept: listening mode carries them).
    private func handle(_ part: HikvisionAlertStreamParser.Part, path: String) async throws {
        guard !part.isImage else { return }
        let alert: HikvisionCameraAlert
        do {
            alert = try HikvisionCameraAlert.parse(part.body)
        } catch {
            try await quarantine(part.body, reason: error.reason, path: path, contentType: part.contentType)
            return
        }
        let reading = HikvisionCameraMapping.read(alert, zone: device.config.timeZone, extraKinds: options.kinds, now: clock.now)
        if case .elsewhere(let reason) = reading {
            try await quarantine(part.body, reason: reason, path: path, contentType: part.contentType)
            return
        }
        let drafts = driver.drafts(for: reading, device: device)
        if drafts.isEmpty {
            // A keep-alive (`videoloss inactive`) or a repeat: the last alert stays on the device page.
            await device.seen()
            return
        }
        device.keepLastPayload(part.body, contentType: part.contentType, mapped: drafts)
        let outcomes = try await device.submit(drafts)
        if let refused = outcomes.first(where: { !$0.isAccepted }) {
            logger.error("hikvision-camera \(options.baseURL ?? "?"): queue refused an alarm (\(refused)); the camera does not resend stream parts")
        }
    }

    private func quarantine(_ bytes: [UInt8], reason: String, path: String, contentType: String?) async throws {
        logger.warning("hikvision-camera \(options.baseURL ?? "?"): alertStream part quarantined: \(reason)")
        let record = QuarantineRecord(
            deviceID: device.config.id, driver: device.config.driver, route: path, contentType: contentType ?? "application/octet-stream",
            remote: options.baseURL, reason: reason, payload: Data(bytes))
        do {
            _ = try await device.quarantine(record)
        } catch {
            logger.error("hikvision-camera: could not keep a malformed part: \(error)")
        }
    }
}
