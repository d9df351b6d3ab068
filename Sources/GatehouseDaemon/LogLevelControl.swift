import Logging
import Synchronization

/// The daemon's log level, changeable while it runs: SIGHUP applies a new `log_level` to every
/// logger already handed out, which swift-log's per-handler levels cannot do on their own.
public final class LogLevelControl: Sendable {
    private let rank: Atomic<Int>

    public init(_ level: Logger.Level) { rank = Atomic(Self.rank(of: level)) }

    public var level: Logger.Level {
        get { Logger.Level.allCases[rank.load(ordering: .relaxed)] }
        set { rank.store(Self.rank(of: newValue), ordering: .relaxed) }
    }

    private static func rank(of level: Logger.Level) -> Int { Logger.Level.allCases.firstIndex(of: level) ?? 2 }

    /// Bootstraps swift-log to standard error (systemd sends it to the journal) under this control.
    public func bootstrap() {
        LoggingSystem.bootstrap { label in
            ControlledLogHandler(inner: StreamLogHandler.standardError(label: label), control: self)
        }
    }
}

/// A handler whose level is the shared control's; a logger that sets its own level (listeners
/// kept at `warning`) only raises that floor.
struct ControlledLogHandler: LogHandler {
    var inner: StreamLogHandler
    let control: LogLevelControl
    private var floor: Logger.Level = .trace

    init(inner: StreamLogHandler, control: LogLevelControl) {
        self.inner = inner
        self.control = control
    }

    var logLevel: Logger.Level {
        get { max(floor, control.level) }
        set { floor = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) { inner.log(event: event) }
}
