import Foundation
import GatehouseCore
@testable import GatehouseDaemon
import GatehouseTesting
import Testing

/// Issue 14 item 3: the console's config writes — a minimal edit, checked with the daemon's own
/// loader, atomic replace, `.bak` kept; nothing written when the result would not load.
@Suite("Config file writer")
struct ConfigFileWriterTests {
    static func site() throws -> (folder: URL, config: String, text: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-config-writer-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("adapters"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: GatehouseTesting.repositoryRoot.appendingPathComponent("adapters/zhenshi-lpr"), to: folder.appendingPathComponent("adapters/zhenshi-lpr"))
        let text = """
            # Lakeside's gateway. 东门 = east gate.
            site: lakeside
            state_directory: \(folder.path)/state
            adapters_directory: adapters
            devices:
              - id: gate-east    # 东门
                driver: profile
                type: lpr-camera
                direction: in
                options: {capture: true}   # until the profile is written
            sinks:
              - {name: local, type: file, path: \(folder.path)/events.ndjson}

            """
        let config = folder.appendingPathComponent("gatehouse.yaml").path
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        return (folder, config, text)
    }

    @Test("activating writes options.profile in place, keeps comments and a .bak, and the file loads")
    func activates() throws {
        let (folder, config, text) = try Self.site()
        defer { try? FileManager.default.removeItem(at: folder) }
        let writer = ConfigFileWriter(path: config)
        #expect(writer.problem == nil)
        let backup = try writer.activate(profile: "zhenshi-lpr", device: "gate-east")
        #expect(backup == config + ".bak")
        #expect(try String(contentsOfFile: backup, encoding: .utf8) == text)
        let written = try String(contentsOfFile: config, encoding: .utf8)
        #expect(written == text.replacingOccurrences(of: "options: {capture: true}", with: "options: {profile: zhenshi-lpr, capture: false}"))
        let loaded = try GatehouseDaemon.loadConfig(path: config)
        #expect(loaded.devices.first?.options["profile"] == "zhenshi-lpr")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains("console-") }
        #expect(leftovers.isEmpty)
    }

    @Test("a profile the loader cannot find is refused with the loader's finding, and nothing is written")
    func refusesWhatWouldNotLoad() throws {
        let (folder, config, text) = try Self.site()
        defer { try? FileManager.default.removeItem(at: folder) }
        let writer = ConfigFileWriter(path: config)
        let error = #expect(throws: ConfigFileWriter.Failure.self) { try writer.activate(profile: "zhenshi-lpx", device: "gate-east") }
        let message = error?.description ?? ""
        #expect(message.contains("options.profile") && message.contains("zhenshi-lpr") && message.contains(config + ":"), "\(message)")
        #expect(try String(contentsOfFile: config, encoding: .utf8) == text)
        #expect(!FileManager.default.fileExists(atPath: config + ".bak"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains("console-") }
        #expect(leftovers.isEmpty)
        #expect(throws: (any Error).self) { try writer.activate(profile: "zhenshi-lpr", device: "gate-west") }
    }

    @Test("activations at the same moment are made one after the other: neither edit is lost, and the file keeps its mode")
    func simultaneousActivations() async throws {
        let (folder, config, text) = try Self.site()
        defer { try? FileManager.default.removeItem(at: folder) }
        let twoGates = text.replacingOccurrences(
            of: "sinks:", with: "  - id: gate-west\n    driver: profile\n    type: lpr-camera\n    options: {capture: true}\nsinks:")
        let writer = ConfigFileWriter(path: config)
        for _ in 0..<10 {
            try twoGates.write(toFile: config, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: config)
            async let east: String = Task.detached { try writer.activate(profile: "zhenshi-lpr", device: "gate-east") }.value
            async let west: String = Task.detached { try writer.activate(profile: "zhenshi-lpr", device: "gate-west") }.value
            _ = try await (east, west)
            let loaded = try GatehouseDaemon.loadConfig(path: config)
            #expect(loaded.devices.map { $0.options["profile"] } == ["zhenshi-lpr", "zhenshi-lpr"])
            let mode = try FileManager.default.attributesOfItem(atPath: config)[.posixPermissions] as? NSNumber
            #expect(mode?.intValue == 0o600)
        }
    }

    @Test("a config file that is not there is reported as not writable")
    func missingFile() {
        let writer = ConfigFileWriter(path: "/nonexistent/gatehouse.yaml")
        #expect(writer.problem?.contains("not writable") == true)
    }
}
