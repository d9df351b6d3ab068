import AsyncHTTPClient
import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseTesting
import Logging
import Testing

/// The built daemon as a child process, a real HTTP receiver as the centre, loopback only.
@Suite("End to end through the daemon process", .serialized)
struct DeliveryTests {
    @Test("every acknowledged event arrives with the same id and content")
    func deliversEverything() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        let site = TestSite(receiverPort: port)
        defer { site.remove() }
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: try site.write())
        let oracle = Oracle()
        await oracle.load(baseURL: "http://127.0.0.1:\(ingest)", workers: 8, devices: site.devices, perWorker: 60, batch: 3)
        #expect(oracle.acknowledgedCount == 8 * 60, "tally \(oracle.tally)\n\(daemon.log)")
        // Wait for exactly the acknowledged ids: the centre also receives device.online events.
        #expect(await receiver.waitUntilContains(oracle.acknowledgedIDs, timeout: .seconds(30)))
        try oracle.verify(against: receiver.snapshot)
        // The HTTP sink signed and compressed what it sent.
        #expect(receiver.snapshot.lastContentEncoding == "gzip")
        #expect(receiver.snapshot.unauthorizedRequests == 0)
        #expect(try await daemon.stop() == 0)
    }

    @Test("kill -9 in the middle of load, again and again: nothing acknowledged is lost")
    func crashLoop() async throws {
        let iterations = Int(ProcessInfo.processInfo.environment["GATEHOUSE_CRASH_ITERATIONS"] ?? "") ?? 50
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        let site = TestSite(receiverPort: port)
        defer { site.remove() }
        let config = try site.write()
        let oracle = Oracle()
        for iteration in 0..<iterations {
            let (daemon, ingest, _) = try await DaemonProcess.start(configPath: config)
            let load = Task {
                await oracle.load(baseURL: "http://127.0.0.1:\(ingest)", workers: 6, devices: site.devices, batch: 2, seed: UInt64(iteration + 1))
            }
            // Kill at a random point once this run has acknowledged something: waiting for a count,
            // not a time, keeps the load meaningful however busy the machine is.
            await Self.waitUntil(oracle, acknowledged: oracle.acknowledgedCount + 11)
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...250)))
            await daemon.kill9()
            load.cancel()
            await load.value
        }
        let acknowledged = oracle.acknowledgedCount
        #expect(acknowledged > iterations * 10, "load too small to mean anything: \(acknowledged) acknowledged, tally \(oracle.tally)")
        let (daemon, _, _) = try await DaemonProcess.start(configPath: config)
        let arrived = await receiver.waitUntilContains(oracle.acknowledgedIDs, timeout: .seconds(120))
        #expect(arrived, "not all acknowledged events arrived:\n\(daemon.log.suffix(3000))")
        try oracle.verify(against: receiver.snapshot)
        let snapshot = receiver.snapshot
        print("crash test: \(iterations) kill -9 cycles, \(acknowledged) events acknowledged, \(snapshot.uniqueCount) unique received, \(snapshot.duplicateCount) duplicate deliveries (same id)")
        #expect(try await daemon.stop() == 0)
    }

    @Test("SIGTERM during load exits 0 and loses nothing")
    func gracefulStop() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        let site = TestSite(receiverPort: port)
        defer { site.remove() }
        let config = try site.write()
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: config)
        let oracle = Oracle()
        let load = Task { await oracle.load(baseURL: "http://127.0.0.1:\(ingest)", workers: 6, devices: site.devices, batch: 2) }
        await Self.waitUntil(oracle, acknowledged: 50)
        let status = try await daemon.stop(signal: SIGTERM)
        load.cancel()
        await load.value
        #expect(status == 0, "exit status \(status)\n\(daemon.log.suffix(2000))")
        #expect(daemon.log.contains("gatehouse stopped cleanly"))
        #expect(oracle.acknowledgedCount > 0)
        // Whatever was acknowledged but not yet forwarded is delivered by the next start.
        let (again, _, _) = try await DaemonProcess.start(configPath: config)
        #expect(await receiver.waitUntilContains(oracle.acknowledgedIDs, timeout: .seconds(30)))
        try oracle.verify(against: receiver.snapshot)
        #expect(try await again.stop() == 0)
    }
}

extension DeliveryTests {
    /// Polls (bounded) until the oracle holds `count` acknowledged events.
    static func waitUntil(_ oracle: Oracle, acknowledged count: Int, timeout: Duration = .seconds(30)) async {
        let deadline = ContinuousClock.now + timeout
        while oracle.acknowledgedCount < count, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}

extension CentralReceiver {
    /// Bounded wait until every id in `ids` was received.
    func waitUntilContains(_ ids: Set<String>, timeout: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while clock.now < deadline {
            if ids.isSubset(of: snapshot.uniqueIDs) { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return ids.isSubset(of: snapshot.uniqueIDs)
    }
}
