import Foundation
import GatehouseCore
import GatehouseQueue
import Logging
import NIOCore
import NIOSSL
import PostgresNIO

/// Writes each batch into a month-partitioned PostgreSQL table in one transaction per connection; a
/// batch is delivered only when the server answered every COMMIT. A batch goes by `COPY … FROM STDIN`
/// straight into the table (the cheapest insert the server has); one that meets an id already
/// stored goes again by `INSERT … ON CONFLICT DO NOTHING`, so a batch whose COMMIT answer was
/// lost, or a replay, is safe to send again and never duplicates.
///
/// `connections` connections (one by default), opened on the first send and after any failure; a
/// batch is cut into one contiguous part per connection, each its own transaction, and is delivered
/// only when every part committed. The runner's backoff (jittered, on its injected clock) paces
/// reconnection, so this type never sleeps or retries by itself.
public actor PostgresSink: RegisteredSink {
    public nonisolated let name: String
    private let config: PostgresSinkConfig
    private let schema: PostgresSchema
    private let tls: TLSConfiguration?
    private let logger: Logger
    /// PostgresNIO's own logging, kept at warning: at debug it would print queries and their values.
    private let libraryLogger: Logger
    /// Open connections, opened on the first send and after any failure; as many as a batch uses.
    private var connections: [PostgresConnection] = []
    private var connectionCount = 0
    /// The UTC month whose partitions were last ensured; a new month ensures them again.
    private var partitionedMonth: String?
    /// Parts (whole batches with one connection) delivered by COPY and by the `INSERT … ON
    /// CONFLICT` fallback, for the tests.
    private(set) var copiedBatches = 0
    private(set) var insertedBatches = 0

    /// Loads the TLS files named in `config`; throws when one cannot be read or parsed. Does not connect.
    public init(name: String, config: PostgresSinkConfig, logger: Logger) throws {
        self.name = name
        self.config = config
        schema = PostgresSchema(table: config.table, partitionsAhead: config.partitionsAhead)
        var logger = logger
        logger[metadataKey: "sink.name"] = "\(name)"
        self.logger = logger
        var libraryLogger = logger
        libraryLogger.logLevel = max(logger.logLevel, .warning)
        self.libraryLogger = libraryLogger
        if config.usesTLS {
            do {
                tls = try config.tlsFiles.clientConfiguration()
            } catch {
                throw PostgresSinkError(error.description)
            }
        } else {
            tls = nil
        }
    }

    public func send(_ batch: SinkBatch) async -> DeliveryResult {
        let bodies = batch.events.map(\.body)
        let open: [PostgresConnection]
        do {
            open = try await ready(max(1, min(config.connections, bodies.count)))
        } catch {
            return await failed([(error: error, connection: nil)])
        }
        // Contiguous parts, one per connection, sent and committed side by side: the server works
        // on each in its own backend (docs/benchmarks.md, "PostgreSQL sink").
        let parts = Self.split(bodies, into: open.count)
        let table = schema.table
        let insertSQL = schema.insertSQL
        let logger = libraryLogger
        let outcomes = await withTaskGroup(of: (Int, PartOutcome).self) { group in
            for (index, part) in parts.enumerated() {
                let connection = open[index]
                group.addTask {
                    (index, await Self.deliver(part, on: connection, table: table, insertSQL: insertSQL, logger: logger))
                }
            }
            var outcomes = [PartOutcome](repeating: .inserted, count: parts.count)
            for await (index, outcome) in group { outcomes[index] = outcome }
            return outcomes
        }
        var failures: [(error: any Error, connection: PostgresConnection?)] = []
        for (index, outcome) in outcomes.enumerated() {
            switch outcome {
            case .copied: copiedBatches += 1
            case .inserted: insertedBatches += 1
            case .failed(let error): failures.append((error: error, connection: open[index]))
            }
        }
        // The cursor may move only when every part committed: a part that failed (even with the
        // others committed) fails the batch, and its resend meets the committed rows by the key.
        guard failures.isEmpty else { return await failed(failures) }
        return .delivered
    }

    enum PartOutcome: Sendable {
        case copied, inserted
        case failed(any Error)
    }

    /// `bodies` cut into `count` contiguous parts of nearly equal size (none empty).
    static func split(_ bodies: [Data], into count: Int) -> [[Data]] {
        let count = max(1, min(count, bodies.count))
        return (0..<count).map { part in
            Array(bodies[(bodies.count * part / count)..<(bodies.count * (part + 1) / count)])
        }
    }

    /// One part in one transaction on `connection`: by COPY, or by the insert when COPY cannot
    /// carry it or meets an id already stored.
    private static func deliver(
        _ bodies: [Data], on connection: PostgresConnection, table: String, insertSQL: String, logger: Logger
    ) async -> PartOutcome {
        var rows = PostgresCopyRows(bodies)
        do {
            try await run("BEGIN", on: connection, logger: logger)
            try await connection.copyFrom(table: table, columns: PostgresCopyRows.columns, logger: logger) { writer in
                // Each chunk goes as soon as it is written: the server parses it while the gateway
                // writes the next, instead of waiting for the whole batch.
                while let chunk = try rows.nextChunk() { try await writer.write(chunk) }
            }
            // The cursor may move only after this answer: a COMMIT that failed or never answered
            // leaves the batch queued, and its resend is dropped by the key if it did commit.
            try await run("COMMIT", on: connection, logger: logger)
            return .copied
        } catch where isDuplicateKey(error) || error is PostgresCopyRows.Uncopyable {
            // COPY has no ON CONFLICT: a batch holding an id already stored (a resend after a lost
            // COMMIT answer, a replay) fails whole. Roll it back and send it by the insert, which
            // keeps the stored rows and adds only the missing ones. So does a batch with a body
            // COPY cannot carry (its COPY was cancelled there): the server judges that body.
            do {
                try await run("ROLLBACK", on: connection, logger: logger)
            } catch {
                return .failed(error)
            }
        } catch {
            return .failed(error)
        }
        var binds = PostgresBindings(capacity: 1)
        binds.append(bodies.map { String(decoding: $0, as: UTF8.self) })
        do {
            try await run("BEGIN", on: connection, logger: logger)
            try await run(PostgresQuery(unsafeSQL: insertSQL, binds: binds), on: connection, logger: logger)
            try await run("COMMIT", on: connection, logger: logger)
            return .inserted
        } catch {
            return .failed(error)
        }
    }

    static func isDuplicateKey(_ error: any Error) -> Bool {
        (error as? PSQLError)?.serverInfo?[.sqlState] == "23505"
    }

    public func shutdown() async {
        let open = connections
        connections = []
        for connection in open { try? await connection.close() }
    }

    /// `count` open connections: the first one made migrates the table and readies this month's
    /// partitions; the others only connect.
    private func ready(_ count: Int) async throws -> [PostgresConnection] {
        if connections.contains(where: \.isClosed) { await shutdown() }
        if let first = connections.first {
            try await ensurePartitions(first)
        } else {
            let opened = try await connect()
            do {
                try await schema.migrate(opened, logger: libraryLogger)
                partitionedMonth = nil
                try await ensurePartitions(opened)
            } catch {
                try? await opened.close()
                throw error
            }
            connections = [opened]
            logger.info("sink \(name): connected to postgres \(config.host):\(config.port)/\(config.database) as \(config.user)")
        }
        while connections.count < count { connections.append(try await connect()) }
        return Array(connections.prefix(count))
    }

    private func connect() async throws -> PostgresConnection {
        var configuration = PostgresConnection.Configuration(
            host: config.host, port: config.port, username: config.user, password: config.password?.value,
            database: config.database, tls: try tls.map { .require(try NIOSSLContext(configuration: $0)) } ?? .disable)
        configuration.options.connectTimeout = .milliseconds(Int64(config.connectTimeoutSeconds * 1000))
        configuration.options.additionalStartupParameters = [
            ("statement_timeout", "\(Int(config.statementTimeoutSeconds * 1000))"),
            // Lets the centre's DBA (and the tests) tell each gateway's sessions apart in pg_stat_activity.
            ("application_name", "gatehouse/\(name)"),
        ]
        connectionCount += 1
        return try await PostgresConnection.connect(configuration: configuration, id: connectionCount, logger: libraryLogger)
    }

    private func ensurePartitions(_ connection: PostgresConnection) async throws {
        let now = Date()
        let month = PostgresSchema.partitionSuffix(schema.months(from: now)[0].start)
        guard month != partitionedMonth else { return }
        try await schema.ensurePartitions(connection, now: now, logger: libraryLogger)
        partitionedMonth = month
    }

    /// Runs a statement to its end: PostgresNIO reports some errors only while its rows are read.
    private static func run(_ query: PostgresQuery, on connection: PostgresConnection, logger: Logger) async throws {
        for try await _ in try await connection.query(query, logger: logger) {}
    }

    /// Maps the first failure (in batch order) to the runner's outcome. Rolls back a part the
    /// server refused or timed out, keeping its connection; anything else drops every connection,
    /// so the next send starts clean (and migrates the table again if it was dropped).
    private func failed(_ failures: [(error: any Error, connection: PostgresConnection?)]) async -> DeliveryResult {
        var closeAll = false
        for (error, connection) in failures {
            let failure = Self.classify(error, config: config)
            if failure.keepConnection, let connection {
                do {
                    try await Self.run("ROLLBACK", on: connection, logger: libraryLogger)
                } catch {
                    closeAll = true
                }
            } else {
                closeAll = true
            }
            if failure.tableMissing { partitionedMonth = nil }
        }
        if closeAll { await shutdown() }
        guard let first = failures.first else { return .delivered }
        return Self.classify(first.error, config: config).result
    }

    struct Failure {
        var result: DeliveryResult
        var keepConnection = false
        var tableMissing = false
    }

    /// What an error means for the batch. Only the server's primary message and SQLSTATE are
    /// quoted: its DETAIL and CONTEXT lines can carry the row's values (a plate, a card number).
    static func classify(_ error: any Error, config: PostgresSinkConfig) -> Failure {
        if let transaction = error as? PostgresTransactionError,
            let inner = transaction.closureError ?? transaction.commitError ?? transaction.beginError {
            return classify(inner, config: config)
        }
        if let schema = error as? PostgresSchemaError { return Failure(result: .fatal(reason: "postgres: \(schema)")) }
        if let tls = error as? NIOSSLError {
            return Failure(result: .fatal(reason: "postgres: TLS setup failed: \(tls)"))
        }
        guard let error = error as? PSQLError else {
            return Failure(result: .retryable(after: nil, reason: "postgres: \(String(describing: error))"))
        }
        let server = "\(config.host):\(config.port)"
        switch error.code {
        case .server:
            let state = error.serverInfo?[.sqlState] ?? ""
            let message = error.serverInfo?[.message] ?? "no message"
            let quoted = "postgres: \(message) (SQLSTATE \(state))"
            switch state {
            case "28P01", "28000":
                // Named the way an operator searches for it; the runner retries only at the backoff cap.
                return Failure(result: .fatal(reason: "postgres: authentication failed for user \(config.user) (check the sink's user and password)"))
            case "3D000":
                return Failure(result: .fatal(reason: "postgres: database \(config.database) does not exist on \(server)"))
            case "42501":
                return Failure(result: .fatal(reason: "\(quoted) (grant the sink's user the rights listed in its README)"))
            case "42P01":
                // The table was dropped under us: the next connection migrates it again.
                return Failure(result: .retryable(after: nil, reason: quoted), tableMissing: true)
            case "57014":
                return Failure(result: .retryable(after: nil, reason: "postgres: statement timeout after \(config.statementTimeoutSeconds) s"), keepConnection: true)
            case "54000":
                return Failure(result: .rejected(reason: quoted), keepConnection: true)
            case _ where state.hasPrefix("22") || state.hasPrefix("23"):
                // Data exceptions and constraint violations: something in these rows. The runner
                // splits the batch until the refused event is alone, then quarantines it.
                return Failure(result: .rejected(reason: quoted), keepConnection: true)
            default:
                return Failure(result: .retryable(after: nil, reason: quoted))
            }
        case .sslUnsupported:
            return Failure(result: .fatal(reason: "postgres: \(server) does not offer TLS, which the sink's tls section requires"))
        case .unsupportedAuthMechanism, .authMechanismRequiresPassword, .saslError:
            return Failure(result: .fatal(reason: "postgres: authentication failed for user \(config.user) (\(error.code); check the sink's password)"))
        default:
            let underlying = error.underlying.map { ": \($0)" } ?? ""
            return Failure(result: .retryable(after: nil, reason: "postgres: \(server) \(error.code)\(underlying)"))
        }
    }
}

extension PostgresSink {
    package static func readSettings(_ map: YAMLMapping, environment: [String: String]) -> PostgresSinkConfig? {
        PostgresSinkConfig.read(map, environment: environment)
    }
}

/// Why a PostgreSQL sink could not be built from its configuration, naming the offending file.
public struct PostgresSinkError: Error, Sendable, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = description }
}
