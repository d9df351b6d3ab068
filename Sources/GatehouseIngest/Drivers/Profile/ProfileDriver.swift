import Foundation
import GatehouseCore
import GatehouseProfiles
import GatehouseQueue
import Hummingbird
import Synchronization

/// Brands described by a profile under `adapters/` rather than by Swift code:
/// `POST /v1/push/{profile}` (the device found by the profile's rule) and
/// `POST /v1/push/{profile}/{device}`; and `POST /v1/push/capture/{device}` for a device with
/// `options.capture: true`, whose payloads are only kept (quarantine, `no-profile`) until a
/// profile is written from them (README: "Capture").
///
/// The device gets the profile's reply only after the events are committed; a payload that
/// does not map is kept in quarantine and still gets the reply, because a device that is not
/// answered the way it expects re-sends the same payload forever.
public final class ProfileDriver: Driver {
    public let name = "profile"
    /// Loaded profiles by adapters directory; loaded on first use and again on reload.
    private let sets = Mutex<[String: ProfileSet]>([:])
    let images = ImageStore()

    public init() {}

    /// The profiles of `directory`, loading them the first time they are asked for.
    public func profiles(in directory: String) -> ProfileSet {
        if let set = sets.withLock({ $0[directory] }) { return set }
        let loaded = ProfileSet.load(directory: directory)
        return sets.withLock { cache in
            if let existing = cache[directory] { return existing }
            cache[directory] = loaded
            return loaded
        }
    }

    /// Deletes stored pictures past `privacy.images: keep N days` for every image directory the
    /// devices use; returns how many were deleted.
    public func sweepImages(devices: [DeviceConfig], now: Date) -> Int {
        var seen: Set<String> = []
        var deleted = 0
        for device in devices where device.driver == name && seen.insert(device.images.directory).inserted {
            deleted += images.sweep(settings: device.images, now: now)
        }
        return deleted
    }

    /// Re-reads the adapters directory. A profile that no longer loads keeps its previous
    /// version (and the reason is returned), so a typo in one file stops no camera.
    public func reload(config: GatehouseConfig) -> [String] {
        let directory = config.adaptersDirectory
        let fresh = ProfileSet.load(directory: directory)
        return sets.withLock { cache in
            var messages: [String] = []
            var next = fresh
            let previous = cache[directory]
            for (name, failure) in fresh.failures {
                if let kept = previous?.profiles[name] {
                    next.profiles[name] = kept
                    messages.append("profile \(name) did not reload, keeping the previous version: \(failure)")
                } else {
                    messages.append("\(failure)")
                }
            }
            if let previous {
                let added = Set(fresh.profiles.keys).subtracting(previous.profiles.keys)
                messages += added.sorted().map { "profile \($0) added" }
            }
            cache[directory] = next
            return messages
        }
    }

    /// `profile` and capture's options, then the options the chosen profile declares
    /// (profile.yaml `options:`, with `values` and `default`).
    public var options: DriverOptionSet {
        DriverOptionSet(
            [OptionDeclaration("profile", .string, "the folder under adapters_directory that maps this device's payloads")]
                + CaptureSettings.declarations,
            dependent: { [self] context in
                guard let profileName = context.fixed.string("profile") else { return [] }
                var set = profiles(in: context.adaptersDirectory)
                // Added or changed since the cache was filled (a reload): read the folder again.
                let known = Set(["profile"] + CaptureSettings.declarations.map(\.name) + (set.profiles[profileName]?.options.keys.map { $0 } ?? []))
                if set.profiles[profileName] == nil || context.keys.contains(where: { !known.contains($0) }) {
                    set = ProfileSet.load(directory: context.adaptersDirectory)
                }
                // No such profile: validate names it; its options cannot be checked yet.
                guard let profile = set.profiles[profileName] else { return nil }
                return profile.options.sorted { $0.key < $1.key }.map { key, option in
                    OptionDeclaration(
                        key, option.values.isEmpty ? .string : .choice(option.values), default: .string(option.defaultValue),
                        "declared by profile \(profileName)")
                }
            })
    }

    public func validate(device: DeviceConfig) -> [String] {
        let problems = CaptureSettings.problems(in: device.options)
        let capture = CaptureSettings(device.options)
        // A capture device needs no profile yet: that is what the captured payloads are for.
        if capture.enabled, device.options["profile"] == nil { return problems }
        var set = profiles(in: device.adaptersDirectory)
        // A reload may name a profile added since the cache was filled: read the folder again.
        if let wanted = device.options["profile"], set.profiles[wanted] == nil {
            set = ProfileSet.load(directory: device.adaptersDirectory)
        }
        guard let profileName = device.options["profile"] else {
            let known = set.profiles.keys.sorted().joined(separator: ", ")
            return ["options.profile: missing (expected the name of a folder under \(device.adaptersDirectory): \(known.isEmpty ? "none found" : known))"]
        }
        if let failure = set.failures[profileName] { return ["options.profile: \(failure)"] }
        guard set.profiles[profileName] != nil else {
            let known = set.profiles.keys.sorted()
            let hint = YAMLMapping.closest(profileName, in: known).map { " — did you mean '\($0)'?" } ?? ""
            return ["options.profile: no profile '\(profileName)' under \(device.adaptersDirectory) (profiles: \(known.isEmpty ? "none" : known.joined(separator: ", ")))\(hint)"]
        }
        // The profile's own options (names and `values`) were checked by the config loader.
        // No `serial` is needed: a device without one is reached by its path,
        // /v1/push/{profile}/{device id}; one with a serial may also push to /v1/push/{profile}.
        return problems
    }

    public func decode(_ payload: RawPayload, device: DeviceConfig) throws(PayloadError) -> [EventDraft] {
        let profile = try profile(for: device, route: payload.route)
        return try Self.drafts(ProfileRequest(body: payload.body, contentType: payload.contentType), profile: profile, device: device)
    }

    /// One payload decoded and mapped by `profile` for `device`: also the `mqtt` driver's mapping.
    static func drafts(_ request: ProfileRequest, profile: Profile, device: DeviceConfig) throws(PayloadError) -> [EventDraft] {
        do {
            let document = try profile.decode(request)
            return try profile.map(document, request: request, device: profileDevice(device, profile: profile))
                .map { draft($0, profile: profile.name) }
        } catch {
            throw PayloadError(error.reason)
        }
    }

    func profile(for device: DeviceConfig, route: String?) throws(PayloadError) -> Profile {
        let set = profiles(in: device.adaptersDirectory)
        // A captured payload's route names no profile: it maps with the device's current one.
        let fromRoute = route.flatMap(Self.profileName(inRoute:)).flatMap { $0 == CaptureSettings.routeSegment ? nil : $0 }
        guard let name = device.options["profile"] ?? fromRoute else {
            throw PayloadError("device '\(device.id)' names no profile (set options.profile to a folder under \(device.adaptersDirectory); a captured payload maps once the device has one)")
        }
        guard let profile = set.profiles[name] else {
            throw PayloadError("no profile '\(name)' under \(device.adaptersDirectory)")
        }
        return profile
    }

    /// `/v1/push/zhenshi-lpr[/device]` → `zhenshi-lpr`.
    static func profileName(inRoute route: String) -> String? {
        let parts = route.split(separator: "/")
        guard parts.count >= 3, parts[0] == "v1", parts[1] == "push" else { return nil }
        return String(parts[2])
    }

    /// The configured device of this profile that the payload's identity (serial or source
    /// address, as the profile's `identify` says) names.
    static func device(identifiedBy key: String?, profile: Profile, among devices: [DeviceConfig]) -> DeviceConfig? {
        guard let key else { return nil }
        return devices.first { device in
            device.driver == "profile" && device.options["profile"] == profile.name
                && (profile.identify == .sourceIP ? device.address == key : device.serial == key)
        }
    }

    /// A payload kept without a device (its serial or address was not configured yet) is
    /// matched again with the current config, the way the live route matches it.
    public func resolveDevice(for payload: RawPayload, remote: String?, in devices: [DeviceConfig]) -> DeviceConfig? {
        guard let route = payload.route, let profileName = Self.profileName(inRoute: route),
            profileName != CaptureSettings.routeSegment,
            let directory = devices.first(where: { $0.driver == name })?.adaptersDirectory,
            let profile = profiles(in: directory).profiles[profileName]
        else { return nil }
        let request = ProfileRequest(body: payload.body, contentType: payload.contentType, remoteIP: remote)
        let document = try? profile.decode(request)
        return Self.device(identifiedBy: profile.deviceKey(document: document, request: request), profile: profile, among: devices)
    }

    static func profileDevice(_ device: DeviceConfig, profile: Profile) -> ProfileDevice {
        // Defaults from the profile as loaded now, so a reloaded profile's new default applies.
        var options = device.options.text
        for (key, option) in profile.options where options[key] == nil { options[key] = option.defaultValue }
        return ProfileDevice(id: device.id, serial: device.serial, timeZone: device.timeZone, options: options)
    }

    static func draft(_ event: MappedEvent, profile: String) -> EventDraft {
        EventDraft(
            kind: event.kind, occurredAt: event.occurredAt, deviceTime: event.deviceTime, point: event.point,
            direction: event.direction, subject: event.subject, result: event.result, attributes: event.attributes,
            dedupKey: event.dedupKey, profile: profile, timeIssue: event.timeIssue)
    }

    public func mountRoutes(on router: RouterGroup<IngestRequestContext>, context: DriverContext) {
        let handler: @Sendable (Request, IngestRequestContext) async -> Response = { request, requestContext in
            await context.push(request, requestContext, driver: self.name) { push in try await self.handle(push, context) }
        }
        router.post("/v1/push/:profile", use: handler)
        router.post("/v1/push/:profile/:device", use: handler)
    }

    private func handle(_ push: PushRequest, _ context: DriverContext) async throws(Rejection) -> Response {
        let profileName = push.parameter("profile") ?? ""
        if profileName == CaptureSettings.routeSegment {
            return try await capture(push, context)
        }
        return try await map(push, profileName: profileName, deviceID: push.parameter("device"), context)
    }

    private func map(_ push: PushRequest, profileName: String, deviceID: String?, _ context: DriverContext) async throws(Rejection) -> Response {
        let request = push.request
        // The device list is read (and sorted) only when the URL does not name the device.
        let named = deviceID.flatMap { context.device(id: $0) }
        let configured = named == nil ? context.devices(of: name) : []
        let directory = named?.adaptersDirectory ?? configured.first?.adaptersDirectory ?? "adapters"
        guard let profile = profiles(in: directory).profiles[profileName] else {
            throw Rejection(.notFound, "unknown-profile", "no profile '\(profileName)' is loaded from \(directory)")
        }
        let body = try await push.body()
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let contentType = request.headers[.contentType]
        let profileRequest = ProfileRequest(body: body, contentType: contentType, headers: headers, remoteIP: push.remoteIP)

        var document: PayloadDocument?
        var failure: MappingError?
        do {
            document = try profile.decode(profileRequest)
        } catch {
            failure = error
        }
        // Which configured device sent it: named in the URL, or found by the profile's rule.
        let device: DeviceContext?
        if let id = deviceID {
            let found = try push.authorize(deviceID: id, ofThisDriver: false)
            guard found.config.driver == name, (found.options["profile"] ?? profileName) == profileName else {
                throw Rejection(.notFound, "wrong-driver", "device '\(id)' is not configured with driver profile and options.profile \(profileName)")
            }
            device = found
        } else {
            let key = profile.deviceKey(document: document, request: profileRequest)
            if let match = Self.device(identifiedBy: key, profile: profile, among: configured) {
                device = try push.authorize(deviceID: match.id)
            } else {
                device = nil
                if failure == nil {
                    let what = key.map { "'\($0)'" } ?? "no identity"
                    failure = MappingError("no configured device matches \(what) for profile \(profileName) (set serial: on a device with driver: profile and options.profile: \(profileName), or push to /v1/push/\(profileName)/<device>)")
                }
            }
        }
        let profileDevice = device.map { Self.profileDevice($0.config, profile: profile) }
        var events: [MappedEvent] = []
        if failure == nil, let document, let profileDevice {
            do {
                events = try profile.map(document, request: profileRequest, device: profileDevice)
            } catch {
                failure = error
            }
        }
        let reply = profile.reply(document: document, request: profileRequest, device: profileDevice, events: events, failed: failure != nil)
        // The console's device page shows it; the drafts say which values are personal.
        device?.keepLastPayload(body, contentType: contentType, mapped: failure == nil ? events.map { Self.draft($0, profile: profile.name) } : nil)
        if let failure {
            // The profile's reply, not a 422: a device not answered the way it expects re-sends forever.
            _ = try await push.quarantine(body, reason: failure.reason, device: device?.config)
            return Self.response(reply)
        }
        guard let device else { return Self.response(reply) }
        let images = device.config.images
        if images.store, let parts = document?.images.parts, !parts.isEmpty, !events.isEmpty {
            // Written (and fsynced) before the events that name them are committed.
            do {
                let references = try self.images.store(parts, settings: images)
                for index in events.indices {
                    events[index].attributes = (events[index].attributes ?? [:]).merging(["images": .array(references.map(\.json))]) { $1 }
                }
            } catch {
                device.logger.warning("\(error)")
            }
        }
        // Refused: not the profile's reply but the table's 503, so the device keeps the record and sends it again.
        try await push.commit(events.map { Self.draft($0, profile: profile.name) }, device: device)
        return Self.response(reply)
    }

    /// `POST /v1/push/capture/{device}`: keeps the raw payload in quarantine (reason
    /// `no-profile`) and answers the configured generic success, so that a device of an
    /// undocumented brand stops re-sending while a person writes its profile.
    private func capture(_ push: PushRequest, _ context: DriverContext) async throws(Rejection) -> Response {
        guard let id = push.parameter("device") else {
            throw Rejection(.notFound, "no-device", "capture needs the device in the URL: POST /v1/push/capture/<device id>")
        }
        let device = try push.authorize(deviceID: id, ofThisDriver: false).config
        let settings = CaptureSettings(device.options)
        // Switched from capture to a profile: the device keeps the URL it was pointed at, and
        // gets mapped and answered as if it pushed to /v1/push/{profile}/{device}.
        if device.driver == name, !settings.enabled, let profileName = device.options["profile"] {
            return try await map(push, profileName: profileName, deviceID: id, context)
        }
        guard device.driver == name, settings.enabled else {
            throw Rejection(.notFound, "not-capturing", "device '\(id)' is not configured for capture (set driver: profile and options.capture: true)")
        }
        let body = try await push.body()
        // Not mapped yet, so the console's device page hides every value-like word of it.
        context.keepLastPayload(body, contentType: push.contentType, of: device, mapped: nil)
        // Refused for lack of disk: the table's 503, not the generic success, so the device sends it again.
        _ = try await push.quarantine(body, reason: CaptureSettings.reason, device: device)
        return Self.response(settings.reply)
    }

    static func response(_ reply: ProfileReply) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = reply.contentType
        return Response(
            status: HTTPResponse.Status(code: reply.status), headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: Array(reply.body.utf8))))
    }
}
