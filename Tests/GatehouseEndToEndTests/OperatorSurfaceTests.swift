import AsyncHTTPClient
import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseTesting
import NIOCore
import Testing

/// What an operator and their monitoring rely on, against the built daemon: version, probes,
/// metrics conventions, start-up errors, reload of log level and status interval, sink errors.
@Suite("Operator surface", .serialized)
struct OperatorSurfaceTests {
    static func get(_ url: String) async throws -> (status: Int, body: String) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 8 << 20)))
    }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }


    /// One family of the Prometheus text format, as a scraper reads it.
    struct Family {
        var help = 0
        var type: [String] = []
        var samples: [(labels: String, value: Double)] = []
    }

    /// Parses the exposition text; every problem with the conventions is returned as a sentence.
    static func parseMetrics(_ text: String) -> (families: [String: Family], problems: [String]) {
        var families: [String: Family] = [:]
        var problems: [String] = []
        var seenSamples: Set<String> = []
        for line in text.split(separator: "\n").map(String.init) where !line.isEmpty {
            let words = line.split(separator: " ", maxSplits: 3).map(String.init)
            if line.hasPrefix("# HELP "), words.count >= 3 {
                families[words[2], default: Family()].help += 1
                if words.count < 4 || words[3].trimmingCharacters(in: .whitespaces).isEmpty { problems.append("\(words[2]): empty HELP") }
            } else if line.hasPrefix("# TYPE "), words.count == 4 {
                families[words[2], default: Family()].type.append(words[3])
            } else if line.hasPrefix("#") {
                continue
            } else {
                let nameEnd = line.firstIndex { $0 == "{" || $0 == " " } ?? line.endIndex
                var name = String(line[..<nameEnd])
                let rest = line[nameEnd...]
                let labels = rest.hasPrefix("{") ? String(rest[...(rest.firstIndex(of: "}") ?? rest.startIndex)]) : ""
                guard let value = Double(line.split(separator: " ").last ?? "") else {
                    problems.append("unreadable sample: \(line)")
                    continue
                }
                if !seenSamples.insert(name + labels).inserted { problems.append("sample exported twice: \(name)\(labels)") }
                for suffix in ["_bucket", "_sum", "_count"] where families[name] == nil && name.hasSuffix(suffix) {
                    name = String(name.dropLast(suffix.count))
                }
                families[name, default: Family()].samples.append((labels, value))
            }
        }
        for (name, family) in families {
            if family.help != 1 { problems.append("\(name): \(family.help) HELP lines (expected 1)") }
            if family.type.count != 1 { problems.append("\(name): \(family.type.count) TYPE lines (expected 1)") }
            if family.type.first == "counter", !name.hasSuffix("_total") { problems.append("\(name): a counter not named _total") }
            if family.type.first != "counter", name.hasSuffix("_total") { problems.append("\(name): a \(family.type.first ?? "?") named _total") }
        }
        return (families, problems)
    }

    @Test("--version, /healthz, /readyz, waiting devices, and /metrics that follow the Prometheus conventions")
    func probesAndMetrics() async throws {
        let version = try await DaemonProcess.runTool(["--version"])
        #expect(version.status == 0 && version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == GatehouseVersion.current, "\(version)")

        let (_, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        let site = TestSite(receiverPort: port)
        defer { site.remove() }
        let (daemon, ingest, admin) = try await DaemonProcess.start(configPath: try site.write())
        #expect(daemon.log.contains("gatehouse.version=\(GatehouseVersion.current)"))

        let health = try await Self.get("http://127.0.0.1:\(admin)/healthz")
        #expect(health.status == 200)
        #expect(try Self.json(health.body)["status"] as? String == "alive")
        let ready = try await Self.get("http://127.0.0.1:\(admin)/readyz")
        #expect(ready.status == 200, "\(ready.body)")
        let readiness = try Self.json(ready.body)
        #expect(readiness["ready"] as? Bool == true)
        #expect((readiness["listeners"] as? [String: String])?["ingest"] == "127.0.0.1:\(ingest)", "\(readiness)")
        #expect(readiness["queue"] as? String == "open")

        // No device has sent anything since the start: waiting, not down.
        let table = try await DaemonProcess.runTool(["status", "--admin", "http://127.0.0.1:\(admin)"])
        #expect(table.stdout.contains("dev-1") && table.stdout.contains("waiting") && table.stdout.contains("waiting since restart"), "\(table.stdout)")
        #expect(!table.stdout.contains(" down "), "\(table.stdout)")

        let pusher = DevicePusher(baseURL: "http://127.0.0.1:\(ingest)")
        let accepted = await pusher.push(deviceID: "dev-0", token: TestSite.token(0), body: TrafficGenerator.body([["kind": "door.opened", "dedupKey": "m-1"]]))
        #expect(accepted.status == 200, "\(accepted)")
        for _ in 0..<2 {
            let refused = await pusher.push(deviceID: "dev-1", token: "wrong", body: TrafficGenerator.body([["kind": "door.opened"]]))
            #expect(refused.status == 401)
        }
        let unknown = await pusher.push(deviceID: "no-such-device", token: "x", body: TrafficGenerator.body([["kind": "door.opened"]]))
        #expect(unknown.status == 404)
        await pusher.shutdown()

        let metrics = try await Self.get("http://127.0.0.1:\(admin)/metrics")
        let (families, problems) = Self.parseMetrics(metrics.body)
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))\n\(metrics.body)")
        let refusals = families["gatehouse_ingest_refusals_total"]?.samples ?? []
        #expect(refusals.contains { $0.labels.contains("driver=\"generic-json\"") && $0.labels.contains("reason=\"bad-credentials\"") && $0.value == 2 }, "\(refusals)")
        #expect(refusals.contains { $0.labels.contains("reason=\"unknown-device\"") && $0.value == 1 }, "\(refusals)")
        #expect(families["gatehouse_build_info"]?.samples.first?.labels == "{version=\"\(GatehouseVersion.current)\"}")
        #expect(families["gatehouse_devices_up"]?.samples.first?.value == 1)
        #expect(families["gatehouse_quarantined_total"]?.type == ["counter"])
        #expect(try await daemon.stop() == 0)
    }

    /// A TCP socket listening on 127.0.0.1, so the daemon finds its port taken.
    static func occupyPort() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else {
            close(fd)
            throw DaemonError("could not occupy a loopback port")
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    @Test("a taken port stops start-up with the listener and address as the first error line, no cancellation noise before it", arguments: ["ingest", "admin"])
    func bindFailure(listener: String) async throws {
        let (fd, taken) = try Self.occupyPort()
        defer { close(fd) }
        var site = TestSite(receiverPort: 9)
        if listener == "ingest" { site.ingestPort = taken } else { site.adminPort = taken }
        defer { site.remove() }
        let run = try await DaemonProcess.runTool(["run", "--config", try site.write()])
        #expect(run.status != 0)
        let lines = run.stderr.split(separator: "\n").map(String.init)
        let firstError = try #require(lines.firstIndex { $0.contains(" error ") || $0.contains(" critical ") }, "\(run.stderr)")
        #expect(lines[firstError].contains("\(listener) listener on 127.0.0.1:\(taken) failed"), "\(run.stderr)")
        #expect(lines[firstError].contains("in use"), "\(run.stderr)")
        #expect(!lines[..<firstError].contains { $0.contains("CancellationError") }, "\(run.stderr)")
    }

    @Test("SIGHUP applies log_level and status_interval_seconds at once, names removed devices and drops their metrics")
    func reloadLogLevelAndInterval() async throws {
        let (_, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        var site = TestSite(receiverPort: port)
        // Summary lines are info: hidden at notice, and an hour apart.
        site.logLevel = "notice"
        site.statusInterval = "3600"
        defer { site.remove() }
        let (daemon, _, admin) = try await DaemonProcess.start(configPath: try site.write())
        #expect(!daemon.log.contains("status: devices"))
        #expect(try await Self.get("http://127.0.0.1:\(admin)/metrics").body.contains("gatehouse_device_up{device=\"dev-3\"}"))
        site.logLevel = "info"
        site.statusInterval = "1"
        site.devices = 3
        _ = try site.write()
        daemon.sendSignal(SIGHUP)
        #expect(await eventually(timeout: .seconds(20), poll: .milliseconds(100)) { daemon.log.contains("config reloaded") }, "\(daemon.log.suffix(1500))")
        #expect(daemon.log.contains("status interval 3600 → 1 s") && daemon.log.contains("log level notice → info"), "\(daemon.log.suffix(1500))")
        #expect(daemon.log.contains("device dev-3 removed"), "\(daemon.log.suffix(1500))")
        let metrics = try await Self.get("http://127.0.0.1:\(admin)/metrics").body
        #expect(!metrics.contains("device=\"dev-3\"") && metrics.contains("gatehouse_device_up{device=\"dev-2\"}"), "\(metrics)")
        // Both must apply: at notice, or at the old interval, no summary line would come.
        #expect(await eventually(timeout: .seconds(20), poll: .milliseconds(100)) { daemon.log.contains("status: devices 0/3 up, 3 waiting for first data") }, "\(daemon.log.suffix(1500))")
        #expect(try await daemon.stop() == 0)
    }

    @Test("a sink's last error shows in `gatehouse status --json` and /readyz while the centre is down, and clears once it delivers again")
    func sinkLastError() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        receiver.setMode(.unavailable)
        let site = TestSite(receiverPort: port)
        defer { site.remove() }
        let (daemon, ingest, admin) = try await DaemonProcess.start(configPath: try site.write())
        let pusher = DevicePusher(baseURL: "http://127.0.0.1:\(ingest)")
        let reply = await pusher.push(deviceID: "dev-0", token: TestSite.token(0), body: TrafficGenerator.body([["kind": "door.opened", "dedupKey": "e-1"]]))
        await pusher.shutdown()
        #expect(reply.status == 200)

        func centralSink() async throws -> [String: Any]? {
            let result = try await DaemonProcess.runTool(["status", "--admin", "http://127.0.0.1:\(admin)", "--json"])
            let sinks = try Self.json(result.stdout)["sinks"] as? [[String: Any]]
            return sinks?.first?["status"] as? [String: Any]
        }
        #expect(await eventually(timeout: .seconds(20), poll: .milliseconds(100)) { try await centralSink()?["lastError"] != nil }, "no lastError while the centre is down")
        let ready = try await Self.get("http://127.0.0.1:\(admin)/readyz")
        #expect(ready.status == 200, "a failing sink degrades, it does not make the gateway unready")
        #expect((try Self.json(ready.body)["degraded"] as? [String])?.contains { $0.hasPrefix("sink central") } == true, "\(ready.body)")

        receiver.setMode(.accept)
        #expect(await eventually(timeout: .seconds(20), poll: .milliseconds(100)) { (try await centralSink()?["deliveredEvents"] as? Int ?? 0) > 0 })
        let recovered = try #require(try await centralSink())
        #expect(recovered["lastError"] == nil, "\(recovered)")
        #expect(try await daemon.stop() == 0)
    }
}
