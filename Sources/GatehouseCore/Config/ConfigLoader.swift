import Foundation
import Yams

/// Reads and validates a config file. Pure: it reads the file and secret files, opens no socket.
public enum ConfigLoader {
    /// Loads `path`; `knownDrivers` are the driver names this build carries, `driverOptions`
    /// what each takes under a device's `options:` (a known driver missing there takes none), and
    /// `sinkTypes` read each sink type's section.
    public static func load(
        path: String, knownDrivers: Set<String>, driverOptions: [String: DriverOptionSet] = [:], sinkTypes: [SinkReader],
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigError) -> GatehouseConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError([ConfigDiagnostic(file: path, line: 0, column: 0, key: "", message: "cannot read the file (does it exist, and may this user read it?)")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError([ConfigDiagnostic(file: path, line: 0, column: 0, key: "", message: "the file is not valid UTF-8")])
        }
        return try parse(
            text, file: path, knownDrivers: knownDrivers, driverOptions: driverOptions, sinkTypes: sinkTypes, environment: environment)
    }

    public static func parse(
        _ text: String, file: String, knownDrivers: Set<String>, driverOptions: [String: DriverOptionSet] = [:],
        sinkTypes: [SinkReader], environment: [String: String] = [:]
    ) throws(ConfigError) -> GatehouseConfig {
        let log = DiagnosticLog(file: file)
        let root: Node
        do {
            guard let node = try YAMLDocument.compose(text) else {
                throw ConfigError([ConfigDiagnostic(file: file, line: 1, column: 1, key: "", message: "the file is empty (expected at least 'site:' and one sink)")])
            }
            root = node
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            throw ConfigError([yamlDiagnostic(error, file: file)])
        } catch {
            throw ConfigError([ConfigDiagnostic(file: file, line: 1, column: 1, key: "", message: "not valid YAML: \(error)")])
        }
        guard let top = YAMLMapping(root, path: "", log: log) else { throw ConfigError(log.items) }
        let config = read(top, knownDrivers: knownDrivers, driverOptions: driverOptions, sinkTypes: sinkTypes, environment: environment)
        top.finish()
        if !log.items.isEmpty {
            var error = ConfigError(log.items.sorted { ($0.line, $0.column) < ($1.line, $1.column) })
            // With every device read, the caller can run the drivers' own checks too and report all at once.
            if case .sequence(let entries)? = top.node("devices"), entries.count == config.devices.count { error.partial = config }
            throw error
        }
        return config
    }

    static func yamlDiagnostic(_ error: YamlError, file: String) -> ConfigDiagnostic {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let where_ = context.map { " \($0.text)" } ?? ""
            return ConfigDiagnostic(file: file, line: mark.line, column: mark.column, key: "", message: "not valid YAML: \(problem)\(where_)")
        default:
            return ConfigDiagnostic(file: file, line: 1, column: 1, key: "", message: "not valid YAML: \(error)")
        }
    }

    static func read(
        _ top: YAMLMapping, knownDrivers: Set<String>, driverOptions: [String: DriverOptionSet], sinkTypes: [SinkReader],
        environment: [String: String]
    ) -> GatehouseConfig {
        let log = top.log
        let site = top.identifier("site") ?? ""
        let stateDirectory = top.filePath("state_directory", expected: "a directory path") ?? "/var/lib/gatehouse"
        let diskBudget = top.bytes("disk_budget_bytes", default: 1 << 30, minimum: 1 << 20)
        let statusInterval = top.double("status_interval_seconds", default: 60, range: 1...86_400)
        let logLevel = top.string("log_level") ?? "info"
        if !["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) {
            log.report(top.node("log_level"), key: "log_level", "'\(logLevel)' is not valid (expected one of trace, debug, info, notice, warning, error, critical)")
        }

        let ingestMap = top.mapping("ingest")
        let ingest = IngestListenerConfig(
            host: ingestMap?.string("host") ?? "0.0.0.0",
            port: ingestMap?.int("port", default: 8080, range: 0...65_535) ?? 8080,
            maxBodyBytes: Int(ingestMap?.bytes("max_body_bytes", default: 1 << 20, minimum: 1024) ?? (1 << 20)),
            idleTimeoutSeconds: ingestMap?.double("idle_timeout_seconds", default: 30, range: 1...3600) ?? 30,
            requestTimeoutSeconds: ingestMap?.double("request_timeout_seconds", default: 10, range: 0.1...600) ?? 10,
            allowFrom: ingestMap?.addressRanges("allow_from") ?? [],
            // Per source address, and an NVR or relay sends for many devices from one address: the
            // default lets one take the box's whole commit rate; overload is `queue.max_waiting_appends`'s job.
            rateLimitPerSecond: ingestMap?.double("rate_limit_per_second", default: 2000, range: 0...1_000_000) ?? 2000,
            rateLimitBurst: ingestMap?.int("rate_limit_burst", default: 4000, range: 1...10_000_000) ?? 4000)
        ingestMap?.finish()

        let adminMap = top.mapping("admin")
        var admin = AdminListenerConfig(
            host: adminMap?.string("host") ?? "127.0.0.1",
            port: adminMap?.int("port", default: 9108, range: 0...65_535) ?? 9108)
        admin.tls = adminMap?.adminTLS()
        admin.console = adminMap?.consoleSettings(adminHost: admin.host, tls: admin.tls != nil) ?? ConsoleSettings()
        adminMap?.finish()
        reportSharedPort(ingest: ingest, admin: admin, ingestNode: ingestMap?.node("port"), adminMap: adminMap, top: top)

        let queueMap = top.mapping("queue")
        let queue = QueueSettings(
            commitMaxEvents: queueMap?.int("commit_max_events", default: 2000, range: 1...100_000) ?? 2000,
            quarantineMaxPayloadBytes: Int(queueMap?.bytes("quarantine_max_payload_bytes", default: 256 << 10, minimum: 1024) ?? (256 << 10)),
            dedupWindowHours: queueMap?.double("dedup_window_hours", default: 72, range: 0...8760) ?? 72,
            maxWaitingAppends: queueMap?.int("max_waiting_appends", default: 1000, range: 1...1_000_000) ?? 1000)
        queueMap?.finish()

        let skewMap = top.mapping("clock_skew")
        let clockSkew = ClockSkewSettings(
            thresholdSeconds: skewMap?.double("threshold_seconds", default: 30, range: 1...86_400) ?? 30,
            reportIntervalSeconds: skewMap?.double("report_interval_seconds", default: 3600, range: 1...604_800) ?? 3600,
            maxAheadSeconds: skewMap?.double("max_ahead_seconds", default: 3600, range: 60...31_536_000) ?? 3600,
            earliestYear: skewMap?.int("earliest_year", default: 2015, range: 1971...2100) ?? 2015)
        skewMap?.finish()

        let privacy = readPrivacy(top.mapping("privacy"), environment: environment)

        let adaptersDirectory = top.filePath("adapters_directory", expected: "a directory path") ?? log.resolve("adapters")
        let imagesMap = top.mapping("images")
        var images = ImageSettings(
            store: imagesMap?.bool("store", default: false) ?? false,
            directory: imagesMap?.filePath("directory", expected: "a directory path") ?? (stateDirectory as NSString).appendingPathComponent("images"),
            maxBytes: imagesMap?.bytes("max_bytes", default: 256 << 20, minimum: 1 << 20) ?? (256 << 20),
            retentionDays: privacy.images.retentionDays)
        // The privacy policy overrides images.store: a dropped picture never reaches the disk.
        if !privacy.images.storesImages { images.store = false }
        imagesMap?.finish()
        var deviceIDs: Set<String> = []
        let devices = top.sequence("devices").compactMap { item -> DeviceConfig? in
            guard let map = YAMLMapping(item.node, path: item.path, log: log) else { return nil }
            defer { map.finish() }
            var device = readDevice(
                map, knownDrivers: knownDrivers, driverOptions: driverOptions, adaptersDirectory: adaptersDirectory, environment: environment)
            device?.adaptersDirectory = adaptersDirectory
            device?.images = images
            if let id = device?.id, !deviceIDs.insert(id).inserted {
                log.report(map.node("id"), key: map.join("id"), "duplicate device id '\(id)' (each device needs its own id)")
            }
            return device
        }

        var sinkNames: Set<String> = []
        let sinkItems = top.sequence("sinks")
        if sinkItems.isEmpty {
            log.report(top.node("sinks"), fallback: top.mark, key: "sinks", "\(top.has("sinks") ? "empty" : "missing required key") (expected a list with at least one sink, e.g. - {name: local, type: file, path: /var/lib/gatehouse/outbox})")
        }
        let sinks = sinkItems.compactMap { item -> SinkConfig? in
            guard let map = YAMLMapping(item.node, path: item.path, log: log) else { return nil }
            defer { map.finish() }
            let sink = readSink(map, sinkTypes: sinkTypes, environment: environment)
            if let name = sink?.name, !sinkNames.insert(name).inserted {
                log.report(map.node("name"), key: map.join("name"), "duplicate sink name '\(name)' (each sink keeps its own cursor under its name)")
            }
            return sink
        }

        let pictureHealth = readPictureHealthSettings(top.mapping("picture_health"))
        let liveness = readLivenessSettings(top.mapping("liveness"))
        var config = GatehouseConfig(
            site: site, stateDirectory: stateDirectory, diskBudgetBytes: diskBudget,
            statusIntervalSeconds: statusInterval, logLevel: logLevel, ingest: ingest, admin: admin, queue: queue,
            clockSkew: clockSkew, privacy: privacy, devices: devices, sinks: sinks, adaptersDirectory: adaptersDirectory,
            images: images)
        config.pictureHealth = pictureHealth
        config.liveness = liveness
        config.connectConcurrency = top.int(
            "connect_concurrency", default: GatehouseConfig.defaultConnectConcurrency, range: 1...10_000)
        return config
    }

    /// Two TCP listeners on one address would fail at start with a bare "address in use";
    /// say which keys clash instead. Port 0 (any free port) never clashes.
    static func reportSharedPort(
        ingest: IngestListenerConfig, admin: AdminListenerConfig, ingestNode: Node?, adminMap: YAMLMapping?, top: YAMLMapping
    ) {
        func overlaps(_ a: String, _ b: String) -> Bool { a == b || ["0.0.0.0", "::"].contains(a) || ["0.0.0.0", "::"].contains(b) }
        guard ingest.port != 0, ingest.port == admin.port, overlaps(ingest.host, admin.host) else { return }
        let ingestLine = ingestNode?.mark.map { "line \($0.line)" } ?? "the default"
        top.log.report(
            adminMap?.node("port"), fallback: adminMap?.mark ?? top.mark, key: "admin.port",
            "\(admin.host):\(admin.port) is also the ingest listener's address (ingest.port, \(ingestLine)); two listeners cannot share a port (expected a different admin.port, e.g. 9108)")
    }

    static func readDevice(
        _ map: YAMLMapping, knownDrivers: Set<String>, driverOptions: [String: DriverOptionSet], adaptersDirectory: String,
        environment: [String: String]
    ) -> DeviceConfig? {
        let id = map.identifier("id")
        let drivers = knownDrivers.sorted().joined(separator: ", ")
        let driver = map.string("driver", required: true, expected: "one of \(drivers)")
        if let driver, !knownDrivers.contains(driver) {
            let hint = YAMLMapping.closest(driver, in: Array(knownDrivers)).map { " — did you mean '\($0)'?" } ?? ""
            map.log.report(map.node("driver"), key: map.join("driver"), "unknown driver '\(driver)' (expected one of \(drivers))\(hint)")
        }
        let vendor = map.string("vendor") ?? "generic"
        let model = map.string("model")
        let type: DeviceType? = map.choice("type", default: nil, required: true)
        let zoneName = map.string("time_zone") ?? "Asia/Shanghai"
        let zone = TimeZone(identifier: zoneName)
        if zone == nil {
            map.log.report(map.node("time_zone"), key: map.join("time_zone"), "unknown time zone '\(zoneName)' (expected an IANA zone name such as Asia/Shanghai or UTC)")
        }
        let auth = readAuth(map.mapping("auth"), environment: environment)
        var device = DeviceConfig(
            id: id ?? "", driver: driver ?? "", vendor: vendor, model: model, type: type ?? .other,
            address: map.string("address"), point: map.string("point"),
            direction: map.choice("direction", default: nil), timeZone: zone ?? .gmt, auth: auth,
            allowFrom: map.addressRanges("allow_from"),
            offlineAfterSeconds: map.double("offline_after_seconds", default: 300, range: 1...604_800),
            enabled: map.bool("enabled", default: true), serial: map.string("serial"),
            options: readOptions(
                map.mapping("options"), declared: driver.flatMap { knownDrivers.contains($0) ? driverOptions[$0] ?? DriverOptionSet.none : nil },
                driver: driver ?? "", adaptersDirectory: adaptersDirectory))
        device.line = map.mark?.line ?? 0
        device.points = readPoints(map.mapping("points"))
        device.pictureHealth = readCameraPictureHealth(map.mapping("picture_health"), vendor: vendor, address: map.string("address"), driver: driver)
        device.liveness = readCameraLiveness(map.mapping("liveness"), driver: driver ?? "", vendor: vendor, address: map.string("address"), auth: auth)
        guard id != nil, driver != nil, type != nil, zone != nil else { return nil }
        return device
    }

    static func readAuth(_ map: YAMLMapping?, environment: [String: String]) -> DeviceAuth? {
        guard let map else { return nil }
        defer { map.finish() }
        if map.has("token") {
            if map.has("username") || map.has("password") {
                map.log.report(map.node("token"), key: map.join("token"), "give either token or username/password, not both")
            }
            return map.secret("token", environment: environment).map(DeviceAuth.token)
        }
        if map.has("username") || map.has("password") {
            let user = map.string("username", required: true)
            let password = map.secret("password", required: true, environment: environment)
            let scheme = map.string("scheme", expected: "basic or digest") ?? "basic"
            guard let user, let password else { return nil }
            switch scheme {
            case "basic": return .basic(username: user, password: password)
            case "digest": return .digest(username: user, password: password)
            default:
                map.log.report(map.node("scheme"), key: map.join("scheme"), "'\(scheme)' is not valid (expected basic or digest)")
                return nil
            }
        }
        map.log.report(nil, fallback: map.mark, key: map.path, "expected either token or username and password")
        return nil
    }

    static func readSink(_ map: YAMLMapping, sinkTypes: [SinkReader], environment: [String: String]) -> SinkConfig? {
        let typeNames = sinkTypes.map(\.typeName).sorted()
        let expected = typeNames.joined(separator: ", ")
        let name = map.identifier("name")
        let type = map.string("type", required: true, expected: "one of \(expected)")
        let batch = map.int("batch_max_events", default: 500, range: 1...100_000)
        let backoffInitial = map.double("backoff_initial_seconds", default: 0.2, range: 0.001...60)
        let backoffMax = map.double("backoff_max_seconds", default: 10, range: 0.01...3600)
        // At a steady trickle every commit would otherwise be its own POST (and its own delivery
        // record); 50 ms fills batches of 25 at 500 events/s and delays no device reply.
        let linger = map.double("batch_linger_seconds", default: 0.05, range: 0...10)
        if backoffMax < backoffInitial {
            map.log.report(map.node("backoff_max_seconds"), key: map.join("backoff_max_seconds"), "must be at least backoff_initial_seconds (\(backoffInitial))")
        }
        var settings: (any SinkSettings)?
        if let type {
            if let reader = sinkTypes.first(where: { $0.typeName == type }) {
                settings = reader.read(map, environment)
            } else {
                let hint = YAMLMapping.closest(type, in: typeNames).map { " — did you mean '\($0)'?" } ?? ""
                map.log.report(map.node("type"), key: map.join("type"), "unknown sink type '\(type)' (expected one of \(expected))\(hint)")
            }
        }
        guard let name, let settings else { return nil }
        return SinkConfig(
            name: name, batchMaxEvents: batch, backoffInitialSeconds: backoffInitial, backoffMaxSeconds: backoffMax,
            batchLingerSeconds: linger, settings: settings)
    }

    static func readPrivacy(_ map: YAMLMapping?, environment: [String: String]) -> PrivacyPolicy {
        var policy = PrivacyPolicy.default
        guard let map else { return policy }
        defer { map.finish() }
        for type in PrivacyPolicy.governedTypes {
            if let mode: PrivacyMode = map.choice(type.rawValue, default: nil) { policy.modes[type] = mode }
        }
        policy.hashSecret = map.secret("hash_secret", environment: environment)
        if let mode: PrivacyMode = map.choice("names", default: nil) {
            // A name has no useful mask or hash downstream: keep or drop.
            if mode == .keep || mode == .drop {
                policy.names = mode
            } else {
                map.log.report(map.node("names"), key: map.join("names"), "'\(mode.rawValue)' is not valid (expected keep or drop)")
            }
        }
        if let text = map.string("images") {
            if let images = ImagePolicy(text) {
                policy.images = images
            } else {
                map.log.report(map.node("images"), key: map.join("images"), "'\(text)' is not valid (expected drop, keep or 'keep N days' with N from 1 to 3650)")
            }
        }
        policy.quarantineKey = map.secret("quarantine_key", environment: environment)
        if policy.modes.values.contains(.hash), policy.hashSecret == nil {
            map.log.report(nil, fallback: map.mark, key: map.join("hash_secret"), "required when any subject type uses 'hash' (expected {file: PATH}, {credential: NAME} or {env: NAME} with a long random value)")
        }
        return policy
    }
}
