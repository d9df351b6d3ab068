import Foundation
import GatehouseCore
import Testing

@testable import GatehouseProfiles

/// The expected-file form for quarantined payloads: the reason (a part of it) and the reply.
@Suite("Vector runner")
struct VectorRunnerTests {
    /// A scratch profile folder holding `EngineTests.minimal` and one sample that does not map (its id is too long for a dedup key).
    static func folder() throws -> (directory: String, profile: Profile) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-vectors-\(UUID().uuidString.prefix(8))/test-profile").path
        try FileManager.default.createDirectory(atPath: directory + "/samples", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory + "/expected", withIntermediateDirectories: true)
        try EngineTests.minimal.write(toFile: directory + "/profile.yaml", atomically: true, encoding: .utf8)
        try "{\"Id\":\"\(String(repeating: "7", count: 250))\",\"Time\":\"20250314081209\"}".write(toFile: directory + "/samples/bad-id.json", atomically: true, encoding: .utf8)
        return (directory, try ProfileLoader.load(directory: directory))
    }

    static func verdict(_ expected: String, in directory: String, profile: Profile) throws -> VectorRunner.Result {
        try expected.write(toFile: directory + "/expected/bad-id.json", atomically: true, encoding: .utf8)
        let vector = try #require(VectorCase.all(in: directory).first)
        return VectorRunner.run(vector, profile: profile)
    }

    @Test("a quarantined case passes with a part of the reason and the right reply, fails on a wrong reply")
    func quarantinedCaseChecksTheReply() throws {
        let (directory, profile) = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent) }
        let reply = #""reply": {"status": 200, "contentType": "application/json", "body": {"ok": false}}"#
        let good = try Self.verdict(#"{"error": "is too long", \#(reply)}"#, in: directory, profile: profile)
        #expect(good.passed, "\(good.detail)")

        let wrongReply = try Self.verdict(#"{"error": "is too long", "reply": {"status": 200, "contentType": "application/json", "body": {"ok": true}}}"#, in: directory, profile: profile)
        #expect(!wrongReply.passed)
        #expect(wrongReply.detail.contains("mismatch"), "\(wrongReply.detail)")

        let wrongReason = try Self.verdict(#"{"error": "malformed JSON", \#(reply)}"#, in: directory, profile: profile)
        #expect(!wrongReason.passed)
        #expect(wrongReason.detail.contains("dedup key of 250 bytes is too long"), "the diff shows the actual reason: \(wrongReason.detail)")

        let expectedEvents = try Self.verdict(#"{"events": [], \#(reply)}"#, in: directory, profile: profile)
        #expect(!expectedEvents.passed)
    }

    @Test("--write-missing writes the quarantine form, which then passes")
    func producedFormPasses() throws {
        let (directory, profile) = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent) }
        let vector = try #require(VectorCase.all(in: directory).first)
        let produced = VectorRunner.produce(vector, profile: profile)
        #expect(!produced.isError)
        let json = try JSONValue.parse(Array(produced.text.utf8))
        guard case .object(let object) = json, case .string(let reason)? = object["error"] else {
            Issue.record("no error in \(produced.text)")
            return
        }
        #expect(reason.contains("dedup key of 250 bytes is too long"))
        #expect(object["events"] == nil)
        let verdict = try Self.verdict(produced.text, in: directory, profile: profile)
        #expect(verdict.passed, "\(verdict.detail)")
    }
}
