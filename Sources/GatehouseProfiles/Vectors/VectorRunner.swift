import Foundation
import GatehouseCore

/// Runs profiles against their samples; shared by `gatehouse adapters test` and the test suite.
public enum VectorRunner {
    /// The verdict on one case; `detail` explains a failure with a diff.
    public struct Result: Sendable {
        public var profile: String
        public var caseName: String
        public var passed: Bool
        public var detail: String
    }

    /// The JSON an expected file holds for an outcome.
    public static func actual(_ outcome: ProfileOutcome, events: [MappedEvent]) -> JSONValue {
        var object: [String: JSONValue] = ["events": .array(events.map(\.json)), "reply": outcome.reply.json]
        if let key = outcome.deviceKey { object["deviceKey"] = .string(key) }
        return .object(object)
    }

    /// The JSON an expected file holds for a payload that goes to quarantine: the reason (an
    /// expected file may give a part of it) and the reply the device still gets.
    public static func quarantined(_ outcome: ProfileOutcome, reason: String) -> JSONValue {
        var object: [String: JSONValue] = ["error": .string(reason), "reply": outcome.reply.json]
        if let key = outcome.deviceKey { object["deviceKey"] = .string(key) }
        return .object(object)
    }

    public static func run(_ profile: Profile) -> [Result] {
        let cases = VectorCase.all(in: profile.directory)
        if cases.isEmpty {
            return [Result(profile: profile.name, caseName: "(samples)", passed: false, detail: "no samples under \(profile.directory)/samples (every profile ships its test vectors)")]
        }
        return cases.map { run($0, profile: profile) }
    }

    public static func run(_ vector: VectorCase, profile: Profile) -> Result {
        func result(_ passed: Bool, _ detail: String) -> Result {
            Result(profile: profile.name, caseName: vector.name, passed: passed, detail: detail)
        }
        let request: ProfileRequest
        let device: ProfileDevice
        do {
            (request, device) = try vector.request()
        } catch {
            return result(false, error.reason)
        }
        let outcome = profile.process(request, device: device)
        guard let expectedPath = vector.expected,
            let expectedText = FileManager.default.contents(atPath: expectedPath).map({ String(decoding: $0, as: UTF8.self) })
        else {
            let got: String = switch outcome.events {
            case .success(let events): actual(outcome, events: events).prettyText
            case .failure(let error): error.reason
            }
            return result(false, "no expected/\(vector.name).json or .err; the profile produced:\n\(got)")
        }
        if expectedPath.hasSuffix(".err") {
            let wanted = expectedText.trimmingCharacters(in: .whitespacesAndNewlines)
            switch outcome.events {
            case .success(let events):
                return result(false, "expected a mapping error containing '\(wanted)', but it mapped to:\n\(actual(outcome, events: events).prettyText)")
            case .failure(let error):
                return error.reason.contains(wanted) ? result(true, error.reason) : result(false, "expected an error containing '\(wanted)', got '\(error.reason)'")
            }
        }
        let expected: JSONValue
        do {
            expected = try JSONValue.parse(Array(expectedText.utf8))
        } catch {
            return result(false, "\(expectedPath) is not JSON: \(error)")
        }
        let got: JSONValue
        switch outcome.events {
        case .success(let events):
            got = actual(outcome, events: events)
        case .failure(let error):
            guard case .object(let wanted) = expected, case .string(let part)? = wanted["error"] else {
                return result(false, "expected events, but mapping failed: \(error.reason)")
            }
            // `error` holds a part of the reason, so that rewording the rest breaks no vector.
            got = quarantined(outcome, reason: error.reason.contains(part) ? part : error.reason)
        }
        if got == expected { return result(true, "") }
        return result(false, "mismatch (- expected, + actual):\n" + LineDiff.render(expected: expected.prettyText, actual: got.prettyText))
    }
}

extension VectorRunner {
    /// What a case produces now, as the text of its expected file (for `--write-missing`).
    public static func produce(_ vector: VectorCase, profile: Profile) -> (text: String, isError: Bool) {
        do {
            let (request, device) = try vector.request()
            let outcome = profile.process(request, device: device)
            switch outcome.events {
            case .success(let events): return (actual(outcome, events: events).prettyText, false)
            case .failure(let error): return (quarantined(outcome, reason: error.reason).prettyText, false)
            }
        } catch {
            return (error.reason, true)
        }
    }
}
