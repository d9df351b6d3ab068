import GatehouseCore
import Logging

/// The registry of sink types: one line per `SinkTarget` case.
public enum SinkFactory {
    /// Builds the sink a config describes; throws when its files (TLS keys) cannot be loaded.
    public static func make(_ config: SinkConfig, logger: Logger) throws -> any Sink {
        switch config.target {
        case .file(let file): FileSink(name: config.name, config: file, logger: logger)
        case .http(let http): try HTTPSink(name: config.name, config: http, logger: logger)
        }
    }
}
