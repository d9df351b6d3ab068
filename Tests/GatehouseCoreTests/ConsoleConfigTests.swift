import Foundation
import Testing

@testable import GatehouseCore
import GatehouseSinks

@Suite("Console config")
struct ConsoleConfigTests {
    static let sinks = "sinks:\n  - name: local\n    type: file\n    path: /tmp/gatehouse-test/events.ndjson\n"
    /// A hash of "s3cret" with small parameters (log2 N 10), valid in form.
    static let hash = "scrypt$10$8$1$\(Data(repeating: 7, count: 16).base64EncodedString())$\(Data(repeating: 9, count: 32).base64EncodedString())"

    func diagnostics(_ text: String) -> [ConfigDiagnostic] {
        do {
            _ = try ConfigLoader.parse(text, file: "test.yaml", knownDrivers: ["generic-json"], sinkTypes: SinkRegistry.readers, environment: [:])
            return []
        } catch {
            return error.diagnostics
        }
    }

    @Test("users with scrypt hashes on a loopback admin listener load")
    func loads() throws {
        let config = try ConfigLoader.parse(
            "site: s\nadmin:\n  console:\n    session_minutes: 10\n    users:\n      - {name: installer, password_hash: \"\(Self.hash)\"}\n\(Self.sinks)",
            file: "test.yaml", knownDrivers: [], sinkTypes: SinkRegistry.readers, environment: [:])
        #expect(config.admin.console.users.map(\.name) == ["installer"])
        #expect(config.admin.console.users.first?.passwordHash.description == Self.hash)
        #expect(config.admin.console.sessionMinutes == 10)
        #expect(config.admin.console.enabled)
    }

    @Test("console logins on an admin listener bound beyond loopback stop start-up with file, line and key")
    func refusedBeyondLoopback() {
        let found = diagnostics(
            "site: s\nadmin:\n  host: 0.0.0.0\n  console:\n    users:\n      - {name: installer, password_hash: \"\(Self.hash)\"}\n\(Self.sinks)")
        #expect(found.count == 1)
        #expect(found.first?.key == "admin.console.users")
        #expect(found.first?.line == 6)
        #expect(found.first?.message.contains("loopback") == true)
        #expect(found.first?.message.contains("0.0.0.0") == true)
        #expect(found.first?.message.contains("admin.tls") == true, "the message says what would be valid")
    }

    @Test("with admin.tls, console logins beyond loopback load and the session cookie is marked Secure")
    func tlsBeyondLoopback() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-admin-tls-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["admin.pem", "admin.key"] { try "PEM".write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        let config = try ConfigLoader.parse(
            """
            site: s
            admin:
              host: 0.0.0.0
              tls: {certificate: \(folder.path)/admin.pem, key: \(folder.path)/admin.key}
              console:
                users:
                  - {name: installer, password_hash: "\(Self.hash)"}
            \(Self.sinks)
            """, file: "test.yaml", knownDrivers: [], sinkTypes: SinkRegistry.readers, environment: [:])
        #expect(config.admin.tls == AdminTLSFiles(certificateFile: folder.path + "/admin.pem", keyFile: folder.path + "/admin.key"))
        #expect(config.admin.console.secureCookies)
        #expect(config.admin.console.users.count == 1)
        let plain = try ConfigLoader.parse("site: s\n\(Self.sinks)", file: "test.yaml", knownDrivers: [], sinkTypes: SinkRegistry.readers, environment: [:])
        #expect(plain.admin.tls == nil && !plain.admin.console.secureCookies)
    }

    @Test("admin.tls without its key, or with a file that cannot be read, is named with file, line and key")
    func tlsFiles() {
        let missingKey = diagnostics("site: s\nadmin:\n  tls:\n    certificate: /nonexistent/admin.pem\n\(Self.sinks)")
        #expect(missingKey.contains { $0.key == "admin.tls.key" && $0.line >= 3 }, "\(missingKey)")
        #expect(missingKey.contains { $0.key == "admin.tls.certificate" && $0.line == 4 && $0.message.contains("cannot read") }, "\(missingKey)")
        let unknown = diagnostics("site: s\nadmin:\n  tls: {certificate: /nonexistent/a.pem, key: /nonexistent/a.key, ca: x}\n\(Self.sinks)")
        #expect(unknown.contains { $0.key.contains("admin.tls") && $0.message.contains("ca") }, "\(unknown)")
    }

    @Test("a password hash not in the scrypt form is named with the form expected")
    func badHash() {
        let found = diagnostics("site: s\nadmin:\n  console:\n    users:\n      - {name: installer, password_hash: hunter2}\n\(Self.sinks)")
        #expect(found.count == 1)
        #expect(found.first?.key == "admin.console.users[0].password_hash")
        #expect(found.first?.line == 5)
        #expect(found.first?.message.contains("hash-password") == true)
    }
}
