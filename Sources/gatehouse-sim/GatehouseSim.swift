import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseSimulation
import Logging

/// `gatehouse-sim`: simulated devices and a stand-in for the central store, as separate
/// processes, for demos, manual testing and benchmarks. Loopback addresses only.
@main
struct GatehouseSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse-sim", abstract: "Simulated devices and central store for Gatehouse.",
        subcommands: [Push.self, Receiver.self, ZKTecoCommand.self, UHPPOTECommand.self, VendorCommand.self, HikvisionACSCommand.self, UHPPOTEBenchCommand.self,
            HikvisionCameraCommand.self, DahuaCommand.self, ONVIFCommand.self, SnapshotCameraCommand.self,
            GB28181Command.self, RTSPCameraCommand.self])

    static func requireLoopback(_ host: String) throws {
        guard ["127.0.0.1", "::1", "localhost"].contains(host) else {
            throw ValidationError("only loopback addresses are allowed (got \(host))")
        }
    }

    struct Push: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Push generic-JSON events from simulated devices.")
        @Option(help: "Gateway ingest base URL.") var url = "http://127.0.0.1:8080"
        @Option(help: "Device ids are PREFIX0 … PREFIX(N-1).") var devicePrefix = "sim-"
        @Option(help: "Number of devices.") var devices = 8
        @Option(help: "Bearer token every device sends.") var token: String?
        @Option(help: "lpr-camera, door-controller or alarm-panel.") var role = "door-controller"
        @Option(help: "Events per second, all devices together.") var rate: Double = 50
        @Option(help: "Seconds to run.") var duration: Double = 10

        func run() async throws {
            guard let host = URL(string: url)?.host else { throw ValidationError("bad --url \(url)") }
            try requireLoopback(host)
            guard let role = TrafficGenerator.Role(rawValue: role) else {
                throw ValidationError("--role must be one of \(TrafficGenerator.Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let pusher = DevicePusher(baseURL: url)
            let fleet = DeviceFleet(
                devices: (0..<devices).map { .init(id: "\(devicePrefix)\($0)", role: role, token: token) },
                pusher: pusher, eventsPerSecond: rate, logger: Logger(label: "gatehouse-sim"))
            await fleet.run(duration: .seconds(duration))
            await pusher.shutdown()
            let t = fleet.counts
            print("sent \(t.sent), acknowledged \(t.acknowledged), refused (503) \(t.refused), failed \(t.failed)")
        }
    }

    struct Receiver: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stand in for the central store; optionally exit once N unique events arrived, reporting the drain rate.")
        @Option(help: "Address to listen on.") var host = "127.0.0.1"
        @Option(help: "Port to listen on.") var port = 18090
        @Option(help: "HMAC secret the gateway signs with.") var hmacSecret: String?
        @Option(help: "Bearer token the gateway must send.") var bearer: String?
        @Option(help: "Append every received event to this NDJSON file.") var record: String?
        @Option(help: "Exit after this many unique events, printing figures.") var expect: Int?
        @Option(help: "Give up after this many seconds.") var timeout: Double = 3600
        @Option(help: "Write the figures as JSON here.") var json: String?
        @Option(help: "Top-level key that identifies an event (dedupKey: count what Fluent Bit forwards).") var idKey = "id"
        @Option(help: "Without --expect: rewrite {unique, total, duplicates} to this file twice a second, for a script to poll.")
        var progressJSON: String?

        func run() async throws {
            try requireLoopback(host)
            var logger = Logger(label: "central")
            logger.logLevel = .warning
            let receiver = CentralReceiver(
                host: host, port: port, expectedBearer: bearer, hmacSecret: hmacSecret, recordFile: record,
                keepBodies: false, idKey: idKey, logger: logger)
            let started = Date()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await receiver.run() }
                let bound = try await receiver.waitUntilRunning()
                print("central stand-in listening on \(host):\(bound)")
                guard let expect else {
                    guard let progressJSON else {
                        try await group.next()
                        return
                    }
                    while !Task.isCancelled {
                        let p = receiver.progress
                        let figures: [String: Any] = ["unique": p.uniqueCount, "total": p.totalReceived, "duplicates": p.totalReceived - p.uniqueCount]
                        let data = try JSONSerialization.data(withJSONObject: figures, options: [.sortedKeys])
                        // Atomic, so a poller never reads half a file.
                        try data.write(to: URL(fileURLWithPath: progressJSON), options: .atomic)
                        try await Task.sleep(for: .milliseconds(500))
                    }
                    return
                }
                var firstEventAt: Date?
                var last = 0
                while Date().timeIntervalSince(started) < timeout {
                    try await Task.sleep(for: .milliseconds(100))
                    let p = receiver.progress
                    if firstEventAt == nil, p.uniqueCount > 0 { firstEventAt = Date() }
                    if p.uniqueCount / 100_000 != last / 100_000 { print("  \(p.uniqueCount) unique received") }
                    last = p.uniqueCount
                    if p.uniqueCount >= expect { break }
                }
                let finished = Date()
                let p = receiver.progress
                let drainSeconds = finished.timeIntervalSince(firstEventAt ?? started)
                let figures: [String: Any] = [
                    "unique": p.uniqueCount, "total": p.totalReceived, "duplicates": p.totalReceived - p.uniqueCount,
                    "drain_seconds": drainSeconds, "events_per_second": Double(p.uniqueCount) / max(drainSeconds, 0.001),
                    "first_alarm_after_seconds": p.firstAlarmAt.map { $0.timeIntervalSince(started) } ?? -1,
                ]
                print("received \(p.uniqueCount) unique (\(p.totalReceived - p.uniqueCount) duplicates) in \(String(format: "%.2f", drainSeconds)) s = \(Int(Double(p.uniqueCount) / max(drainSeconds, 0.001))) events/s; first alarm \(p.firstAlarmAt.map { String(format: "%.3f s", $0.timeIntervalSince(started)) } ?? "never") after start")
                if let json {
                    let data = try JSONSerialization.data(withJSONObject: figures, options: [.prettyPrinted, .sortedKeys])
                    try data.write(to: URL(fileURLWithPath: json))
                }
                group.cancelAll()
            }
        }
    }
}
