import Foundation
import GatehouseSinks
import Testing

@testable import GatehouseCore

/// A device's `options:` read against its driver's declarations by the shared YAML readers.
@Suite("Driver options in the config")
struct DriverOptionsConfigTests {
    /// A driver declaring one option of each kind.
    static let declared: [String: DriverOptionSet] = [
        "door-x": DriverOptionSet([
            OptionDeclaration("set_time", .bool, default: .bool(false), "set the clock"),
            OptionDeclaration("retries", .int(0...10), default: .int(1), "retries"),
            OptionDeclaration("poll_interval_seconds", .double(0.05...3600), default: .double(5), "poll interval"),
            OptionDeclaration("buffer", .size(minimum: 1024), default: .size(65_536), "buffer size"),
            OptionDeclaration("mode", .choice(["push", "poll"]), default: .string("push"), "who starts"),
            OptionDeclaration("set_listener", .hostPort, "listener"),
            OptionDeclaration("label", .string, "free text"),
            OptionDeclaration("kinds", .kindTable, "code: kind rows"),
        ]),
        "lazy": DriverOptionSet(
            [OptionDeclaration("kind", .string, "picks the rest")],
            dependent: { context in
                context.fixed.string("kind") == "a" ? [OptionDeclaration("colour", .choice(["red", "blue"]), default: .string("red"), "a's")] : nil
            }),
    ]

    /// `options` lines go under a door-x device at line 8 onwards.
    static func text(driver: String = "door-x", _ options: String) -> String {
        """
        site: t
        state_directory: /tmp/gatehouse-test
        devices:
          - id: d1
            driver: \(driver)
            type: door-controller
            options:
        \(options.split(separator: "\n", omittingEmptySubsequences: false).map { "      " + $0 }.joined(separator: "\n"))
        sinks:
          - {name: local, type: file, path: /tmp/gatehouse-test/events.ndjson}
        """
    }

    static func parse(_ text: String) throws(ConfigError) -> GatehouseConfig {
        try ConfigLoader.parse(text, file: "test.yaml", knownDrivers: ["generic-json", "door-x", "lazy"], driverOptions: declared, sinkTypes: SinkRegistry.readers)
    }

    static func diagnostics(_ text: String) -> [ConfigDiagnostic] {
        do {
            _ = try parse(text)
            return []
        } catch {
            return error.diagnostics
        }
    }

    /// Exactly one diagnostic, at file:line:column for `key`, containing every fragment.
    static func expectOne(
        _ options: String, line: Int, column: Int, key: String, _ fragments: String..., sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let found = diagnostics(text(options))
        #expect(found.count == 1, "\(found)", sourceLocation: sourceLocation)
        guard let diagnostic = found.first else { return }
        #expect(diagnostic.description.hasPrefix("test.yaml:\(line):\(column): \(key): "), "\(diagnostic)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(diagnostic.message.contains(fragment), "'\(fragment)' not in: \(diagnostic.message)", sourceLocation: sourceLocation)
        }
    }

    @Test("a kind table arrives as rows in the order written; each bad row is named at its own line")
    func kindTable() throws {
        let config = try Self.parse(Self.text("kinds:\n  VideoMotion: camera.intrusion\n  \"tns1:RuleEngine/X\": alarm.input"))
        let rows = try #require(config.devices.first?.options).kindTable("kinds")
        #expect(rows == [KindTableRow("VideoMotion", .cameraIntrusion), KindTableRow("tns1:RuleEngine/X", .alarmInput)])
        #expect(try #require(Self.parse(Self.text("label: x")).devices.first).options.kindTable("kinds").isEmpty)
        // Lines 8 and 9: the option, then its rows.
        Self.expectOne("kinds:\n  A: alarm.input\n  B: camera.intrusin", line: 10, column: 12, key: "devices[0].options.kinds.B", "'camera.intrusin' is not an event kind", "did you mean 'camera.intrusion'?")
        Self.expectOne("kinds: \"A=alarm.input\"", line: 8, column: 14, key: "devices[0].options.kinds", "expected a mapping of code: kind")
        Self.expectOne("kinds:\n  A: [alarm.input]", line: 9, column: 12, key: "devices[0].options.kinds.A", "a list is not an event kind")
    }

    @Test("valid options arrive typed, defaults behind the ones not written")
    func typed() throws {
        let config = try Self.parse(Self.text("set_time: yes\nretries: 3\npoll_interval_seconds: 0.5\nbuffer: 1MiB\nmode: Poll\nset_listener: 10.0.0.1:60001\nlabel: x"))
        let options = try #require(config.devices.first?.options)
        #expect(options.bool("set_time") == true)
        #expect(options.int("retries") == 3)
        #expect(options.double("poll_interval_seconds") == 0.5)
        #expect(options.size("buffer") == 1_048_576)
        #expect(options.string("mode") == "poll")
        #expect(options.hostPort("set_listener")?.host == "10.0.0.1" && options.hostPort("set_listener")?.port == 60001)
        #expect(options["label"] == "x")
        let bare = try Self.parse(Self.text("label: y"))
        let defaults = try #require(bare.devices.first?.options)
        #expect(defaults.bool("set_time") == false && defaults.int("retries") == 1 && defaults.size("buffer") == 65_536)
        #expect(defaults.keys == ["label"] && defaults["retries"] == nil)
    }

    @Test("a bad boolean word is refused with the same words as every other key")
    func badBool() {
        Self.expectOne("set_time: maybe", line: 8, column: 17, key: "devices[0].options.set_time", "expected true or false", "'maybe'")
    }

    @Test("an out-of-range number names the range")
    func outOfRange() {
        Self.expectOne("retries: 11", line: 8, column: 16, key: "devices[0].options.retries", "11 is out of range (expected 0 to 10)")
        Self.expectOne(
            "poll_interval_seconds: 0", line: 8, column: 30, key: "devices[0].options.poll_interval_seconds",
            "0 is out of range (expected 0.05 to 3600)")
    }

    @Test("an unknown option names the closest valid one and lists them all")
    func unknownOption() {
        Self.expectOne(
            "retires: 3", line: 8, column: 7, key: "devices[0].options.retires", "unknown option — did you mean 'retries'?",
            "valid options for driver door-x: buffer, kinds, label, mode, poll_interval_seconds, retries, set_listener, set_time")
    }

    @Test("a bad size says which units are valid")
    func badSize() {
        Self.expectOne("buffer: 2 gb", line: 8, column: 15, key: "devices[0].options.buffer", "expected a size in bytes", "MiB")
        Self.expectOne("buffer: 100", line: 8, column: 15, key: "devices[0].options.buffer", "100 bytes is too small")
    }

    @Test("choices and host:port name what would be valid")
    func choiceAndHostPort() {
        Self.expectOne("mode: pull", line: 8, column: 13, key: "devices[0].options.mode", "'pull' is not valid (expected one of push, poll)", "did you mean 'poll'?")
        Self.expectOne("set_listener: 10.0.0.1", line: 8, column: 21, key: "devices[0].options.set_listener", "is not host:port")
    }

    @Test("a driver without declarations takes no options")
    func noOptions() {
        let found = Self.diagnostics(Self.text(driver: "generic-json", "anything: 1"))
        #expect(found.count == 1 && found.first?.line == 8 && found.first?.key == "devices[0].options.anything", "\(found)")
        #expect(found.first?.message.contains("driver generic-json takes no options") == true, "\(found)")
    }

    @Test("dependent options are declared by a fixed one; undecidable ones are kept for the driver to judge")
    func dependent() throws {
        let found = Self.diagnostics(Self.text(driver: "lazy", "kind: a\ncolour: green"))
        #expect(found.count == 1 && found.first?.line == 9 && found.first?.key == "devices[0].options.colour", "\(found)")
        #expect(found.first?.message.contains("expected one of red, blue") == true, "\(found)")
        let config = try Self.parse(Self.text(driver: "lazy", "kind: b\ncolour: green"))
        #expect(config.devices.first?.options["colour"] == "green")
    }
}

extension DriverOptionsConfigTests {
    @Test("options written as quoted text, as configs did when options were text, keep their meaning")
    func quotedNumbersAndBooleans() throws {
        let config = try Self.parse(Self.text(#"set_time: "true"\#nretries: "3"\#npoll_interval_seconds: '0.5'\#nlabel: "7""#))
        let options = try #require(config.devices.first?.options)
        #expect(options.bool("set_time") == true && options.int("retries") == 3 && options.double("poll_interval_seconds") == 0.5)
        #expect(options.string("label") == "7")
        Self.expectOne(#"retries: "11""#, line: 8, column: 16, key: "devices[0].options.retries", "11 is out of range")
    }
}
