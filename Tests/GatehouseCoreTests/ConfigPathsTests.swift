import Foundation
import Testing

@testable import GatehouseCore
import GatehouseSinks
import GatehouseTesting

/// Relative paths in a config file and secrets from systemd credentials: what an installed
/// daemon, started by systemd in its state directory, actually reads.
@Suite("Config paths and credentials")
struct ConfigPathsTests {
    /// A scratch directory laid out like an install: `etc/` holds the config and its files.
    struct Scratch {
        let root: URL
        var etc: URL { root.appendingPathComponent("etc") }

        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-paths-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: root.appendingPathComponent("etc/secrets"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: root.appendingPathComponent("etc/tls"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: root.appendingPathComponent("credentials"), withIntermediateDirectories: true)
        }

        func write(_ text: String, to relative: String) throws {
            try text.write(to: root.appendingPathComponent(relative), atomically: true, encoding: .utf8)
        }

        func path(_ relative: String) -> String { root.appendingPathComponent(relative).standardizedFileURL.path }

        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    static let sinks = """
        sinks:
          - name: local
            type: file
            path: outbox/events.ndjson
        """

    /// A config whose only sink is an http sink with one secret line (line 6).
    static func central(secret: String) -> String {
        """
        site: s
        sinks:
          - name: central
            type: http
            url: https://central.example.org/events
            \(secret)
        """
    }

    static func load(_ scratch: Scratch, _ text: String, environment: [String: String] = [:]) throws -> GatehouseConfig {
        try scratch.write(text, to: "etc/gatehouse.yaml")
        return try ConfigLoader.load(
            path: scratch.path("etc/gatehouse.yaml"), knownDrivers: ["generic-json"], sinkTypes: SinkRegistry.readers, environment: environment)
    }

    static func diagnostics(_ scratch: Scratch, _ text: String, environment: [String: String]) throws -> [ConfigDiagnostic] {
        try scratch.write(text, to: "etc/gatehouse.yaml")
        do {
            _ = try ConfigLoader.load(
                path: scratch.path("etc/gatehouse.yaml"), knownDrivers: ["generic-json"], sinkTypes: SinkRegistry.readers, environment: environment)
            return []
        } catch {
            return error.diagnostics
        }
    }

    @Test("every path key resolves a relative value against the config file's directory, not the working directory")
    func relativePathsFollowTheConfigFile() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("device-password\n", to: "etc/secrets/door3")
        try scratch.write("central-token\n", to: "etc/secrets/central")
        for name in ["ca.pem", "client.pem", "client.key"] { try scratch.write("PEM\n", to: "etc/tls/\(name)") }
        let config = try Self.load(
            scratch,
            """
            site: s
            state_directory: state
            adapters_directory: ../adapters
            images: {store: true, directory: ./pictures}
            privacy: {card: hash, hash_secret: {file: secrets/central}}
            devices:
              - id: door-3
                driver: generic-json
                type: door-controller
                auth: {username: door3, password: {file: secrets/door3}}
            sinks:
              - name: local
                type: file
                path: outbox/events.ndjson
              - name: central
                type: http
                url: https://central.example.org/events
                bearer_token: {file: secrets/central}
                tls: {ca_file: tls/ca.pem, client_certificate_file: tls/client.pem, client_key_file: tls/client.key}
            """)
        #expect(config.stateDirectory == scratch.path("etc/state"))
        #expect(config.adaptersDirectory == scratch.path("adapters"))
        #expect(config.devices.first?.adaptersDirectory == scratch.path("adapters"))
        #expect(config.images.directory == scratch.path("etc/pictures"))
        #expect(config.sinks.first?.settings as? FileSinkConfig == FileSinkConfig(path: scratch.path("etc/outbox/events.ndjson"), rotateBytes: 64 << 20, keepFiles: 10))
        #expect(config.devices.first?.auth == .basic(username: "door3", password: Secret(value: "device-password", origin: "file \(scratch.path("etc/secrets/door3"))")))
        #expect(config.privacy.hashSecret?.value == "central-token")
        guard let http = config.sinks.last?.settings as? HTTPSinkConfig else {
            Issue.record("central is an http sink")
            return
        }
        #expect(http.bearerToken?.value == "central-token")
        #expect(http.caFile == scratch.path("etc/tls/ca.pem"))
        #expect(http.clientCertificateFile == scratch.path("etc/tls/client.pem"))
        #expect(http.clientKeyFile == scratch.path("etc/tls/client.key"))
    }

    @Test("defaults: adapters beside the config file, images under the (resolved) state directory; absolute paths stay as written")
    func defaultsAndAbsolutePaths() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        var config = try Self.load(scratch, "site: s\nstate_directory: state\n\(Self.sinks)")
        #expect(config.adaptersDirectory == scratch.path("etc/adapters"))
        #expect(config.images.directory == scratch.path("etc/state/images"))
        config = try Self.load(scratch, "site: s\nstate_directory: /var/lib/gatehouse\nadapters_directory: /usr/share/gatehouse/adapters\n\(Self.sinks)")
        #expect(config.stateDirectory == "/var/lib/gatehouse")
        #expect(config.adaptersDirectory == "/usr/share/gatehouse/adapters")
        #expect(config.images.directory == "/var/lib/gatehouse/images")
    }

    @Test("the Debian package's starting config (packaging/deb/gatehouse.yaml) is valid as installed and uses the shipped profiles")
    func packagedConfigIsValid() throws {
        let repo = repositoryRoot
        let config = try ConfigLoader.load(path: repo.appendingPathComponent("packaging/deb/gatehouse.yaml").path, knownDrivers: ["generic-json"], sinkTypes: SinkRegistry.readers)
        #expect(config.stateDirectory == "/var/lib/gatehouse")
        #expect(config.adaptersDirectory == "/usr/share/gatehouse/adapters")
        #expect(config.sinks.map(\.name) == ["outbox"])
    }

    @Test("a relative secret file that is missing is reported with the path it was resolved to")
    func missingRelativeSecretFile() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let found = try Self.diagnostics(
            scratch,
            Self.central(secret: "bearer_token: {file: secrets/absent}"),
            environment: [:])
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.line == 6 && found.first?.key == "sinks[0].bearer_token.file", "\(found)")
        #expect(found.first?.message.contains("'\(scratch.path("etc/secrets/absent"))'") == true, "\(found)")
    }

    @Test("{credential: NAME} reads $CREDENTIALS_DIRECTORY/NAME, trimmed, and never shows the value")
    func credentialIsRead() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.write("s3cret-token\n", to: "credentials/central-token")
        let config = try Self.load(
            scratch,
            Self.central(secret: "bearer_token: {credential: central-token}"),
            environment: ["CREDENTIALS_DIRECTORY": scratch.path("credentials")])
        guard let http = config.sinks.first?.settings as? HTTPSinkConfig else {
            Issue.record("central is an http sink")
            return
        }
        #expect(http.bearerToken?.value == "s3cret-token")
        #expect(http.bearerToken?.origin == "credential central-token")
        #expect(http.bearerToken?.description.contains("s3cret") == false)
    }

    @Test("a credential without $CREDENTIALS_DIRECTORY, a missing one and a bad name each name file, line, key and the fix")
    func credentialErrors() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let text = Self.central(secret: "hmac_secret: {credential: central-hmac}")
        var found = try Self.diagnostics(scratch, text, environment: [:])
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.file == scratch.path("etc/gatehouse.yaml"))
        #expect(found.first?.line == 6 && found.first?.key == "sinks[0].hmac_secret.credential", "\(found)")
        #expect(found.first?.message.contains("CREDENTIALS_DIRECTORY") == true, "\(found)")
        #expect(found.first?.message.contains("LoadCredential=central-hmac:") == true, "\(found)")

        found = try Self.diagnostics(scratch, text, environment: ["CREDENTIALS_DIRECTORY": scratch.path("credentials")])
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.line == 6 && found.first?.key == "sinks[0].hmac_secret.credential", "\(found)")
        #expect(found.first?.message.contains("cannot read credential 'central-hmac'") == true, "\(found)")
        #expect(found.first?.message.contains(scratch.path("credentials")) == true, "\(found)")

        found = try Self.diagnostics(
            scratch, text.replacingOccurrences(of: "central-hmac", with: "../etc/gatehouse.yaml"),
            environment: ["CREDENTIALS_DIRECTORY": scratch.path("credentials")])
        #expect(found.count == 1 && found.first?.message.contains("is not a credential name") == true, "\(found)")
    }
}
