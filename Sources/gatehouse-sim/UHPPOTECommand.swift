import ArgumentParser
import Foundation
import GatehouseSimulation
import Logging

/// `gatehouse-sim uhppote`: simulated UHPPOTE controllers on loopback UDP, swiping at a steady rate.
struct UHPPOTECommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uhppote",
        abstract: "Run simulated UHPPOTE/WeiGeng controllers (serial N…N+count-1 on ports P…P+count-1).")

    @Option(help: "Serial number of the first controller.") var serial: UInt32 = 423_187_757
    @Option(help: "UDP port of the first controller (0: any free port).") var port = 60000
    @Option(help: "Number of controllers.") var count = 1
    @Option(help: "Card swipes per second, all controllers together.") var rate: Double = 1
    @Option(help: "Ring buffer size of each controller.") var capacity = 1000
    @Option(help: "Chance (0–1) that a listener push is dropped.") var drop: Double = 0
    @Option(help: "Seconds to run (0: until interrupted).") var duration: Double = 0
    @Option(help: "Preset listener host:port (as if set-listener had been sent).") var listener: String?

    func run() async throws {
        guard count >= 1, count <= 10_000 else { throw ValidationError("--count \(count) is out of range (expected 1–10000)") }
        guard rate >= 0, (0...1).contains(drop) else { throw ValidationError("--rate must be ≥ 0 and --drop within 0–1") }
        var logger = Logger(label: "gatehouse-sim.uhppote")
        logger.logLevel = .warning
        var controllers: [UHPPOTEController] = []
        for i in 0..<count {
            var options = UHPPOTEController.Options(serial: serial + UInt32(i))
            options.port = port == 0 ? 0 : port + i
            options.capacity = capacity
            options.pushDropProbability = drop
            let controller = UHPPOTEController(options: options, logger: logger)
            let bound = try await controller.start()
            if let listener {
                let parts = listener.split(separator: ":")
                let ip = parts.first.map { $0.split(separator: ".").compactMap { UInt8($0) } } ?? []
                guard parts.count == 2, ip.count == 4, let lp = UInt16(parts[1]) else {
                    throw ValidationError("--listener '\(listener)' is not host:port (expected e.g. 127.0.0.1:60001)")
                }
                controller.setListener(ip: ip, port: lp)
            }
            print("controller \(options.serial) on 127.0.0.1:\(bound)")
            controllers.append(controller)
        }
        let started = Date()
        var swiped = 0
        var lastReport = started
        while duration == 0 || Date().timeIntervalSince(started) < duration {
            let due = Int(Date().timeIntervalSince(started) * rate)
            while swiped < due {
                let controller = controllers[swiped % controllers.count]
                controller.swipe(card: UInt32(1_000_000 + swiped), door: UInt8(1 + swiped % 4), granted: swiped % 10 != 0, direction: UInt8(1 + swiped % 2))
                swiped += 1
            }
            if Date().timeIntervalSince(lastReport) >= 5 {
                lastReport = Date()
                print("swiped \(swiped)")
            }
            try await Task.sleep(for: .milliseconds(rate > 100 ? 5 : 50))
        }
        for controller in controllers { await controller.stop() }
        print("swiped \(swiped) in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    }
}
