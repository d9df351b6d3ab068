import Foundation
import GatehouseIngest
import GatehouseSinks
import GatehouseTesting
import Testing

/// Walks every registered driver and sink type: each has a README in its folder with an example
/// config, and `gatehouse check-config` accepts that example. A new registry line without these fails here.
@Suite("registry: every driver and sink documented with an accepted example")
struct RegistryMetaTests {
    static let repository = repositoryRoot

    /// Every README.md one level below `folder` (one folder per driver or sink), with its text.
    static func readmes(under folder: String) -> [(path: String, text: String)] {
        let base = repository.appendingPathComponent(folder)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: base.path)) ?? []
        return names.sorted().compactMap { name in
            let path = base.appendingPathComponent(name).appendingPathComponent("README.md").path
            return (try? String(contentsOfFile: path, encoding: .utf8)).map { (path, $0) }
        }
    }

    /// The fenced ```yaml blocks of a markdown text.
    static func yamlBlocks(_ markdown: String) -> [String] {
        var blocks: [String] = []
        var current: [Substring]?
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line.hasPrefix("```yaml") {
                current = []
            } else if let lines = current, line.hasPrefix("```") {
                blocks.append(lines.joined(separator: "\n"))
                current = nil
            } else {
                current?.append(line)
            }
        }
        return blocks
    }

    /// The README whose example selects `selector` (e.g. `driver: uhppote`), and that example.
    static func example(_ selector: String, under folder: String) -> (readme: String, yaml: String)? {
        for readme in readmes(under: folder) {
            if let block = yamlBlocks(readme.text).first(where: { $0.contains(selector) }) { return (readme.path, block) }
        }
        return nil
    }

    /// Makes a README snippet a whole config file in `directory`: a site, a sink if it has none,
    /// `devices:` around a bare device list; secret and TLS files it names are created with a
    /// placeholder, and `{env: NAME}` secrets are given a value.
    static func completeConfig(_ snippet: String, directory: String) throws -> (path: String, environment: [String: String]) {
        var yaml = snippet
        if yaml.hasPrefix("- ") {
            yaml = "devices:\n" + yaml.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
        }
        yaml = yaml.replacingOccurrences(of: "adapters_directory: adapters", with: "adapters_directory: \(repository.path)/adapters")
        let files = try NSRegularExpression(pattern: "/etc/gatehouse/[A-Za-z0-9._-]+")
        for match in files.matches(in: yaml, range: NSRange(yaml.startIndex..., in: yaml)).reversed() {
            guard let range = Range(match.range, in: yaml) else { continue }
            let local = directory + "/" + (String(yaml[range]) as NSString).lastPathComponent
            try "example-placeholder\n".write(toFile: local, atomically: true, encoding: .utf8)
            yaml.replaceSubrange(range, with: local)
        }
        var environment: [String: String] = [:]
        let envs = try NSRegularExpression(pattern: "\\{env: ([A-Z0-9_]+)\\}")
        for match in envs.matches(in: yaml, range: NSRange(yaml.startIndex..., in: yaml)) {
            if let range = Range(match.range(at: 1), in: yaml) { environment[String(yaml[range])] = "example-secret-value" }
        }
        var text = "site: registry-meta\nstate_directory: \(directory)/state\n" + yaml + "\n"
        if !yaml.contains("sinks:") {
            text += "sinks:\n  - {name: outbox, type: file, path: \(directory)/outbox/events.ndjson}\n"
        }
        let path = directory + "/gatehouse.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return (path, environment)
    }

    static func checkExample(_ selector: String, under folder: String) async throws {
        let found = try #require(
            example(selector, under: folder), "no README.md in a folder under \(folder) with a ```yaml example containing '\(selector)'")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("registry-meta-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = try completeConfig(found.yaml, directory: directory)
        let result = try await DaemonProcess.runTool(["check-config", config.path], environment: config.environment)
        #expect(result.status == 0, "the example in \(found.readme) is refused:\n\(result.stderr)\n\((try? String(contentsOfFile: config.path, encoding: .utf8)) ?? "")")
    }

    @Test("driver README with an example check-config accepts", arguments: DriverRegistry.names.sorted())
    func driver(_ name: String) async throws {
        try await Self.checkExample("driver: \(name)", under: "Sources/GatehouseIngest/Drivers")
    }

    @Test("sink README with an example check-config accepts", arguments: SinkRegistry.all.map(\.name))
    func sink(_ name: String) async throws {
        try await Self.checkExample("type: \(name)", under: "Sources/GatehouseSinks/Sinks")
    }
}
