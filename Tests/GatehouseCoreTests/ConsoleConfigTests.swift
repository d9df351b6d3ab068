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
