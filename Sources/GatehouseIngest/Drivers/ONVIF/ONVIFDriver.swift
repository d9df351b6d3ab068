import AsyncHTTPClient
import Foundation
import GatehouseCore
import GatehouseQueue
import Hummingbird

/// ONVIF cameras and NVRs by PullPoint: the gateway subscribes and long-polls, the camera never
/// connects back. See Drivers/ONVIF/README.md.
public struct ONVIFDriver: Driver {
    public let name = "onvif"
    public let runsPerDevice = true
    /// One HTTP client for every camera's subscription. Each request carries its device's
    /// `request_timeout_seconds`, which covers connecting too; the client's connect timeout is
    /// only a backstop at the longest that option allows.
    private let http = SharedHTTPClient(connectTimeout: .seconds(120))

    public init() {}

    public var options: DriverOptionSet { DriverOptionSet(ONVIFOptions.declarations) }

    public func validate(device: DeviceConfig) -> [String] { ONVIFOptions.problems(in: device) }

    public func mountRoutes(on router: RouterGroup<IngestRequestContext>, context: DriverContext) {}

    /// Quarantine replay: a kept PullMessages reply or one NotificationMessage, mapped as if the
    /// subscription had just begun (a fresh tracker: a `Changed` true is a start).
    public func decode(_ payload: RawPayload, device: DeviceConfig) throws(PayloadError) -> [EventDraft] {
        let root: ONVIFElement
        do {
            root = try ONVIFXML.parse(payload.body)
        } catch {
            throw PayloadError(error.description)
        }
        let container: ONVIFElement
        if root.name == "NotificationMessage" {
            container = ONVIFElement(name: "PullMessagesResponse", attributes: [:], children: [root], text: "")
        } else {
            do {
                container = try ONVIFSOAP.body(payload.body)
            } catch {
                throw PayloadError(error.description)
            }
        }
        let options = (try? ONVIFOptions(device)) ?? ONVIFOptions()
        var mapper = ONVIFEventMapper(
            deviceID: device.id, extraRules: options.extraRules, timeFormat: options.timeFormat ?? .utc, zone: device.timeZone,
            motionQuiet: nil)
        var drafts: [EventDraft] = []
        for (_, result) in ONVIFNotification.messages(in: container) {
            switch result {
            case .success(let notification): drafts += mapper.drafts(for: notification, now: .now)
            case .failure(let error): throw error
            }
        }
        return drafts
    }

    public func run(device: DeviceConfig, context: DriverContext) async throws {
        let options = try ONVIFOptions(device)
        try await http.withClient { client in
            await ONVIFSession(options: options, http: client, context: context.device(device)).run()
        }
    }
}

/// A device's options, typed by `declarations`, and what its entry says about the camera.
struct ONVIFOptions: Sendable, Equatable {
    var deviceServiceURL = ""
    var host: String?
    var credentials: ONVIFSOAP.Credentials?
    var subscriptionSeconds = 600
    var messageLimit = 64
    var requestTimeoutSeconds = 10.0
    var retryInitialSeconds = 5.0
    var retryMaxSeconds = 120.0
    var authRetrySeconds = 600.0
    var motionQuietSeconds = 60.0
    var extraRules: [ONVIFTopicRule] = []
    // Quirk overrides; nil keeps what the quirk table says for the camera.
    var pullTimeoutSeconds: Int?
    var renewUnit: ONVIFQuirks.RenewUnit?
    var renewMode: ONVIFQuirks.RenewMode?
    var renewMinIntervalSeconds: Double?
    var oneListener: Bool?
    var maxSubscriptions: Int?
    var timeFormat: ONVIFTimeFormat?

    static let declarations: [OptionDeclaration] = [
        OptionDeclaration("subscription_seconds", .int(60...86_400), default: .int(600), "how long a subscription lives unless renewed (InitialTerminationTime, Renew)"),
        OptionDeclaration("message_limit", .int(1...1024), default: .int(64), "PullMessages MessageLimit"),
        OptionDeclaration("request_timeout_seconds", .double(1...120), default: .double(10), "how long one request may take beyond the long-poll"),
        OptionDeclaration("retry_initial_seconds", .double(0.1...3600), default: .double(5), "first pause before recreating a lost subscription (doubles, jittered)"),
        OptionDeclaration("retry_max_seconds", .double(1...86_400), default: .double(120), "longest pause between attempts"),
        OptionDeclaration("auth_retry_seconds", .double(30...86_400), default: .double(600), "pause after the camera refused the credentials"),
        OptionDeclaration("motion_quiet_seconds", .double(0...86_400), default: .double(60), "close a motion alarm after this long without news (0: only the camera closes it)"),
        OptionDeclaration("kinds", .kindTable, "extra topic: kind rows, tried before the shipped table (e.g. RuleEngine/MyRule/Alarm: camera.intrusion)"),
        OptionDeclaration("pull_timeout_seconds", .int(1...600), "PullMessages long-poll Timeout (quirk table: 30, Axis 20)"),
        OptionDeclaration("renew_unit", .choice(ONVIFQuirks.RenewUnit.allCases.map(\.rawValue)), "durations in seconds (PT600S) or minutes (PT10M)"),
        OptionDeclaration("renew_mode", .choice(ONVIFQuirks.RenewMode.allCases.map(\.rawValue)), "relative durations or absolute UTC times for termination"),
        OptionDeclaration("renew_min_interval_seconds", .double(0...86_400), "never renew more often than this"),
        OptionDeclaration("one_listener", .bool, "the camera keeps one subscription per client: unsubscribe the old one first"),
        OptionDeclaration("max_subscriptions", .int(1...1000), "the camera's MaxPullPoints"),
        OptionDeclaration("time_format", .choice(ONVIFTimeFormat.allCases.map(\.rawValue)), "utc: UtcTime as the standard says; local: the camera writes local time there"),
    ]

    init() {}

    init(_ device: DeviceConfig) throws(ONVIFConfigError) {
        let problems = Self.problems(in: device)
        guard problems.isEmpty else { throw ONVIFConfigError(problems: problems) }
        let o = device.options
        if let address = device.address {
            deviceServiceURL = Self.deviceServiceURL(address)
            host = URLComponents(string: deviceServiceURL)?.host
        }
        switch device.auth {
        case .digest(let user, let secret), .basic(let user, let secret): credentials = ONVIFSOAP.Credentials(username: user, password: secret.value)
        default: break
        }
        subscriptionSeconds = o.int("subscription_seconds") ?? subscriptionSeconds
        messageLimit = o.int("message_limit") ?? messageLimit
        requestTimeoutSeconds = o.double("request_timeout_seconds") ?? requestTimeoutSeconds
        retryInitialSeconds = o.double("retry_initial_seconds") ?? retryInitialSeconds
        retryMaxSeconds = max(retryInitialSeconds, o.double("retry_max_seconds") ?? retryMaxSeconds)
        authRetrySeconds = o.double("auth_retry_seconds") ?? authRetrySeconds
        motionQuietSeconds = o.double("motion_quiet_seconds") ?? motionQuietSeconds
        extraRules = o.kindTable("kinds").map { ONVIFTopicRule(topic: ONVIFNotification.normalizedTopic($0.code), kind: $0.kind) }
        pullTimeoutSeconds = o.int("pull_timeout_seconds")
        renewUnit = o.string("renew_unit").flatMap(ONVIFQuirks.RenewUnit.init(rawValue:))
        renewMode = o.string("renew_mode").flatMap(ONVIFQuirks.RenewMode.init(rawValue:))
        renewMinIntervalSeconds = o.double("renew_min_interval_seconds")
        oneListener = o.bool("one_listener")
        maxSubscriptions = o.int("max_subscriptions")
        timeFormat = o.string("time_format").flatMap(ONVIFTimeFormat.init(rawValue:))
    }

    /// The table's quirks with this device's overrides on top.
    func applying(to table: ONVIFQuirks) -> ONVIFQuirks {
        var quirks = table
        if let pullTimeoutSeconds { quirks.pullTimeoutSeconds = pullTimeoutSeconds }
        if let renewUnit { quirks.renewUnit = renewUnit }
        if let renewMode { quirks.renewMode = renewMode }
        if let renewMinIntervalSeconds { quirks.renewMinIntervalSeconds = renewMinIntervalSeconds }
        if let oneListener { quirks.oneListenerOnly = oneListener }
        if let maxSubscriptions { quirks.maxSubscriptions = maxSubscriptions }
        if let timeFormat { quirks.timeFormat = timeFormat }
        return quirks
    }

    /// `host`, `host:port` or a full device-service URL.
    static func deviceServiceURL(_ address: String) -> String {
        var text = address.hasPrefix("http://") || address.hasPrefix("https://") ? address : "http://" + address
        while text.hasSuffix("/") { text.removeLast() }
        let path = URLComponents(string: text)?.path ?? ""
        return path.isEmpty ? text + "/onvif/device_service" : text
    }

    static func problems(in device: DeviceConfig) -> [String] {
        var problems: [String] = []
        if let address = device.address {
            if URLComponents(string: deviceServiceURL(address))?.host?.isEmpty ?? true {
                problems.append("address: '\(address)' is not a camera address (expected host, host:port or http://host:port/onvif/device_service)")
            }
        } else {
            problems.append("address: required (the camera's host[:port], e.g. 192.168.1.64 or 192.168.1.64:8000)")
        }
        if case .token = device.auth {
            problems.append("auth: a token cannot log in to a camera (give the ONVIF user's username and password)")
        }
        return problems
    }
}

struct ONVIFConfigError: Error, CustomStringConvertible {
    let problems: [String]
    var description: String { problems.joined(separator: "; ") }
}
