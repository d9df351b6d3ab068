import AsyncHTTPClient
import Foundation
import GatehouseCore
import GatehouseQueue
import Logging

/// One camera's PullPoint loop, run by the device's task: clock offset → device information →
/// quirks → events service → subscribe → long-poll, renewing before expiry; on any fault,
/// expiry or reboot the subscription is forgotten and created again after a jittered backoff,
/// forever; a refused password stops at once and waits `auth_retry_seconds`. Every wait is on
/// the device context's clock.
final class ONVIFSession {
    let options: ONVIFOptions
    let context: DeviceContext
    let client: ONVIFClient
    var logger: Logger { context.logger }
    var clock: any DriverClock { context.clock }
    var deviceID: String { context.config.id }

    /// After this many unreadable PullMessages replies in a row the subscription is recreated.
    static let maxUnreadableInARow = 3
    /// Unsubscribe on shutdown may take this long at most (all cameras at once; with Digest it
    /// is two round trips, which took over 2 s on a loaded box).
    static let unsubscribeTimeout: Duration = .seconds(5)

    private(set) var quirks = ONVIFQuirks()
    private var mapper: ONVIFEventMapper
    private var eventsURL: String?
    private var subscription: ONVIFSOAP.Subscription?
    private var renewDue: ContinuousClock.Instant?
    private var lastRenew: ContinuousClock.Instant?
    /// Termination sent as absolute UTC once the camera showed it mishandles durations.
    private var absoluteTermination = false
    private var pullTimeoutSeconds = 30
    private var messageLimit: Int
    private var lastSkewReport: Timestamp?
    /// Attempts that failed since the last PullMessages reply: a camera that accepts subscriptions
    /// but fails every pull still backs off further each time.
    private var failures = 0
    /// CreatePullPointSubscription was refused because the camera has no pull point left.
    private var pullPointsFull = false

    init(options: ONVIFOptions, http: HTTPClient, context: DeviceContext) {
        self.options = options
        self.context = context
        client = ONVIFClient(http: http, credentials: options.credentials, configuredHost: options.host)
        messageLimit = options.messageLimit
        mapper = ONVIFEventMapper(
            deviceID: context.config.id, extraRules: options.extraRules, zone: context.config.timeZone,
            motionQuiet: options.motionQuietSeconds > 0 ? .milliseconds(Int64(options.motionQuietSeconds * 1000)) : nil)
    }

    func run() async {
        while !Task.isCancelled {
            let pause: Double
            do {
                try await connectInTurn()
                try await pullLoop()
                continue
            } catch .unauthorized(let why) {
                pause = options.authRetrySeconds
                let reason = "\(why); not retrying for \(Int(pause)) s so the camera does not lock the user out"
                logger.error("onvif camera \(deviceID): \(reason)")
                await context.down(reason: reason)
            } catch {
                if Task.isCancelled || error == .transport("cancelled") { break }
                failures += 1
                pause = max(
                    Self.backoff(failures: failures, initial: options.retryInitialSeconds, maximum: options.retryMaxSeconds),
                    // The camera's pull points are full (our leaked ones among them): they free up when they expire.
                    pullPointsFull ? Double(requestedLifetime) : 0)
                pullPointsFull = false
                let reason = "\(error); subscribing again in \(String(format: "%.1f", pause)) s"
                logger.warning("onvif camera \(deviceID): \(reason)")
                await context.down(reason: reason)
            }
            // A one-listener camera keeps the lost subscription until it expires: free it first.
            if quirks.oneListenerOnly { await unsubscribe() }
            subscription = nil
            do {
                try await clock.sleep(for: .milliseconds(Int64(pause * 1000)))
            } catch {
                break
            }
        }
        await unsubscribe()
    }

    /// `min(maximum, initial·2^(failures−1))`, jittered by ±25 % so cameras that failed together
    /// (a power cut) do not come back in step.
    static func backoff(failures: Int, initial: Double, maximum: Double, jitter: Double = Double.random(in: 0.75...1.25)) -> Double {
        let exponential = initial * pow(2, Double(max(0, min(failures - 1, 30))))
        return min(maximum, exponential) * jitter
    }

    // MARK: - Connecting

    /// Connects and subscribes in the device's turn among those connecting (`connect_concurrency`),
    /// which ends as soon as the subscription is made or the attempt failed.
    private func connectInTurn() async throws(ONVIFError) {
        guard let turn = await context.connectTurn() else { throw .transport("cancelled") }
        defer { turn.end() }
        try await connect()
        try await subscribe()
    }

    private func connect() async throws(ONVIFError) {
        let url = options.deviceServiceURL
        let timeout = requestTimeout
        // The camera clock, without credentials (the spec allows it); some firmware wants them.
        var body: ONVIFElement
        do {
            body = try await client.call(.getSystemDateAndTime, body: ONVIFSOAP.getSystemDateAndTime, to: url, gatewayNow: clock.now, timeout: timeout, authenticated: false)
        } catch .fault, .unauthorized {
            body = try await client.call(.getSystemDateAndTime, body: ONVIFSOAP.getSystemDateAndTime, to: url, gatewayNow: clock.now, timeout: timeout)
        }
        let gatewayNow = clock.now
        if let cameraNow = ONVIFSOAP.systemDateAndTime(body, zone: context.config.timeZone) {
            client.offsetMilliseconds = cameraNow.milliseconds - gatewayNow.milliseconds
            await reportSkew(cameraNow: cameraNow, gatewayNow: gatewayNow)
        } else {
            logger.warning("onvif camera \(deviceID): GetSystemDateAndTime gave no readable time; signing with the gateway clock")
            client.offsetMilliseconds = 0
        }
        let info = ONVIFSOAP.deviceInformation(
            try await client.call(.getDeviceInformation, body: ONVIFSOAP.getDeviceInformation, to: url, gatewayNow: clock.now, timeout: timeout))
        let (table, rows) = ONVIFQuirkTable.quirks(for: info)
        quirks = options.applying(to: table)
        pullTimeoutSeconds = quirks.pullTimeoutSeconds
        mapper.timeFormat = quirks.timeFormat
        logger.info("onvif camera \(deviceID): \(info.manufacturer) \(info.model) \(info.firmware), clock offset \(client.offsetMilliseconds) ms, quirks \(rows.isEmpty ? "none" : rows.joined(separator: ", "))\(quirks.maxSubscriptions.map { " (at most \($0) subscriptions)" } ?? "")")
        var events: String?
        do {
            events = ONVIFSOAP.eventsAddress(try await client.call(.getServices, body: ONVIFSOAP.getServices, to: url, gatewayNow: clock.now, timeout: timeout))
        } catch .fault, .malformed {
            events = nil
        }
        if events == nil {
            events = ONVIFSOAP.eventsAddress(try await client.call(.getCapabilities, body: ONVIFSOAP.getCapabilities, to: url, gatewayNow: clock.now, timeout: timeout))
        }
        guard let events else { throw .malformed("neither GetServices nor GetCapabilities names an events service") }
        eventsURL = client.normalize(events)
    }

    /// `device.clock-skew` when the camera clock is further off than `clock_skew.threshold_seconds`,
    /// at most once per report interval. The offset itself is applied to every `Created`.
    private func reportSkew(cameraNow: Timestamp, gatewayNow: Timestamp) async {
        let settings = context.clockSkewSettings
        let skew = Double(gatewayNow.milliseconds - cameraNow.milliseconds) / 1000
        guard abs(skew) >= settings.thresholdSeconds else { return }
        if let last = lastSkewReport, gatewayNow.seconds - last.seconds < settings.reportIntervalSeconds { return }
        lastSkewReport = gatewayNow
        logger.warning("onvif camera \(deviceID): clock is off by \(Int(skew)) s (reads \(cameraNow)); signing with the camera's time")
        let attributes: [String: JSONValue] = [
            "skewSeconds": .number(skew), "deviceClock": .string(cameraNow.rfc3339), "thresholdSeconds": .number(settings.thresholdSeconds),
            "source": .string("GetSystemDateAndTime"),
        ]
        _ = try? await context.submit([EventDraft(kind: .deviceClockSkew, attributes: attributes)], receivedAt: gatewayNow)
    }

    // MARK: - Subscription

    private var requestTimeout: Duration { .milliseconds(Int64(options.requestTimeoutSeconds * 1000)) }

    private var cameraNow: Timestamp { clock.now.adding(seconds: Double(client.offsetMilliseconds) / 1000) }

    /// The termination to ask for: a duration in the camera's unit, or an absolute UTC time.
    private var termination: String {
        let seconds = requestedLifetime
        if quirks.renewMode == .absolute || absoluteTermination {
            return ONVIFSOAP.created(cameraNow.adding(seconds: Double(seconds)))
        }
        switch quirks.renewUnit {
        case .seconds: return "PT\(seconds)S"
        case .minutes: return "PT\(max(1, (seconds + 59) / 60))M"
        }
    }

    /// `subscription_seconds`, lengthened where the renew rate limit would otherwise let it lapse.
    private var requestedLifetime: Int {
        max(options.subscriptionSeconds, Int((quirks.renewMinIntervalSeconds * 1.5).rounded(.up)))
    }

    private func subscribe() async throws(ONVIFError) {
        guard let eventsURL else { throw .malformed("no events service") }
        let body: ONVIFElement
        do {
            body = try await client.call(
                .createPullPointSubscription, body: ONVIFSOAP.createPullPointSubscription(termination: termination), to: eventsURL,
                gatewayNow: clock.now, timeout: requestTimeout)
        } catch .fault(let fault) {
            let text = fault.description.lowercased()
            pullPointsFull = ["toomany", "maxpullpoints", "outofmemory", "limit"].contains { text.contains($0) }
            throw .fault(fault)
        }
        var created = try ONVIFSOAP.subscription(body)
        created.address = client.normalize(created.address)
        subscription = created
        lastRenew = clock.instant
        scheduleRenew(current: created.currentTime, termination: created.terminationTime)
        logger.info("onvif camera \(deviceID): subscribed at \(created.address), renewing in \(renewDelaySeconds) s")
        await context.seen()
    }

    private var renewDelaySeconds: Int {
        guard let renewDue else { return 0 }
        return Int((renewDue - clock.instant).components.seconds)
    }

    /// Renews at 80 % of the lifetime the camera granted (its own `TerminationTime − CurrentTime`),
    /// no sooner than the quirk's rate limit allows.
    private func scheduleRenew(current: Timestamp?, termination: Timestamp?) {
        var lifetime = Double(requestedLifetime)
        if let current, let termination {
            let granted = Double(termination.milliseconds - current.milliseconds) / 1000
            if granted > 0 {
                // Far below what was asked: this camera misreads durations; use absolute times.
                if granted < lifetime / 2 && quirks.renewMode == .relative && !absoluteTermination {
                    absoluteTermination = true
                    logger.info("onvif camera \(deviceID): granted \(Int(granted)) s for \(Int(lifetime)) s asked; renewing with absolute times")
                }
                lifetime = granted
            }
        }
        // The rate limit may delay a renew, never past the expiry.
        let delay = max(1, min(max(lifetime * 0.8, quirks.renewMinIntervalSeconds), lifetime * 0.9))
        renewDue = clock.instant + .milliseconds(Int64(delay * 1000))
    }

    private func renew() async throws(ONVIFError) {
        guard let subscription else { return }
        let body = try await client.call(
            .renew, body: ONVIFSOAP.renew(termination: termination), to: subscription.address, gatewayNow: clock.now,
            timeout: requestTimeout, referenceParameters: subscription.referenceParameters)
        let (current, terminationTime) = ONVIFSOAP.times(body)
        lastRenew = clock.instant
        scheduleRenew(current: current ?? cameraNow, termination: terminationTime)
    }

    /// Best effort and bounded: the camera frees its pull point now instead of at expiry.
    private func unsubscribe() async {
        guard let subscription else { return }
        self.subscription = nil
        await client.unsubscribe(subscription, gatewayNow: clock.now, timeout: Self.unsubscribeTimeout)
    }

    // MARK: - Pulling

    private func pullLoop() async throws(ONVIFError) {
        var unreadableInARow = 0
        while !Task.isCancelled {
            guard let subscription else { return }
            if let renewDue, clock.instant >= renewDue {
                try await renew()
            }
            // The long-poll ends before the renew falls due.
            let untilRenew = renewDue.map { Int(($0 - clock.instant).components.seconds) } ?? pullTimeoutSeconds
            let timeout = max(1, min(pullTimeoutSeconds, untilRenew))
            let started = clock.instant
            let reply = try await client.post(
                .pullMessages, body: ONVIFSOAP.pullMessages(timeoutSeconds: timeout, messageLimit: messageLimit), to: subscription.address,
                gatewayNow: clock.now, timeout: .seconds(timeout) + requestTimeout, referenceParameters: subscription.referenceParameters)
            let now = clock.now
            let body: ONVIFElement
            do {
                body = try ONVIFSOAP.body(reply)
            } catch .fault(let fault) {
                if fault.detail.contains("PullMessagesFaultResponse") || fault.maxTimeout != nil {
                    adopt(fault)
                    continue
                }
                throw .fault(fault)
            } catch {
                // Unreadable: kept with the reason; the subscription goes on unless it keeps happening.
                unreadableInARow += 1
                try await keep(reply, reason: "PullMessages reply: \(error)", route: subscription.address)
                if unreadableInARow >= Self.maxUnreadableInARow {
                    throw .malformed("\(unreadableInARow) unreadable PullMessages replies in a row")
                }
                continue
            }
            unreadableInARow = 0
            failures = 0
            var drafts: [EventDraft] = []
            var kept: [QuarantineRecord] = []
            let messages = ONVIFNotification.messages(in: body)
            for (element, result) in messages {
                switch result {
                case .success(let notification):
                    let made = mapper.drafts(for: notification, now: now)
                    drafts += made
                    // The console's device page shows the last notification; the drafts say which values are personal.
                    context.keepLastPayload(Array(element.xml().utf8), contentType: "application/soap+xml", mapped: made)
                case .failure(let error):
                    let xml = Array(element.xml().utf8)
                    context.keepLastPayload(xml, contentType: "application/soap+xml", mapped: nil)
                    kept.append(record(xml, reason: error.reason, route: subscription.address))
                }
            }
            drafts += mapper.expire(now: now)
            if !drafts.isEmpty || !kept.isEmpty {
                do {
                    let outcomes = try await context.submit(drafts, quarantine: kept, receivedAt: now)
                    if let refused = outcomes.first(where: { !$0.isAccepted }) {
                        logger.warning("onvif camera \(deviceID): queue refused \(refused); the camera will not resend, events lost")
                    }
                } catch {
                    throw .transport("queue: \(error)")
                }
            } else {
                await context.seen()
            }
            // A camera that answers an empty long-poll at once would be asked again at once: pause.
            if messages.isEmpty, clock.instant - started < .seconds(max(1, timeout / 2)) {
                do { try await clock.sleep(for: .seconds(1)) } catch { throw .transport("cancelled") }
            }
        }
    }

    /// A `PullMessagesFaultResponse`: take the camera's limits and ask again.
    private func adopt(_ fault: ONVIFFault) {
        if let text = fault.maxTimeout, let seconds = ONVIFSOAP.durationSeconds(text), seconds >= 1 {
            pullTimeoutSeconds = min(pullTimeoutSeconds, Int(seconds))
        } else {
            pullTimeoutSeconds = max(1, pullTimeoutSeconds / 2)
        }
        if let limit = fault.maxMessageLimit, limit >= 1 { messageLimit = min(messageLimit, limit) }
        logger.info("onvif camera \(deviceID): PullMessages limits adopted: timeout \(pullTimeoutSeconds) s, \(messageLimit) messages")
    }

    private func record(_ bytes: [UInt8], reason: String, route: String) -> QuarantineRecord {
        QuarantineRecord(
            deviceID: deviceID, driver: "onvif", route: URLComponents(string: route)?.path, contentType: "application/soap+xml",
            remote: options.host, reason: reason, payload: Data(bytes))
    }

    private func keep(_ bytes: [UInt8], reason: String, route: String) async throws(ONVIFError) {
        do {
            _ = try await context.quarantine(record(bytes, reason: reason, route: route))
        } catch {
            throw .transport("queue: \(error)")
        }
    }
}
