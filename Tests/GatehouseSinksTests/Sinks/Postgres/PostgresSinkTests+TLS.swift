import Foundation
@testable import GatehouseCore
import GatehouseQueue
@testable import GatehouseSinks
import GatehouseTesting
import Testing

/// The postgres sink over TLS to the test cluster, which this test switches to `ssl = on` with a
/// throwaway CA and a role that may log in only with a client certificate from that CA. Part of
/// the serialized PostgreSQL suite: reloading the server's configuration must not meet a test
/// that crashes the server.
extension PostgresSinkTests {
    /// Copies the server's certificate and key where the server may read them, turns TLS on and
    /// admits `role` from 127.0.0.1 only over TLS with a client certificate signed by the CA.
    func enableTLS(_ certs: TLSSinkTests.Certificates, role: String) async throws {
        let directory = postgres.directory
        for name in ["server.pem", "server.key", "ca.pem"] {
            let target = "\(directory)/tls-\(name)"
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.copyItem(atPath: "\(certs.directory)/\(name)", toPath: target)
            // PostgreSQL refuses a key others can read, and must own it when it runs as `postgres`.
            chmod(target, 0o600)
            if getuid() == 0, let owner = getpwnam("postgres") { chown(target, owner.pointee.pw_uid, owner.pointee.pw_gid) }
        }
        let hba = "\(directory)/data/pg_hba.conf"
        let rules = try String(contentsOfFile: hba, encoding: .utf8)
        // First match wins: this line must come before the general `host all all` one.
        try ("hostssl all \(role) 127.0.0.1/32 scram-sha-256 clientcert=verify-ca\nhost all \(role) 127.0.0.1/32 reject\n" + rules)
            .write(toFile: hba, atomically: false, encoding: .utf8)
        try await postgres.execute("CREATE ROLE \(role) LOGIN PASSWORD 'tls-password'")
        try await postgres.execute("GRANT CREATE ON SCHEMA public TO \(role)")
        // gatehouse_schema_version may already belong to the cluster's owner (another test's sink).
        try await postgres.execute("GRANT pg_read_all_data, pg_write_all_data TO \(role)")
        for (setting, value) in [
            ("ssl_cert_file", "\(directory)/tls-server.pem"), ("ssl_key_file", "\(directory)/tls-server.key"),
            ("ssl_ca_file", "\(directory)/tls-ca.pem"), ("ssl", "on"),
        ] {
            try await postgres.execute("ALTER SYSTEM SET \(setting) = '\(value)'")
        }
        try await postgres.execute("SELECT pg_reload_conf()::text")
        #expect(await eventually(poll: .milliseconds(100)) { try await postgres.column("SHOW ssl") == ["on"] })
    }

    func tlsConfig(_ certs: TLSSinkTests.Certificates, role: String, table: String, clientCertificate: Bool) -> SinkConfig {
        SinkConfig(
            name: "tls", batchMaxEvents: 100, backoffInitialSeconds: 0.05, backoffMaxSeconds: 0.5,
            settings: PostgresSinkConfig(
                host: postgres.host, port: postgres.port, database: postgres.database, user: role,
                password: Secret(value: "tls-password", origin: "test"), table: table,
                caFile: certs.ca, clientCertificateFile: clientCertificate ? certs.clientCert : nil,
                clientKeyFile: clientCertificate ? certs.clientKey : nil, tlsRequired: true))
    }

    @Test func deliversOverTLSWithAClientCertificateAndIsRefusedWithout() async throws {
        let certs = try await TLSSinkTests.Certificates()
        defer { try? FileManager.default.removeItem(atPath: certs.directory) }
        let role = TestPostgres.uniqueTable("tls_writer")
        let table = TestPostgres.uniqueTable()
        try await enableTLS(certs, role: role)
        let store = try await TestQueue(sinks: ["tls"])
        defer { store.remove() }
        let events = try await store.append(30, .accessGranted)

        let withCertificate = try RunningSink(tlsConfig(certs, role: role, table: table, clientCertificate: true), queue: store.queue)
        #expect(
            await eventually(poll: .milliseconds(50)) { try await store.queue.lag(sink: "tls") == 0 },
            "\(withCertificate.runner.status.lastError ?? "no error")")
        // Every session the sink keeps open (two by default) is encrypted and presented our client certificate.
        let client = try await postgres.column(
            "SELECT s.client_dn FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'gatehouse/tls' AND s.ssl")
        await withCertificate.finish()
        #expect(!client.isEmpty)
        #expect(Set(client) == ["/CN=gatehouse-test-client"])
        #expect(try await postgres.count("SELECT count(*) FROM \(table)") == events.count)

        try await store.append(5, .accessGranted)
        let without = try RunningSink(tlsConfig(certs, role: role, table: table, clientCertificate: false), queue: store.queue)
        #expect(await eventually { without.runner.status.lastError != nil })
        await without.finish()
        #expect(without.runner.status.lastError?.contains("authentication failed for user \(role)") == true, "\(without.runner.status.lastError ?? "-")")
        #expect(try await store.queue.lag(sink: "tls") == 5)
    }
}
