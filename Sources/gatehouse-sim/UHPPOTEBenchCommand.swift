import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseSimulation
import Logging

/// `gatehouse-sim uhppote-bench`: many simulated UHPPOTE controllers swiping at a fixed total
/// rate against a running gateway, with the centre stand-in in this process, measuring
/// swipe → gateway receive (`receivedAt`, stamped just before the commit) and swipe → arrival
/// at the centre (after the commit), events/s, and the daemon's memory. See docs/benchmarks-uhppote.md.
struct UHPPOTEBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uhppote-bench",
        abstract: "Benchmark the uhppote driver: N controllers swiping, latency swipe→receivedAt and swipe→centre, events/s, daemon RSS.")

    @Option(help: "Serial number of the first controller.") var serial: UInt32 = 500_000
    @Option(help: "UDP port of the first controller.") var port = 62000
    @Option(help: "Number of controllers.") var count = 100
    @Option(help: "Card swipes per second, all controllers together.") var rate: Double = 500
    @Option(help: "Seconds of swiping.") var duration: Double = 15
    @Option(help: "Listener (gateway listen_port) the controllers push to.") var listener = "127.0.0.1:61999"
    @Option(help: "Port of the in-process centre stand-in (the gateway's http sink URL).") var receiverPort = 18191
    @Option(help: "Gateway process id, for its memory (/proc/<pid>/status).") var daemonPID: Int32?
    @Option(help: "Seconds to wait for every controller's device.online before swiping.") var warmup: Double = 30
    @Option(help: "Seconds to wait for the last events after swiping stops.") var drain: Double = 30

    func run() async throws {
        var logger = Logger(label: "gatehouse-sim.uhppote-bench")
        logger.logLevel = .warning
        let receiver = CentralReceiver(host: "127.0.0.1", port: receiverPort, logger: logger)
        let receiverTask = Task { try await receiver.run() }
        defer { receiverTask.cancel() }
        _ = try await receiver.waitUntilRunning()
        let parts = listener.split(separator: ":")
        let ip = parts.first.map { $0.split(separator: ".").compactMap { UInt8($0) } } ?? []
        guard parts.count == 2, ip.count == 4, let listenPort = UInt16(parts[1]) else {
            throw ValidationError("--listener '\(listener)' is not host:port (expected e.g. 127.0.0.1:61999)")
        }
        var controllers: [UHPPOTEController] = []
        for i in 0..<count {
            var options = UHPPOTEController.Options(serial: serial + UInt32(i))
            options.port = port + i
            options.capacity = 100_000
            let controller = UHPPOTEController(options: options, logger: logger)
            _ = try await controller.start()
            controller.setListener(ip: ip, port: listenPort)
            controllers.append(controller)
        }
        print("\(count) controllers on 127.0.0.1:\(port)…\(port + count - 1), centre on 127.0.0.1:\(receiverPort); waiting for the gateway")
        let memory = MemoryProbe(pid: daemonPID)
        // Warm-up: every controller polled once (device.online at the centre), so swipes meet a steady state.
        let warmDeadline = Date().addingTimeInterval(warmup)
        while receiver.progress.uniqueCount < count, Date() < warmDeadline { try await Task.sleep(for: .milliseconds(100)) }
        let baseline = receiver.snapshot.arrivalOrder.count
        print("warm: \(baseline) events at the centre; swiping \(rate)/s for \(duration) s")

        var swipes: [String: Double] = [:]  // "serial:index" → swipe time (epoch ms, fractional)
        swipes.reserveCapacity(Int(rate * duration) + 1)
        var arrivals: [String: Double] = [:]
        var receiveLatency: [Double] = []
        var centreLatency: [Double] = []
        var seen = baseline
        var lastArrival = 0.0
        var rssMax = 0

        var received = receiver.progress.totalReceived
        func collect() {
            // The snapshot builds a set of every id: take it only when something arrived.
            let total = receiver.progress.totalReceived
            guard total != received else { return }
            received = total
            let snapshot = receiver.snapshot
            let now = Date().timeIntervalSince1970 * 1000
            guard snapshot.arrivalOrder.count > seen else { return }
            for id in snapshot.arrivalOrder[seen...] {
                guard let body = snapshot.bodies[id], let event = try? EventCoding.decode(Data(body.utf8)),
                    case .string(let serial)? = event.attributes?["serial"], case .number(let index)? = event.attributes?["eventIndex"]
                else { continue }
                let key = "\(serial):\(Int(index))"
                guard let swiped = swipes[key], arrivals[key] == nil else { continue }
                arrivals[key] = now
                receiveLatency.append(Double(event.receivedAt.milliseconds) - swiped)
                centreLatency.append(now - swiped)
                lastArrival = now
            }
            seen = snapshot.arrivalOrder.count
        }

        let started = Date()
        let startMs = started.timeIntervalSince1970 * 1000
        var swiped = 0
        var lastSample = started
        while Date().timeIntervalSince(started) < duration {
            let due = Int(Date().timeIntervalSince(started) * rate)
            while swiped < due {
                let controller = controllers[swiped % controllers.count]
                let index = controller.swipe(card: UInt32(1_000_000 + swiped), door: UInt8(1 + swiped % 4))
                swipes["\(controller.serial):\(index)"] = Date().timeIntervalSince1970 * 1000
                swiped += 1
            }
            collect()
            if Date().timeIntervalSince(lastSample) >= 1 {
                lastSample = Date()
                rssMax = max(rssMax, memory.rssKiB ?? 0)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let drainDeadline = Date().addingTimeInterval(drain)
        while arrivals.count < swiped, Date() < drainDeadline {
            collect()
            rssMax = max(rssMax, memory.rssKiB ?? 0)
            try await Task.sleep(for: .milliseconds(20))
        }
        collect()
        for controller in controllers { await controller.stop() }

        let snapshot = receiver.snapshot
        let span = max(1, lastArrival - startMs) / 1000
        func percentile(_ values: [Double], _ p: Double) -> String {
            guard !values.isEmpty else { return "-" }
            let sorted = values.sorted()
            let rank = min(sorted.count - 1, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1)
            return String(format: "%.0f", sorted[max(0, rank)])
        }
        print("swipes \(swiped) over \(duration) s (\(rate)/s offered); arrived \(arrivals.count); duplicates at the centre \(snapshot.duplicateCount)")
        print(String(format: "events/s (swipes arrived ÷ first swipe→last arrival): %.0f", Double(arrivals.count) / span))
        print("swipe→receivedAt ms: p50 \(percentile(receiveLatency, 50)) p99 \(percentile(receiveLatency, 99)) max \(percentile(receiveLatency, 100))")
        print("swipe→centre ms:     p50 \(percentile(centreLatency, 50)) p99 \(percentile(centreLatency, 99)) max \(percentile(centreLatency, 100))")
        if let hwm = memory.highWaterKiB { print("daemon RSS max sampled \(rssMax / 1024) MiB, VmHWM \(hwm / 1024) MiB") }
        print("simulator RSS \((MemoryProbe(pid: getpid()).rssKiB ?? 0) / 1024) MiB")
        if arrivals.count < swiped { throw ExitCode(1) }
    }
}

/// Reads VmRSS / VmHWM of a process from /proc (Linux).
struct MemoryProbe {
    let pid: Int32?

    func field(_ name: String) -> Int? {
        guard let pid, let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }

    var rssKiB: Int? { field("VmRSS") }
    var highWaterKiB: Int? { field("VmHWM") }
}
