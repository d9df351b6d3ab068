import Foundation
import GatehouseCore

/// Batched inserts into a month-partitioned PostgreSQL table (`type: postgres`).
public struct PostgresSinkConfig: SinkSettings {
    public static let typeName = "postgres"
    /// Longest table name: the partitions append `_default` or `_YYYY_MM` and the indexes
    /// `_priority_idx`, and PostgreSQL cuts identifiers at 63 bytes.
    static let maxTableNameLength = 40

    public var host: String
    public var port: Int
    public var database: String
    public var user: String
    public var password: Secret?
    public var table: String
    /// Monthly partitions kept ready beyond the current month.
    public var partitionsAhead: Int
    public var statementTimeoutSeconds: Double
    public var connectTimeoutSeconds: Double
    /// TLS is used when any of these is set (or `tls.required`); the server must then offer it.
    public var caFile: String?
    public var clientCertificateFile: String?
    public var clientKeyFile: String?
    public var tlsRequired: Bool
    /// Connections a batch is spread over: each takes a contiguous part of it, in its own
    /// transaction, and the batch is delivered only when every part committed. Two by default: a
    /// second backend pays even with the server on the gateway's own two cores (one backend is
    /// the drain's limit; docs/benchmarks.md, "PostgreSQL sink").
    public var connections: Int

    public init(
        host: String, port: Int = 5432, database: String, user: String, password: Secret? = nil,
        table: String = "gatehouse_events", partitionsAhead: Int = 3, statementTimeoutSeconds: Double = 30,
        connectTimeoutSeconds: Double = 5, caFile: String? = nil, clientCertificateFile: String? = nil,
        clientKeyFile: String? = nil, tlsRequired: Bool = false, connections: Int = 2
    ) {
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        self.password = password
        self.table = table
        self.partitionsAhead = partitionsAhead
        self.statementTimeoutSeconds = statementTimeoutSeconds
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.caFile = caFile
        self.clientCertificateFile = clientCertificateFile
        self.clientKeyFile = clientKeyFile
        self.tlsRequired = tlsRequired
        self.connections = connections
    }

    var usesTLS: Bool { tlsRequired || caFile != nil || clientCertificateFile != nil }

    var tlsFiles: SinkTLSFiles {
        SinkTLSFiles(caFile: caFile, clientCertificateFile: clientCertificateFile, clientKeyFile: clientKeyFile)
    }

    /// Reads the keys of a `type: postgres` section. Nothing here connects: `check-config`
    /// accepts a config whose server is not running.
    static func read(_ map: YAMLMapping, environment: [String: String]) -> PostgresSinkConfig? {
        let host = map.string("host", required: true, expected: "a host name or IP address such as 10.0.0.5")
        let database = map.string("database", required: true, expected: "a database name such as gatehouse")
        let user = map.string("user", required: true, expected: "a PostgreSQL role name such as gatehouse")
        let table = map.string("table") ?? "gatehouse_events"
        if !isPlainIdentifier(table) {
            map.log.report(
                map.node("table"), key: map.join("table"),
                "'\(table)' is not a plain table name (expected lowercase letters, digits and '_', starting with a letter or '_', at most \(maxTableNameLength) characters)")
        }
        var tlsRequired = false
        let tls = SinkTLSFiles.read(map) { tlsRequired = $0.bool("required", default: true) }
        let config = PostgresSinkConfig(
            host: host ?? "", port: map.int("port", default: 5432, range: 1...65535), database: database ?? "",
            user: user ?? "", password: map.secret("password", environment: environment), table: table,
            partitionsAhead: map.int("partitions_ahead", default: 3, range: 0...36),
            statementTimeoutSeconds: map.double("statement_timeout_seconds", default: 30, range: 0.1...3600),
            connectTimeoutSeconds: map.double("connect_timeout_seconds", default: 5, range: 0.1...300),
            caFile: tls.caFile, clientCertificateFile: tls.clientCertificateFile, clientKeyFile: tls.clientKeyFile,
            tlsRequired: tlsRequired, connections: map.int("connections", default: 2, range: 1...8))
        guard host != nil, database != nil, user != nil else { return nil }
        return config
    }

    /// Lowercase ASCII only, so the name never needs quoting and means the same to psql users.
    static func isPlainIdentifier(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= maxTableNameLength else { return false }
        let isLetter: (UInt8) -> Bool = { ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F }
        return isLetter(first) && name.utf8.allSatisfy { isLetter($0) || ($0 >= 0x30 && $0 <= 0x39) }
    }
}
