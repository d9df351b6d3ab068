import Foundation
import Logging
import PostgresNIO

/// The throwaway PostgreSQL cluster `scripts/test` starts (`scripts/postgres-for-tests.sh`),
/// found through `GATEHOUSE_TEST_POSTGRES_URL`. Without that variable (a developer running
/// `swift test` alone) the PostgreSQL tests are skipped, loudly; `scripts/test` always sets it.
public struct TestPostgres: Sendable {
    public let host: String
    public let port: Int
    public let user: String
    public let password: String
    public let database: String
    /// The cluster's directory (data, socket, server.log), for `halt()` and `resume()`.
    public let directory: String
    public let logPath: String

    public static let environmentVariable = "GATEHOUSE_TEST_POSTGRES_URL"

    /// The cluster, or nil (with a warning on stderr) when the variable is absent.
    public static let shared: TestPostgres? = {
        let environment = ProcessInfo.processInfo.environment
        guard let url = environment[environmentVariable], let components = URLComponents(string: url),
            let host = components.host, let port = components.port, let user = components.user
        else {
            FileHandle.standardError.write(Data("""

                ************************************************************************
                * PostgreSQL sink tests SKIPPED: \(environmentVariable) is not set.
                * Run scripts/test (it starts a throwaway PostgreSQL 15), or
                *   eval "$(scripts/postgres-for-tests.sh start)" before swift test.
                ************************************************************************

                """.utf8))
            return nil
        }
        let directory = environment["GATEHOUSE_TEST_POSTGRES_DIR"] ?? ""
        return TestPostgres(
            host: host, port: port, user: user, password: components.password ?? "",
            database: String(components.path.dropFirst()), directory: directory,
            logPath: environment["GATEHOUSE_TEST_POSTGRES_LOG"] ?? directory + "/server.log")
    }()

    public static var isAvailable: Bool { shared != nil }

    /// A table name no other test uses.
    public static func uniqueTable(_ prefix: String = "events") -> String {
        "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Runs `body` on a fresh connection as the cluster's superuser, then closes it.
    public func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        var logger = Logger(label: "test-postgres")
        logger.logLevel = .warning
        let configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        do {
            let result = try await body(connection)
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// The first column of every row of `sql`, which must be text (or name); NULL as nil.
    public func column(_ sql: String) async throws -> [String?] {
        try await withConnection { connection in
            var values: [String?] = []
            var logger = Logger(label: "test-postgres")
            logger.logLevel = .warning
            for try await value in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(String?.self) {
                values.append(value)
            }
            return values
        }
    }

    /// A single number (`SELECT count(*) …`), read as text so any integer type will do.
    public func count(_ sql: String) async throws -> Int {
        Int(try await column("SELECT (\(sql))::text").first.flatMap { $0 } ?? "") ?? -1
    }

    public func execute(_ sql: String) async throws {
        _ = try await column(sql)
    }

    /// Crashes the server (immediate stop: no checkpoint, in-flight transactions lost).
    public func halt() throws { try script("halt") }

    /// Starts the crashed server again on the same port; it recovers from its WAL.
    public func resume() throws { try script("resume") }

    /// Lines of the server log containing `text` (connections are logged: `log_connections`).
    public func logLines(containing text: String) -> Int {
        guard let log = try? String(contentsOfFile: logPath, encoding: .utf8) else { return 0 }
        return log.split(separator: "\n").filter { $0.contains(text) }.count
    }

    /// Runs the script with posix_spawn and waitpid: Foundation's `Process` on Linux can miss the
    /// exit of a child whose own child (the postmaster pg_ctl starts) outlives it, and wait forever.
    private func script(_ command: String) throws {
        let path = repositoryRoot.appendingPathComponent("scripts/postgres-for-tests.sh").path
        var environment = ProcessInfo.processInfo.environment
        environment["GATEHOUSE_TEST_POSTGRES_DIR"] = directory
        let arguments = ["/bin/bash", path, command]
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/bash", nil, nil, argv, envp)
        guard spawned == 0 else {
            throw TestPostgresError(description: "cannot run postgres-for-tests.sh \(command): errno \(spawned)")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        guard status == 0 else {
            throw TestPostgresError(description: "postgres-for-tests.sh \(command) exited with status \(status)")
        }
    }
}

public struct TestPostgresError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}
