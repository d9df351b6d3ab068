import Foundation
import Testing

@testable import GatehouseCore

/// Core reads only the keys every sink shares and hands the rest to the reader registered for
/// `type:`: a sink type Core has never heard of works, with file:line errors for its own keys.
@Suite struct SinkReaderTests {
    struct StdoutSettings: SinkSettings {
        static let typeName = "stdout"
        var prefix: String
    }

    static let stdout = SinkReader(typeName: "stdout") { map, _ in
        map.string("prefix", required: true, expected: "text written before each line").map(StdoutSettings.init)
    }

    static func parse(_ sink: String) throws(ConfigError) -> GatehouseConfig {
        try ConfigLoader.parse("site: s\nsinks:\n\(sink)", file: "test.yaml", knownDrivers: [], sinkTypes: [Self.stdout])
    }

    @Test func aTypeCoreDoesNotKnowIsReadByItsOwnReader() throws {
        let config = try Self.parse("  - {name: console, type: stdout, prefix: '> ', batch_max_events: 7}\n")
        let sink = try #require(config.sinks.first)
        #expect(sink.name == "console" && sink.batchMaxEvents == 7 && sink.typeName == "stdout")
        #expect(sink.settings as? StdoutSettings == StdoutSettings(prefix: "> "))
    }

    @Test func itsOwnKeysGetFileLineAndKeyDiagnostics() {
        let error = #expect(throws: ConfigError.self) {
            try Self.parse("  - name: console\n    type: stdout\n    prefx: '> '\n")
        }
        let messages = error?.diagnostics.map { "\($0.file):\($0.line): \($0.key): \($0.message)" } ?? []
        #expect(messages.contains { $0.hasPrefix("test.yaml:") && $0.contains("sinks[0].prefix") && $0.contains("text written before each line") }, "\(messages)")
        #expect(messages.contains { $0.hasPrefix("test.yaml:5:") && $0.contains("sinks[0].prefx") }, "an unread key is flagged: \(messages)")
    }

    @Test func anUnknownTypeNamesTheRegisteredOnes() {
        let error = #expect(throws: ConfigError.self) { try Self.parse("  - {name: console, type: stdot}\n") }
        #expect(error?.diagnostics.first?.message.contains("expected one of stdout") == true)
        #expect(error?.diagnostics.first?.message.contains("did you mean 'stdout'") == true)
    }
}
