import Foundation
import Testing

@testable import GatehouseCore
import GatehouseSinks
import GatehouseTesting

/// Parses `text` as test.yaml; returns the config or every diagnostic.
private func parse(_ text: String, environment: [String: String] = [:]) -> Result<GatehouseConfig, ConfigError> {
    do {
        return .success(
            try ConfigLoader.parse(text, file: "test.yaml", knownDrivers: ["generic-json"], sinkTypes: SinkRegistry.readers, environment: environment))
    } catch {
        return .failure(error)
    }
}

private func diagnostics(_ text: String, environment: [String: String] = [:]) -> [ConfigDiagnostic] {
    switch parse(text, environment: environment) {
    case .success: return []
    case .failure(let error): return error.diagnostics
    }
}

/// Expects exactly one diagnostic, at `line`, for `key`, whose message contains every fragment.
private func expectSingle(
    _ text: String, environment: [String: String] = [:], line: Int, key: String, _ fragments: String...,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let found = diagnostics(text, environment: environment)
    #expect(found.count == 1, "expected one diagnostic, got \(found)", sourceLocation: sourceLocation)
    guard let diagnostic = found.first else { return }
    #expect(diagnostic.file == "test.yaml", sourceLocation: sourceLocation)
    #expect(diagnostic.line == line, "\(diagnostic)", sourceLocation: sourceLocation)
    #expect(diagnostic.key == key, "\(diagnostic)", sourceLocation: sourceLocation)
    for fragment in fragments {
        #expect(diagnostic.message.contains(fragment), "'\(fragment)' not in: \(diagnostic.message)", sourceLocation: sourceLocation)
    }
    #expect(diagnostic.description.hasPrefix("test.yaml:\(line):"), sourceLocation: sourceLocation)
}

/// A valid sinks section, appended to snippets that test something else.
private let sinks = """
    sinks:
      - name: local
        type: file
        path: /tmp/gatehouse-test/events.ndjson
    """

@Suite("ConfigLoader")
struct ConfigLoaderTests {
    // MARK: - Valid files

    @Test("a minimal config gets the documented defaults")
    func minimalDefaults() throws {
        let text = """
            site: test-site
            devices:
              - id: gate-1
                driver: generic-json
                type: barrier
            \(sinks)
            """
        let config = try parse(text).get()
        #expect(config.site == "test-site")
        #expect(config.stateDirectory == "/var/lib/gatehouse")
        #expect(config.diskBudgetBytes == 1 << 30)
        #expect(config.statusIntervalSeconds == 60)
        #expect(config.logLevel == "info")
        #expect(config.ingest.host == "0.0.0.0")
        #expect(config.ingest.port == 8080)
        #expect(config.ingest.maxBodyBytes == 1 << 20)
        #expect(config.ingest.allowFrom.isEmpty)
        #expect(config.admin.host == "127.0.0.1")
        #expect(config.admin.port == 9108)
        #expect(config.queue.commitMaxEvents == 2000)
        #expect(config.queue.quarantineMaxPayloadBytes == 256 << 10)
        #expect(config.queue.dedupWindowHours == 72)
        #expect(config.clockSkew.thresholdSeconds == 30)
        #expect(config.clockSkew.reportIntervalSeconds == 3600)
        #expect(config.privacy == PrivacyPolicy.default)

        let device = try #require(config.devices.first)
        #expect(config.devices.count == 1)
        #expect(device.id == "gate-1")
        #expect(device.driver == "generic-json")
        #expect(device.vendor == "generic")
        #expect(device.type == .barrier)
        #expect(device.timeZone.identifier == "Asia/Shanghai")
        #expect(device.auth == nil)
        #expect(device.enabled)
        #expect(device.offlineAfterSeconds == 300)

        let sink = try #require(config.sinks.first)
        #expect(sink.name == "local")
        #expect(sink.batchMaxEvents == 500)
        #expect(sink.settings as? FileSinkConfig == FileSinkConfig(path: "/tmp/gatehouse-test/events.ndjson", rotateBytes: 64 << 20, keepFiles: 10))
    }

    @Test("sizes accept plain bytes and the unambiguous SI and IEC units", arguments: [
        ("512MiB", Int64(536_870_912)),
        ("2GB", Int64(2_000_000_000)),
        ("2GiB", Int64(2 << 30)),
        ("500MiB", Int64(500 << 20)),
        ("1500kB", Int64(1_500_000)),
        ("2048KiB", Int64(2 << 20)),
        ("1073741824", Int64(1_073_741_824)),
        ("\"1 GiB\"", Int64(1 << 30)),
        ("1.5GiB", Int64(1_610_612_736)),
    ])
    func sizes(text: String, bytes: Int64) throws {
        let config = try parse("site: s\ndisk_budget_bytes: \(text)\n\(sinks)").get()
        #expect(config.diskBudgetBytes == bytes)
    }

    @Test("a size whose unit could mean 1000 or 1024 is refused with the valid forms", arguments: ["2g", "2m", "\"2 gb\"", "2KB", "2Gb", "2gib", "64k"])
    func ambiguousSize(text: String) {
        expectSingle(
            "site: s\ndisk_budget_bytes: \(text)\n\(sinks)", line: 2, key: "disk_budget_bytes",
            "expected a size in bytes such as 1073741824, 512MiB or 2GB",
            "units are B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)")
    }

    @Test("ingest and admin on one address are refused, naming both keys and the ingest line")
    func listenersShareAPort() {
        expectSingle(
            "site: s\ningest:\n  port: 9100\nadmin:\n  host: 0.0.0.0\n  port: 9100\n\(sinks)", line: 6, key: "admin.port",
            "0.0.0.0:9100 is also the ingest listener's address (ingest.port, line 3)", "two listeners cannot share a port")
        // Different hosts, or any free port, do not clash.
        #expect(diagnostics("site: s\ningest:\n  host: 127.0.0.1\n  port: 9100\nadmin:\n  host: 127.0.0.2\n  port: 9100\n\(sinks)").isEmpty)
        #expect(diagnostics("site: s\ningest:\n  port: 0\nadmin:\n  port: 0\n\(sinks)").isEmpty)
    }

    @Test("a size with an unknown unit is rejected, naming valid forms")
    func badSize() {
        expectSingle(
            "site: s\ndisk_budget_bytes: 12 parsecs\n\(sinks)", line: 2, key: "disk_budget_bytes",
            "expected a size in bytes such as 1073741824, 512MiB or 2GB", "'12 parsecs'")
        expectSingle(
            "site: s\ndisk_budget_bytes: 1000\n\(sinks)", line: 2, key: "disk_budget_bytes", "too small", "at least 1048576")
    }

    @Test("secrets resolve from the environment and from files and never print their value")
    func secretsResolve() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let secretFile = directory.appendingPathComponent("door3")
        try "  pa55-from-file-XYZ \n".write(to: secretFile, atomically: true, encoding: .utf8)

        let text = """
            site: s
            devices:
              - id: gate-1
                driver: generic-json
                type: barrier
                auth:
                  token: {env: GATE1_TOKEN}
              - id: door-3
                driver: generic-json
                type: door-controller
                auth:
                  username: door3
                  password: {file: \(secretFile.path)}
            sinks:
              - name: central
                type: http
                url: https://central.example.org/events
                bearer_token: {env: CENTRAL_TOKEN}
            """
        let environment = ["GATE1_TOKEN": "tok-from-env-ABC", "CENTRAL_TOKEN": "central-tok-QRS"]
        let config = try parse(text, environment: environment).get()

        guard case .token(let token)? = config.devices[0].auth else {
            Issue.record("expected a token, got \(String(describing: config.devices[0].auth))")
            return
        }
        #expect(token.value == "tok-from-env-ABC")
        #expect(token.origin == "env GATE1_TOKEN")
        guard case .basic(let username, let password)? = config.devices[1].auth else {
            Issue.record("expected basic auth")
            return
        }
        #expect(username == "door3")
        #expect(password.value == "pa55-from-file-XYZ", "file secrets are trimmed")
        #expect(password.origin == "file \(secretFile.path)")
        guard let http = config.sinks[0].settings as? HTTPSinkConfig else {
            Issue.record("expected an http sink")
            return
        }
        #expect(http.bearerToken?.value == "central-tok-QRS")

        let values = ["tok-from-env-ABC", "pa55-from-file-XYZ", "central-tok-QRS"]
        for secret in [token, password, try #require(http.bearerToken)] {
            #expect(!values.contains { secret.description.contains($0) })
            #expect(!values.contains { secret.debugDescription.contains($0) })
            #expect(!values.contains { "\(secret)".contains($0) })
        }
        // Printing the whole config (as a careless log line would) shows no secret either.
        let printed = "\(config)" + String(reflecting: config)
        for value in values { #expect(!printed.contains(value), "\(value) printed") }
    }

    // MARK: - Diagnostics

    @Test("invalid YAML names the line of the error")
    func invalidYAML() {
        let text = """
            site: s
            ingest:
              host: a: b
            """
        let found = diagnostics(text)
        #expect(found.count == 1)
        #expect(found.first?.line == 3, "\(found)")
        #expect(found.first?.file == "test.yaml")
        #expect(found.first?.message.contains("not valid YAML") == true)
    }

    @Test("an empty file says what is expected")
    func emptyFile() {
        let found = diagnostics("")
        #expect(found.count == 1)
        #expect(found.first?.message.contains("site") == true)
    }

    @Test("a top level that is not a mapping is reported")
    func topLevelList() {
        let found = diagnostics("- a\n- b\n")
        #expect(found.count == 1)
        #expect(found.first?.message.contains("expected a mapping") == true)
    }

    @Test("an unknown top-level key suggests the nearest valid one")
    func unknownTopLevelKey() {
        expectSingle(
            "site: s\nstauts_interval_seconds: 30\n\(sinks)", line: 2, key: "stauts_interval_seconds",
            "unknown key", "did you mean 'status_interval_seconds'?", "valid keys here:", "disk_budget_bytes")
    }

    @Test("an unknown key inside a device names its path and the valid keys")
    func unknownNestedKey() {
        let text = """
            site: s
            devices:
              - id: gate-1
                driver: generic-json
                type: barrier
                time_zon: UTC
            \(sinks)
            """
        expectSingle(text, line: 6, key: "devices[0].time_zon", "unknown key", "did you mean 'time_zone'?", "offline_after_seconds")
    }

    @Test("a port that is not a number is reported with the valid range")
    func portWrongType() {
        expectSingle(
            "site: s\ningest:\n  port: \"abc\"\n\(sinks)", line: 3, key: "ingest.port",
            "expected a whole number from 0 to 65535", "'abc'")
    }

    @Test("a port out of range is reported with the valid range")
    func portOutOfRange() {
        expectSingle("site: s\nadmin:\n  port: 70000\n\(sinks)", line: 3, key: "admin.port", "70000 is out of range", "0 to 65535")
        expectSingle("site: s\ningest:\n  port: 70000\n\(sinks)", line: 3, key: "ingest.port", "70000 is out of range", "0 to 65535")
    }

    @Test("connect_concurrency: 32 unless set, a whole number from 1 to 10000")
    func connectConcurrency() throws {
        #expect(try parse("site: s\n\(sinks)").get().connectConcurrency == 32)
        #expect(try parse("site: s\nconnect_concurrency: 8\n\(sinks)").get().connectConcurrency == 8)
        expectSingle("site: s\nconnect_concurrency: 0\n\(sinks)", line: 2, key: "connect_concurrency", "0 is out of range", "1 to 10000")
    }

    @Test("a missing site is reported")
    func missingSite() {
        expectSingle(sinks, line: 1, key: "site", "missing required key", "letters, digits")
    }

    @Test("an invalid site identifier is reported")
    func invalidSite() {
        expectSingle("site: 小区 one\n\(sinks)", line: 1, key: "site", "invalid identifier", "letters, digits")
    }

    @Test("missing sinks are reported with an example")
    func missingSinks() {
        expectSingle("site: s\nlog_level: info\n", line: 1, key: "sinks", "missing required key", "at least one sink", "type: file")
    }

    @Test(
        "an empty sinks list is reported like a missing one")
    func emptySinks() {
        let found = diagnostics("site: s\nsinks: []\n")
        #expect(found.count == 1)
        #expect(found.first?.key == "sinks")
    }

    @Test("an unknown driver is reported with the known ones and a hint")
    func unknownDriver() {
        let text = """
            site: s
            devices:
              - id: gate-1
                driver: generic-jsn
                type: barrier
            \(sinks)
            """
        expectSingle(text, line: 4, key: "devices[0].driver", "unknown driver 'generic-jsn'", "expected one of generic-json", "did you mean 'generic-json'?")
    }

    @Test("an unknown device type lists the valid types")
    func unknownDeviceType() {
        let text = """
            site: s
            devices:
              - id: gate-1
                driver: generic-json
                type: barier
            \(sinks)
            """
        expectSingle(text, line: 5, key: "devices[0].type", "'barier' is not valid", "lpr-camera", "did you mean 'barrier'?")
    }

    @Test("an unknown time zone is reported")
    func unknownTimeZone() {
        let text = """
            site: s
            devices:
              - id: gate-1
                driver: generic-json
                type: barrier
                time_zone: Asia/Shanghia
            \(sinks)
            """
        expectSingle(text, line: 6, key: "devices[0].time_zone", "unknown time zone 'Asia/Shanghia'", "IANA zone name such as Asia/Shanghai")
    }

    @Test("a duplicate device id is reported at the second one")
    func duplicateDevice() {
        let text = """
            site: s
            devices:
              - id: gate-1
                driver: generic-json
                type: barrier
              - id: gate-1
                driver: generic-json
                type: lpr-camera
            \(sinks)
            """
        expectSingle(text, line: 6, key: "devices[1].id", "duplicate device id 'gate-1'")
    }

    @Test("a duplicate sink name is reported at the second one")
    func duplicateSink() {
        let text = """
            site: s
            sinks:
              - name: out
                type: file
                path: /tmp/a.ndjson
              - name: out
                type: file
                path: /tmp/b.ndjson
            """
        expectSingle(text, line: 6, key: "sinks[1].name", "duplicate sink name 'out'")
    }

    @Test("a bad CIDR in allow_from names the item and valid forms")
    func badCIDR() {
        expectSingle(
            "site: s\ningest:\n  allow_from: [192.168.10.0/24, 10.0.0.0/33]\n\(sinks)", line: 3,
            key: "ingest.allow_from[1]", "'10.0.0.0/33' is not an IP address or CIDR range", "192.168.10.0/24")
        let device = """
            site: s
            devices:
              - id: gate-1
                driver: generic-json
                type: barrier
                allow_from:
                  - 10.0.0.7
                  - gate.local
            \(sinks)
            """
        expectSingle(device, line: 8, key: "devices[0].allow_from[1]", "'gate.local' is not an IP address")
    }

    @Test("a secret from a missing environment variable is reported, naming the variable")
    func missingEnvSecret() {
        let text = """
            site: s
            devices:
              - id: gate-1
                driver: generic-json
                type: barrier
                auth:
                  token: {env: GATEHOUSE_TEST_NOT_SET}
            \(sinks)
            """
        expectSingle(text, environment: ["OTHER": "x"], line: 7, key: "devices[0].auth.token.env", "GATEHOUSE_TEST_NOT_SET is not set")
        expectSingle(text, environment: ["GATEHOUSE_TEST_NOT_SET": ""], line: 7, key: "devices[0].auth.token.env", "not set or empty")
    }

    @Test("a secret from an unreadable file is reported, naming the file")
    func unreadableFileSecret() {
        let path = "/nonexistent-\(UUID().uuidString)/secret"
        let text = """
            site: s
            devices:
              - id: door-3
                driver: generic-json
                type: door-controller
                auth:
                  username: door3
                  password: {file: \(path)}
            \(sinks)
            """
        expectSingle(text, line: 8, key: "devices[0].auth.password.file", "cannot read secret file '\(path)'", "readable")
    }

    @Test("an unknown sink type lists the valid ones")
    func unknownSinkType() {
        let text = """
            site: s
            sinks:
              - name: out
                type: kafka
            """
        expectSingle(text, line: 4, key: "sinks[0].type", "unknown sink type 'kafka'", "expected one of file, http")
    }

    @Test("an http sink needs an http(s) URL with a host")
    func httpSinkURL() {
        let text = """
            site: s
            sinks:
              - name: central
                type: http
                url: ftp://central.example.org/events
            """
        expectSingle(text, line: 5, key: "sinks[0].url", "'ftp://central.example.org/events' is not an http:// or https:// URL")
        let missing = """
            site: s
            sinks:
              - name: central
                type: http
            """
        expectSingle(missing, line: 3, key: "sinks[0].url", "missing required key", "http:// or https://")
    }

    @Test("privacy hash without hash_secret is reported")
    func hashWithoutSecret() {
        let text = """
            site: s
            privacy:
              plate: hash
            \(sinks)
            """
        expectSingle(text, line: 3, key: "privacy.hash_secret", "required when any subject type uses 'hash'", "{env: NAME}")
    }

    @Test("privacy names, images and quarantine_key are read; images: drop overrides images.store")
    func privacyNamesImagesKey() throws {
        let text = """
            site: s
            privacy:
              names: keep
              images: keep 14 days
              quarantine_key: {env: QKEY}
            images:
              store: true
            \(sinks)
            """
        let config = try parse(text, environment: ["QKEY": "k-0123456789"]).get()
        #expect(config.privacy.names == .keep)
        #expect(config.privacy.images == .keepDays(14))
        #expect(config.privacy.quarantineKey?.value == "k-0123456789")
        #expect(config.images.store && config.images.retentionDays == 14)
        let dropping = try parse("site: s\nprivacy:\n  images: drop\nimages:\n  store: true\n\(sinks)").get()
        #expect(!dropping.images.store, "a dropped picture is never written")
        #expect(try parse("site: s\n\(sinks)").get().privacy.names == .drop, "names are dropped by default")
    }

    @Test("invalid privacy names and images values say what is valid")
    func badPrivacyNamesImages() {
        expectSingle("site: s\nprivacy:\n  images: blur\n\(sinks)", line: 3, key: "privacy.images", "'blur' is not valid", "keep N days")
        expectSingle("site: s\nprivacy:\n  names: hash\n\(sinks)", line: 3, key: "privacy.names", "'hash' is not valid", "keep or drop")
    }

    @Test("a privacy mode outside keep/mask/hash/drop is reported")
    func badPrivacyMode() {
        expectSingle("site: s\nprivacy:\n  card: blur\n\(sinks)", line: 3, key: "privacy.card", "'blur' is not valid", "keep, mask, hash, drop")
    }

    @Test("several errors are reported at once, in one ConfigError")
    func severalErrors() {
        let text = """
            stauts_interval_seconds: 30
            ingest:
              port: 70000
            devices:
              - id: gate-1
                driver: onvif
                type: barrier
                time_zone: Nowhere/City
            sinks:
              - name: out
                type: kafka
            """
        let found = diagnostics(text)
        let keys = Set(found.map(\.key))
        #expect(found.count == 6, "\(found)")
        #expect(keys == ["site", "stauts_interval_seconds", "ingest.port", "devices[0].driver", "devices[0].time_zone", "sinks[0].type"])
        #expect(found.allSatisfy { $0.file == "test.yaml" })
        if case .failure(let error) = parse(text) {
            #expect(error.description.hasPrefix("6 configuration errors:"))
        }
    }

    // MARK: - The shipped example

    static var repositoryRoot: URL { GatehouseTesting.repositoryRoot }

    static func exampleText() throws -> String {
        try String(contentsOf: repositoryRoot.appendingPathComponent("config/gatehouse.example.yaml"), encoding: .utf8)
    }

    /// Every `{env: NAME}` the text uses, defined.
    static func environment(for text: String) -> [String: String] {
        let pattern = try! NSRegularExpression(pattern: #"\{env:\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}"#)
        var environment: [String: String] = [:]
        for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            if let range = Range(match.range(at: 1), in: text) { environment[String(text[range])] = "test-value" }
        }
        return environment
    }

    @Test("config/gatehouse.example.yaml has no diagnostics besides the secret and TLS files absent here")
    func exampleIsValid() throws {
        let text = try Self.exampleText()
        let environment = Self.environment(for: text)
        #expect(environment.count >= 2)
        let found = diagnostics(text, environment: environment)
        let unexpected = found.filter {
            !($0.message.hasPrefix("cannot read secret file '") || $0.message.hasPrefix("cannot read '"))
        }
        #expect(unexpected.isEmpty, "\(unexpected)")
    }

    @Test("with its secret and TLS files present, the example parses to what its comments document")
    func exampleParses() throws {
        var text = try Self.exampleText()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-example-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let pattern = try NSRegularExpression(pattern: #"/etc/gatehouse/[A-Za-z0-9_./-]+"#)
        let paths = Set(pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
            Range($0.range, in: text).map { String(text[$0]) }
        })
        for (index, path) in paths.sorted().enumerated() {
            let local = directory.appendingPathComponent("file-\(index)")
            try "secret-\(index)\n".write(to: local, atomically: true, encoding: .utf8)
            text = text.replacingOccurrences(of: path, with: local.path)
        }
        let config = try parse(text, environment: Self.environment(for: text)).get()
        #expect(config.site == "example-community")
        #expect(config.diskBudgetBytes == 1 << 30)
        #expect(config.statusIntervalSeconds == 60)
        #expect(config.ingest.port == 8080)
        #expect(config.admin.port == 9108)
        #expect(config.devices.map(\.id) == ["gate-north-in", "door-block-3"])
        #expect(config.devices[0].direction == .in)
        #expect(config.devices[0].type == .lprCamera)
        #expect(config.sinks.map(\.name) == ["outbox", "central", "warehouse"])
        #expect(config.privacy.modes[.qr] == .drop)
        #expect(config.privacy.modes[.phone] == .mask)
        guard let http = config.sinks[1].settings as? HTTPSinkConfig else {
            Issue.record("central is an http sink")
            return
        }
        #expect(http.caFile != nil && http.clientCertificateFile != nil && http.clientKeyFile != nil)
        #expect(http.hmacSecret != nil && http.bearerToken != nil)
        let postgres = config.sinks[2].settings as? PostgresSinkConfig
        #expect(postgres?.password?.value == "test-value" && postgres?.partitionsAhead == 3 && postgres?.tlsRequired == true && postgres?.caFile != nil)
    }
}
