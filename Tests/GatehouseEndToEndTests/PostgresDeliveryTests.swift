import Foundation
import GatehouseCore
import GatehouseTesting
import Testing

/// The built daemon with a `postgres` sink next to the HTTP one, killed with SIGKILL under load.
@Suite("End to end into PostgreSQL", .serialized, .enabled(if: TestPostgres.isAvailable, "needs GATEHOUSE_TEST_POSTGRES_URL (scripts/test sets it)"))
struct PostgresDeliveryTests {
    @Test("kill -9 of the daemon mid-delivery: every acknowledged event is in the table exactly once")
    func killNineMidDelivery() async throws {
        let postgres = try #require(TestPostgres.shared)
        let table = TestPostgres.uniqueTable("e2e")
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        _ = receiver
        var site = TestSite(receiverPort: port)
        defer { site.remove() }
        site.sinkExtra = """
              - name: warehouse
                type: postgres
                host: \(postgres.host)
                port: \(postgres.port)
                database: \(postgres.database)
                user: \(postgres.user)
                password: {env: GATEHOUSE_E2E_PG_PASSWORD}
                table: \(table)
                batch_max_events: 50
                backoff_initial_seconds: 0.05
                backoff_max_seconds: 0.5
            """
        let config = try site.write()
        let devices = site.devices
        let environment = ["GATEHOUSE_E2E_PG_PASSWORD": postgres.password]
        let oracle = Oracle()
        let iterations = 6
        for iteration in 0..<iterations {
            let (daemon, ingest, _) = try await DaemonProcess.start(configPath: config, environment: environment)
            let load = Task {
                await oracle.load(baseURL: "http://127.0.0.1:\(ingest)", workers: 4, devices: devices, batch: 2, seed: UInt64(iteration + 1))
            }
            // Kill once this run has acknowledged something and the sink has written something:
            // counts, not times, so the kill falls mid-delivery however busy the machine is.
            await DeliveryTests.waitUntil(oracle, acknowledged: oracle.acknowledgedCount + 40)
            _ = await eventually(poll: .milliseconds(200)) { try await postgres.count("SELECT count(*) FROM \(table)") > iteration * 20 }
            await daemon.kill9()
            load.cancel()
            await load.value
        }
        let acknowledged = oracle.acknowledgedIDs
        #expect(acknowledged.count >= iterations * 40)
        let (daemon, _, _) = try await DaemonProcess.start(configPath: config, environment: environment)
        let arrived = await eventually(timeout: .seconds(120), poll: .milliseconds(200)) {
            acknowledged.isSubset(of: Set(try await postgres.column("SELECT id::text FROM \(table)").compactMap { $0 }))
        }
        #expect(arrived, "not every acknowledged event reached PostgreSQL:\n\(daemon.log.suffix(3000))")
        #expect(try await daemon.stop() == 0)
        // Exactly once: the key drops the batches resent after each kill.
        let total = try await postgres.count("SELECT count(*) FROM \(table)")
        #expect(total == (try await postgres.count("SELECT count(DISTINCT id) FROM \(table)")))
        // The stored body is the event the gateway acknowledged (same id, same device).
        let sample = try #require(acknowledged.first)
        let device = try await postgres.column("SELECT device FROM \(table) WHERE id = '\(sample)'")
        #expect(device.count == 1)
        print("postgres crash test: \(iterations) kill -9 cycles, \(acknowledged.count) acknowledged, \(total) rows")
    }
}
