import Logging
import Synchronization

/// Keeps log lines in memory so a test can assert what an operator would read.
public struct CapturingLogHandler: LogHandler {
    public struct Line: Sendable {
        public var level: Logger.Level
        public var message: String
        public var metadata: [String: String]
    }

    public final class Store: Sendable {
        private let lines = Mutex<[Line]>([])
        func append(_ line: Line) { lines.withLock { $0.append(line) } }
        public var all: [Line] { lines.withLock { $0 } }
    }

    let store: Store
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .debug

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        for (key, value) in event.metadata ?? [:] { merged[key] = value }
        store.append(Line(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" }))
    }

    public static func logger() -> (Logger, Store) {
        let store = Store()
        return (Logger(label: "capture", factory: { _ in CapturingLogHandler(store: store) }), store)
    }
}
