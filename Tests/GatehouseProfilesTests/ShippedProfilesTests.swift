import Foundation
import GatehouseCore
import GatehouseTesting
import Testing

@testable import GatehouseProfiles

/// Every profile under adapters/ loads, documents itself and passes its own test vectors:
/// the same runner as `gatehouse adapters test`.
@Suite("Shipped profiles")
struct ShippedProfilesTests {
    static let adapters = shippedAdapters

    static let names = ["zhenshi-lpr", "hikvision-anpr", "dahua-itc", "legacy-parking-gbk"]

    @Test("every folder under adapters/ loads")
    func allLoad() {
        let set = ProfileSet.load(directory: Self.adapters)
        #expect(set.failures.isEmpty, "\(set.failures.values.map(\.description).joined(separator: "\n"))")
        #expect(Set(Self.names).isSubset(of: Set(set.profiles.keys)))
    }

    @Test("profile passes its test vectors", arguments: names)
    func vectors(_ name: String) throws {
        let profile = try ProfileLoader.load(directory: Self.adapters + "/" + name)
        let results = VectorRunner.run(profile)
        for result in results where !result.passed {
            Issue.record("\(name)/\(result.caseName): \(result.detail)")
        }
        #expect(results.count >= 5, "every shipped profile has at least five samples")
    }

    @Test("profile has a README, expected output for every sample, and an error case", arguments: names)
    func documented(_ name: String) {
        let folder = Self.adapters + "/" + name
        #expect(FileManager.default.fileExists(atPath: folder + "/README.md"))
        let cases = VectorCase.all(in: folder)
        #expect(cases.allSatisfy { $0.expected != nil }, "samples without expected output: \(cases.filter { $0.expected == nil }.map(\.name))")
        #expect(cases.contains { Self.expectsQuarantine($0) }, "a malformed payload case")
        #expect(cases.contains { $0.name.contains("unplated") }, "an unplated vehicle case")
        // `.err` checks only the reason; every shipped case also checks the reply the device gets.
        #expect(cases.allSatisfy { $0.expected?.hasSuffix(".json") == true }, "cases whose reply is not checked: \(cases.filter { $0.expected?.hasSuffix(".json") != true }.map(\.name))")
    }

    /// Whether a case's expected file says the payload goes to quarantine (`error` or `.err`).
    static func expectsQuarantine(_ vector: VectorCase) -> Bool {
        guard let path = vector.expected else { return false }
        if path.hasSuffix(".err") { return true }
        guard let data = FileManager.default.contents(atPath: path), case .object(let object)? = try? JSONValue.parse(Array(data)) else { return false }
        return object["error"] != nil
    }

    @Test("every shipped profile fills point from the vendor's lane or channel", arguments: names)
    func fillsPoint(_ name: String) throws {
        let profile = try ProfileLoader.load(directory: Self.adapters + "/" + name)
        #expect(profile.event.point != nil)
        let points = VectorCase.all(in: profile.directory).compactMap { vector -> String? in
            guard let path = vector.expected, let data = FileManager.default.contents(atPath: path),
                case .object(let object)? = try? JSONValue.parse(Array(data)), case .array(let events)? = object["events"]
            else { return nil }
            return events.compactMap { event -> String? in
                if case .object(let fields) = event, case .string(let point)? = fields["point"] { return point }
                return nil
            }.first
        }
        #expect(!points.isEmpty, "a vector of \(name) shows the point it maps")
    }

    @Test("no shipped reply opens a barrier unless the device is configured to", arguments: names)
    func repliesNeverOpenByDefault(_ name: String) throws {
        let profile = try ProfileLoader.load(directory: Self.adapters + "/" + name)
        for vector in VectorCase.all(in: profile.directory) {
            let (request, device) = try vector.request()
            var observing = device
            observing.options = observing.options.filter { $0.key != "barrier" }
            for (key, option) in profile.options where observing.options[key] == nil { observing.options[key] = option.defaultValue }
            let reply = profile.process(request, device: observing).reply
            #expect(reply.status == 200, "\(name)/\(vector.name)")
            #expect(!reply.body.contains("\"info\":\"ok\""), "\(name)/\(vector.name): \(reply.body)")
        }
    }

    @Test("the Zhenshi default reply never opens the barrier")
    func zhenshiNeverOpensByDefault() throws {
        let profile = try ProfileLoader.load(directory: Self.adapters + "/zhenshi-lpr")
        let body = try #require(FileManager.default.contents(atPath: Self.adapters + "/zhenshi-lpr/samples/camera-decides.json"))
        let device = ProfileDevice(id: "cam", serial: "a3c9e105-7d214b60", timeZone: .gmt, options: ["barrier": "never"])
        let outcome = profile.process(ProfileRequest(body: Array(body), contentType: "application/json"), device: device)
        #expect(outcome.reply.body.contains("\"info\":\"no\""))
        let camera = profile.process(
            ProfileRequest(body: Array(body), contentType: "application/json"),
            device: ProfileDevice(id: "cam", timeZone: .gmt, options: ["barrier": "camera"]))
        #expect(camera.reply.body.contains("\"info\":\"ok\""))
    }
}
