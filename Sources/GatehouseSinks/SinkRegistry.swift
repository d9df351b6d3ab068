import GatehouseCore
import Logging

/// A sink type the registry can list: its settings read their own config section, and the
/// sink is built from them.
package protocol RegisteredSink: Sink {
    associatedtype Settings: SinkSettings
    /// Reads the type's keys from its `sinks:` item; reports problems (file, line, key) to the map's log.
    static func readSettings(_ map: YAMLMapping, environment: [String: String]) -> Settings?
    init(name: String, config: Settings, logger: Logger) throws
}

/// One registered sink type: how to read its config and how to build it.
public struct SinkType: Sendable {
    public let reader: SinkReader
    private let build: @Sendable (SinkConfig, Logger) throws -> (any Sink)?

    public var name: String { reader.typeName }

    package init<S: RegisteredSink>(_ sink: S.Type) {
        reader = SinkReader(typeName: S.Settings.typeName) { map, environment in S.readSettings(map, environment: environment) }
        build = { config, logger in
            guard let settings = config.settings as? S.Settings else { return nil }
            return try S(name: config.name, config: settings, logger: logger)
        }
    }

    func make(_ config: SinkConfig, logger: Logger) throws -> (any Sink)? { try build(config, logger) }
}

/// Every sink type this build carries, one line each. Adding a sink type is a folder under
/// `Sinks/` and a line here; Core and the daemon need no change. The list holds types (how to
/// read a config section and build a sink), never sink instances: every daemon run builds its
/// own sinks with `make`, so no connection pool or open file outlives the run that made it.
public enum SinkRegistry {
    public static let all: [SinkType] = [
        SinkType(FileSink.self),
        SinkType(HTTPSink.self),
        SinkType(MQTTSink.self),
        SinkType(PostgresSink.self),
    ]

    /// What `ConfigLoader` needs to read every sink type's section.
    public static var readers: [SinkReader] { all.map(\.reader) }

    public static func type(named name: String) -> SinkType? { all.first { $0.name == name } }

    /// Builds the sink a config describes; throws when its files (TLS keys) cannot be loaded.
    public static func make(_ config: SinkConfig, logger: Logger) throws -> any Sink {
        guard let sink = try type(named: config.typeName)?.make(config, logger: logger) else {
            throw UnknownSinkType(name: config.typeName)
        }
        return sink
    }
}

/// A `SinkConfig` whose settings belong to no registered type (only a program can build one).
public struct UnknownSinkType: Error, CustomStringConvertible {
    public let name: String
    public var description: String { "sink type '\(name)' is not registered in this build" }
}
