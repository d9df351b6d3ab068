import Foundation
import GatehouseTesting
import Testing

/// `gatehouse check-config` on bad files of every kind: exit 1, and each error names the file,
/// the line, the key and what would be valid.
@Suite("check-config through the binary")
struct CheckConfigTests {
    static let valid = """
        site: test-site
        devices:
          - id: gate-1
            driver: generic-json
            type: lpr-camera
        sinks:
          - name: outbox
            type: file
            path: /tmp/gatehouse-check/events.ndjson
        """

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let yaml: String
        let line: Int
        let key: String
        let hint: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "YAML syntax", yaml: "site: x\ndevices: [\n  - id: a\n", line: 3, key: "(top level)", hint: "not valid YAML"),
        Case(name: "misspelt key", yaml: valid + "\nstauts_interval_seconds: 5\n", line: 10, key: "stauts_interval_seconds", hint: "did you mean 'status_interval_seconds'"),
        Case(name: "wrong type", yaml: valid + "\ningest:\n  port: eighty\n", line: 11, key: "ingest.port", hint: "expected a whole number from 0 to 65535"),
        Case(name: "out of range", yaml: valid + "\nadmin:\n  port: 70000\n", line: 11, key: "admin.port", hint: "expected 0 to 65535"),
        Case(name: "unknown driver", yaml: valid.replacingOccurrences(of: "generic-json", with: "generic-jsn"), line: 4, key: "devices[0].driver", hint: "did you mean 'generic-json'"),
        Case(name: "bad time zone", yaml: valid.replacingOccurrences(of: "type: lpr-camera", with: "type: lpr-camera\n    time_zone: Asia/Shangai"), line: 6, key: "devices[0].time_zone", hint: "IANA zone"),
        Case(name: "bad device type", yaml: valid.replacingOccurrences(of: "type: lpr-camera", with: "type: lpr"), line: 5, key: "devices[0].type", hint: "expected one of barrier, lpr-camera"),
        Case(name: "missing secret", yaml: valid.replacingOccurrences(of: "type: lpr-camera", with: "type: lpr-camera\n    auth: {token: {env: GATEHOUSE_TEST_UNSET_TOKEN}}"), line: 6, key: "devices[0].auth.token.env", hint: "GATEHOUSE_TEST_UNSET_TOKEN is not set"),
        Case(name: "bad CIDR", yaml: valid + "\ningest:\n  allow_from: [10.0.0.0/33]\n", line: 11, key: "ingest.allow_from[0]", hint: "CIDR"),
        Case(name: "missing site", yaml: valid.replacingOccurrences(of: "site: test-site\n", with: ""), line: 1, key: "site", hint: "missing required key"),
        Case(name: "no sinks", yaml: "site: s\n", line: 1, key: "sinks", hint: "at least one sink"),
        Case(name: "bad sink url", yaml: valid + "\n  - name: central\n    type: http\n    url: ftp://central\n", line: 12, key: "sinks[1].url", hint: "http:// or https://"),
        Case(name: "hash without secret", yaml: valid + "\nprivacy:\n  plate: hash\n", line: 11, key: "privacy.hash_secret", hint: "required when any subject type uses 'hash'"),
        Case(name: "ingest and admin on one port", yaml: valid + "\ningest:\n  port: 9000\nadmin:\n  port: 9000\n", line: 13, key: "admin.port", hint: "is also the ingest listener's address (ingest.port, line 11)"),
        Case(name: "duplicate device", yaml: valid.replacingOccurrences(of: "sinks:", with: "  - id: gate-1\n    driver: generic-json\n    type: camera\nsinks:"), line: 6, key: "devices[1].id", hint: "duplicate device id"),
    ]

    @Test("a bad file is refused with file, line, key and what is valid", arguments: cases)
    func refuses(_ c: Case) async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("check-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try c.yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try await DaemonProcess.runTool(["check-config", path])
        #expect(result.status == 1, "exit \(result.status): \(result.stderr)")
        #expect(result.stderr.contains("\(path):\(c.line):"), "no file:line \(c.line) in: \(result.stderr)")
        #expect(result.stderr.contains("\(c.key):"), "key \(c.key) not named in: \(result.stderr)")
        #expect(result.stderr.contains(c.hint), "hint '\(c.hint)' missing in: \(result.stderr)")
    }

    @Test("a good file passes; a missing file fails clearly")
    func accepts() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("check-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("check-state-\(UUID().uuidString)").path
        try (Self.valid + "\nstate_directory: \(state)\n").write(toFile: path, atomically: true, encoding: .utf8)
        let ok = try await DaemonProcess.runTool(["check-config", path])
        #expect(ok.status == 0 && ok.stdout.contains("OK"), "\(ok)")
        // gate-1 has neither auth nor allow_from: a warning, printed, that does not fail the check.
        #expect(ok.stdout.contains("1 warning") && ok.stderr.contains("\(path):3:5: devices[0]: warning: device 'gate-1' has neither auth nor allow_from"), "\(ok)")
        let missing = try await DaemonProcess.runTool(["check-config", path + ".nope"])
        #expect(missing.status == 1 && missing.stderr.contains("cannot read the file"), "\(missing)")
        // `run` refuses to start on the same errors, with exit status 2.
        try (Self.valid + "\nbogus: 1\n").write(toFile: path, atomically: true, encoding: .utf8)
        let run = try await DaemonProcess.runTool(["run", "--config", path])
        #expect(run.status == 2 && run.stderr.contains("bogus"), "\(run)")
    }

    @Test("a state directory that can be neither written nor created is refused with its line; an allow-list silences the warning")
    func stateDirectory() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("check-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A file where a parent directory should be: not even root can create the directory.
        try "not a directory".write(toFile: directory + "/file", atomically: true, encoding: .utf8)
        let path = directory + "/gatehouse.yaml"
        let guarded = Self.valid.replacingOccurrences(of: "type: lpr-camera", with: "type: lpr-camera\n    allow_from: [10.0.0.7]")
        try (guarded + "\nstate_directory: \(directory)/file/state\n").write(toFile: path, atomically: true, encoding: .utf8)
        let refused = try await DaemonProcess.runTool(["check-config", path])
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stderr.contains("\(path):11:1: state_directory: '\(directory)/file/state' cannot be created: '\(directory)/file' is a file"), "\(refused)")
        #expect(!refused.stderr.contains("warning"), "a device with allow_from needs no warning: \(refused.stderr)")
        // `run` refuses on the same grounds, before opening anything.
        let run = try await DaemonProcess.runTool(["run", "--config", path])
        #expect(run.status == 2 && run.stderr.contains("state_directory"), "\(run)")
    }
}
