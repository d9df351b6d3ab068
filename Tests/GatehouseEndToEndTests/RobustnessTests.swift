import AsyncHTTPClient
import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseTesting
import Logging
import NIOCore
import Testing

/// Bad input, outages, small disks and operator tools, against the built daemon.
@Suite("Daemon robustness", .serialized)
struct RobustnessTests {
    static func post(_ url: String, body: [UInt8], headers: [(String, String)]) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        // A client, so a connection, of its own: these daemons close idle connections after 2 s,
        // and a pooled one picked just as the daemon closed it failed with "I/O on closed channel"
        // on a loaded machine. (`Connection: close` would do that too, but AsyncHTTPClient then
        // fails a request answered before it sent its whole body, such as a 413.)
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let response = try await client.execute(request, timeout: .seconds(60))
            let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
            try await client.shutdown()
            return (Int(response.status.code), text)
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    static func status(adminPort: Int) async throws -> [String: Any] {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(adminPort)/status"), timeout: .seconds(10))
        let data = Data(buffer: try await response.body.collect(upTo: 8 << 20))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test("bad input gets a precise 4xx and the daemon keeps serving")
    func badInput() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        var site = TestSite(receiverPort: port)
        site.ingestExtra = """
              max_body_bytes: 16KiB
              idle_timeout_seconds: 2
              request_timeout_seconds: 2
            """
        defer { site.remove() }
        let (daemon, ingest, admin) = try await DaemonProcess.start(configPath: try site.write())
        let url = "http://127.0.0.1:\(ingest)/v1/devices/dev-0/events"
        let auth = [("Authorization", "Bearer \(TestSite.token(0))"), ("Content-Type", "application/json")]

        var (code, body) = try await Self.post(url, body: Array(#"{"kind": "access.granted", "#.utf8), headers: auth)
        #expect(code == 422 && body.contains("malformed JSON") && body.contains("quarantineId"), "\(code) \(body)")
        (code, body) = try await Self.post(url, body: Array(#"{"kind": 42}"#.utf8), headers: auth)
        #expect(code == 422 && body.contains("field 'kind'") && body.contains("expected a string"), "\(code) \(body)")
        (code, body) = try await Self.post(url, body: Array(#"{"kind": "access.granted", "subject": {"type": "card", "value": 123}}"#.utf8), headers: auth)
        #expect(code == 422 && body.contains("subject.value"), "\(code) \(body)")
        (code, body) = try await Self.post(url, body: Array(#"{"kind": "acces.granted"}"#.utf8), headers: auth)
        #expect(code == 422 && body.contains("not an event kind"), "\(code) \(body)")
        (code, body) = try await Self.post(url, body: Array(#"{"kind": "access.granted", "colour": "red"}"#.utf8), headers: auth)
        #expect(code == 422 && body.contains("unknown field"), "\(code) \(body)")
        (code, body) = try await Self.post(url, body: [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x7D], headers: auth)
        #expect(code == 422 && body.contains("UTF-8"), "\(code) \(body)")
        (code, body) = try await Self.post(
            "http://127.0.0.1:\(ingest)/v1/devices/no-such-device/events", body: Array(#"{"kind": "door.opened"}"#.utf8), headers: auth)
        #expect(code == 404 && body.contains("unknown-device"), "\(code) \(body)")
        (code, body) = try await Self.post(url, body: Array(#"{"kind": "door.opened"}"#.utf8), headers: [("Authorization", "Bearer wrong")])
        #expect(code == 401 && body.contains("bad-credentials"), "\(code) \(body)")
        (code, body) = try await Self.post(url, body: Array(#"{"kind": "door.opened"}"#.utf8), headers: [("Content-Type", "application/json")])
        #expect(code == 401 && body.contains("missing-credentials"), "\(code) \(body)")
        (code, body) = try await Self.post(url, body: [UInt8](repeating: 0x20, count: 40_000) + Array(#"{"kind":"door.opened"}"#.utf8), headers: auth)
        #expect(code == 413 && body.contains("body-too-large"), "\(code) \(body)")
        (code, body) = try await Self.post(url, body: Array("kind=door.opened".utf8), headers: [auth[0], ("Content-Type", "application/x-www-form-urlencoded")])
        #expect(code == 415, "\(code) \(body)")

        // Slow loris: a connection that trickles a request head is closed by the idle timeout. The
        // client keeps trickling for 30 s, so only the server's timeout can end it sooner (and a
        // busy machine closing it late still passes).
        let closedAfter = try await SlowClient.trickle(port: ingest, bytesEvery: .milliseconds(2500), maxSeconds: 30)
        #expect(closedAfter != nil, "slow connection was not closed within 30 s")

        // A body that stalls longer than request_timeout_seconds is answered 408 (or the connection
        // closed) by the server, not given up on by the client.
        let slowBody = try await SlowClient.slowBody(port: ingest, token: TestSite.token(0), maxSeconds: 30)
        #expect(slowBody.endedByServer && (slowBody.response.contains(" 408 ") || slowBody.response.isEmpty), "\(slowBody)")

        // Still serving after all that: a valid event is accepted and forwarded.
        (code, body) = try await Self.post(url, body: Array(#"{"kind": "door.opened", "dedupKey": "after-the-storm"}"#.utf8), headers: auth)
        #expect(code == 200 && body.contains("stored"), "\(code) \(body)")
        let quarantined = try await Self.status(adminPort: admin)["queue"] as? [String: Any]
        #expect((quarantined?["quarantined"] as? Int) == 6, "status: \(String(describing: quarantined))")
        #expect(await receiver.waitFor(uniqueCount: 1, timeout: .seconds(10)))

        // The quarantine tools see what was kept.
        let list = try await DaemonProcess.runTool(["quarantine", "list", "--config", site.configPath])
        #expect(list.status == 0 && list.stdout.contains("malformed JSON") && list.stdout.contains("dev-0"), "\(list)")
        #expect(try await daemon.stop() == 0)
    }

    @Test("a flood from one source is answered 429 with Retry-After beyond the burst, and served again once the bucket refills")
    func floodIsRateLimited() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        var site = TestSite(receiverPort: port)
        // One token per 5 s and a burst of 3: 20 requests at once exceed it however slowly the
        // machine runs them (they would have to spread over 85 s to all get through).
        site.ingestExtra = """
              rate_limit_per_second: 0.2
              rate_limit_burst: 3
            """
        defer { site.remove() }
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: try site.write())
        let url = "http://127.0.0.1:\(ingest)/v1/devices/dev-0/events"
        let token = TestSite.token(0)
        let answers = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for sequence in 0..<20 {
                group.addTask {
                    var request = HTTPClientRequest(url: url)
                    request.method = .POST
                    request.headers.add(name: "Authorization", value: "Bearer \(token)")
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.body = .bytes(ByteBuffer(string: #"{"kind": "door.opened", "dedupKey": "flood-\#(sequence)"}"#))
                    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                    _ = try await response.body.collect(upTo: 1 << 20)
                    return (Int(response.status.code), response.headers.first(name: "Retry-After"))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let accepted = answers.filter { $0.0 == 200 }.count
        let limited = answers.filter { $0.0 == 429 }
        #expect(accepted >= 3 && !limited.isEmpty && accepted + limited.count == 20, "flood answers: \(answers)")
        #expect(limited.allSatisfy { Int($0.1 ?? "") ?? 0 >= 1 }, "every 429 says when to retry: \(limited)")

        // The bucket refills (a token in 5 s): poll, bounded, until the device is served again.
        var served = (code: 0, body: "")
        for _ in 0..<60 where served.code != 200 {
            served = try await Self.post(
                url, body: Array(#"{"kind": "door.opened", "dedupKey": "after-the-flood"}"#.utf8),
                headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")])
            if served.code != 200 { try await Task.sleep(for: .seconds(1)) }
        }
        #expect(served.code == 200 && served.body.contains("stored"), "\(served)")
        #expect(await receiver.waitFor(uniqueCount: accepted + 1, timeout: .seconds(30)))
        #expect(try await daemon.stop() == 0)
    }

    @Test("outage: the backlog waits on disk and drains, alarms first")
    func outageAlarmsFirst() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        receiver.setMode(.unavailable)
        let site = TestSite(receiverPort: port)
        defer { site.remove() }
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: try site.write())
        let oracle = Oracle()
        let pusher = DevicePusher(baseURL: "http://127.0.0.1:\(ingest)")
        var generator = TrafficGenerator(seed: 11)
        for sequence in 0..<300 {
            let event = generator.event(role: .doorController, deviceID: "o", sequence: sequence)
            _ = await oracle.push(pusher, device: sequence % 4, events: [event])
        }
        var alarmIDs: Set<String> = []
        for sequence in 0..<20 {
            let reply = await oracle.push(pusher, device: 0, events: [["kind": "alarm.panic", "dedupKey": "alarm-\(sequence)"]])
            alarmIDs.formUnion(reply.ids)
        }
        await pusher.shutdown()
        #expect(alarmIDs.count == 20)
        try await Task.sleep(for: .seconds(1))
        #expect(receiver.snapshot.uniqueCount == 0)
        receiver.setMode(.accept)
        #expect(await receiver.waitUntilContains(oracle.acknowledgedIDs, timeout: .seconds(30)))
        let order = receiver.snapshot.arrivalOrder
        var seen: Set<String> = []
        let firstArrivals = order.filter { seen.insert($0).inserted }.prefix(20)
        #expect(Set(firstArrivals) == alarmIDs, "the first 20 events delivered after the outage were not the alarms")
        #expect(try await daemon.stop() == 0)
    }

    @Test("small disk budget: lowest priority evicted first, counted, alarms kept; 503 when nothing lower is left")
    func smallBudget() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        receiver.setMode(.unavailable)
        var site = TestSite(receiverPort: port)
        site.diskBudget = "1MiB"
        defer { site.remove() }
        let (daemon, ingest, admin) = try await DaemonProcess.start(configPath: try site.write())
        let pusher = DevicePusher(baseURL: "http://127.0.0.1:\(ingest)")
        let padding = String(repeating: "x", count: 900)
        func batch(_ kind: String, _ start: Int) -> [UInt8] {
            TrafficGenerator.body((start..<(start + 50)).map { ["kind": kind, "dedupKey": "\(kind)-\($0)", "attributes": ["pad": padding]] })
        }
        // ~1 KiB each: 1,500 telemetry events do not fit in 1 MiB.
        var telemetryAccepted = 0
        for start in stride(from: 0, to: 1500, by: 50) {
            let reply = await pusher.push(deviceID: "dev-1", token: TestSite.token(1), body: batch("camera.motion", start))
            if reply.status == 200 { telemetryAccepted += 50 }
        }
        var alarmIDs: Set<String> = []
        for start in stride(from: 0, to: 300, by: 50) {
            let reply = await pusher.push(deviceID: "dev-2", token: TestSite.token(2), body: batch("alarm.input", start))
            #expect(reply.status == 200, "alarms must evict telemetry, got \(reply.status) \(reply.body.prefix(200))")
            alarmIDs.formUnion(reply.ids)
        }
        let status = try await Self.status(adminPort: admin)
        let queue = try #require(status["queue"] as? [String: Any])
        let evicted = try #require(queue["evicted"] as? [String: Any])
        #expect((evicted["telemetry"] as? Int ?? 0) > 0, "nothing evicted: \(queue)")
        #expect((evicted["alarm"] as? Int) == 0)
        #expect((queue["usedBytes"] as? Int ?? .max) <= 1 << 20)
        #expect(daemon.log.contains("evicted"), "evictions must be logged")

        // Fill the rest with alarms until nothing lower is left: then the gateway refuses with 503.
        var refused = false
        for start in stride(from: 300, to: 3000, by: 50) where !refused {
            let reply = await pusher.push(deviceID: "dev-2", token: TestSite.token(2), body: batch("alarm.input", start))
            if reply.status == 503 { refused = true } else { alarmIDs.formUnion(reply.ids) }
        }
        #expect(refused, "a full budget with nothing lower to evict must answer 503")
        await pusher.shutdown()
        receiver.setMode(.accept)
        #expect(await receiver.waitUntilContains(alarmIDs, timeout: .seconds(60)), "every accepted alarm must be delivered")
        #expect(telemetryAccepted > 0)
        #expect(try await daemon.stop() == 0)
    }

    @Test("status: summary lines in the log, `gatehouse status` table and JSON, Prometheus metrics")
    func statusEverywhere() async throws {
        let (_, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        let site = TestSite(receiverPort: port)
        defer { site.remove() }
        let (daemon, ingest, admin) = try await DaemonProcess.start(configPath: try site.write())
        let oracle = Oracle()
        await oracle.load(baseURL: "http://127.0.0.1:\(ingest)", workers: 1, devices: 1, perWorker: 5)
        #expect(await daemon.waitForLog("status: devices 1/4 up"), "\(daemon.log.suffix(1500))")
        #expect(daemon.log.contains("device dev-0 is up"))
        let table = try await DaemonProcess.runTool(["status", "--admin", "http://127.0.0.1:\(admin)"])
        #expect(table.status == 0 && table.stdout.contains("DEVICES 1/4 up") && table.stdout.contains("central"), "\(table)")
        let json = try await DaemonProcess.runTool(["status", "--admin", "http://127.0.0.1:\(admin)", "--json"])
        #expect(json.status == 0 && json.stdout.contains("\"depth\""), "\(json)")
        let metrics = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(admin)/metrics"), timeout: .seconds(5))
        let text = String(buffer: try await metrics.body.collect(upTo: 1 << 20))
        #expect(text.contains("gatehouse_devices_up 1"), "\(text.prefix(800))")
        #expect(text.contains("gatehouse_queue_depth_events"))
        #expect(text.contains("gatehouse_sink_lag_events{sink=\"central\"}"))
        #expect(try await daemon.stop() == 0)
    }

    @Test("SIGHUP reloads devices and sinks without dropping queued events; a bad file keeps the running config")
    func reload() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        receiver.setMode(.unavailable)
        var site = TestSite(receiverPort: port)
        site.devices = 1
        defer { site.remove() }
        let config = try site.write()
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: config)
        let oracle = Oracle()
        await oracle.load(baseURL: "http://127.0.0.1:\(ingest)", workers: 1, devices: 1, perWorker: 20)
        #expect(oracle.acknowledgedCount == 20)

        try "site: [broken".write(toFile: config, atomically: true, encoding: .utf8)
        daemon.sendSignal(SIGHUP)
        #expect(await daemon.waitForLog("reload refused, keeping the running config"), "\(daemon.log.suffix(800))")

        site.devices = 3
        _ = try site.write()
        daemon.sendSignal(SIGHUP)
        #expect(await daemon.waitForLog("device dev-2 added"), "\(daemon.log.suffix(800))")
        #expect(daemon.log.contains("device dev-1 added"), "\(daemon.log.suffix(800))")
        let pusher = DevicePusher(baseURL: "http://127.0.0.1:\(ingest)")
        let newDevice = await oracle.push(pusher, device: 2, events: [["kind": "door.opened", "dedupKey": "new-device"]])
        await pusher.shutdown()
        #expect(newDevice.status == 200, "\(newDevice)")
        receiver.setMode(.accept)
        #expect(await receiver.waitUntilContains(oracle.acknowledgedIDs, timeout: .seconds(20)))
        #expect(try await daemon.stop() == 0)
    }
}

/// A client that writes a request head one byte at a time, as a slow-loris attack does.
enum SlowClient {
    /// Sends a complete head announcing 64 body bytes, then 8 of them, then nothing; returns what
    /// the server answered (empty if it just closed), and whether the server ended the exchange
    /// (answered or closed) before `maxSeconds`.
    static func slowBody(port: Int, token: String, maxSeconds: Double) async throws -> (endedByServer: Bool, response: String) {
        let fd = try connectLoopback(port: port)
        defer { close(fd) }
        let start = Date()
        let head = "POST /v1/devices/dev-0/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{\"kind\":"
        _ = Array(head.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var received: [UInt8] = []
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var ended = false
        while !ended, Date().timeIntervalSince(start) < maxSeconds {
            if poll(&poller, 1, 0) > 0 {
                var buffer = [UInt8](repeating: 0, count: 1024)
                let n = recv(fd, &buffer, buffer.count, 0)
                if n > 0 { received += buffer.prefix(n) }
                ended = n <= 0 || String(decoding: received, as: UTF8.self).contains("\r\n\r\n")
            }
            if !ended { try await Task.sleep(for: .milliseconds(10)) }
        }
        return (ended, String(decoding: received, as: UTF8.self))
    }

    static func connectLoopback(port: Int) throws -> Int32 { try LoopbackPort.connect(port: port) }

    /// Seconds until the server closed the connection, or nil if it never did within `maxSeconds`.
    static func trickle(port: Int, bytesEvery interval: Duration, maxSeconds: Double) async throws -> Double? {
        let fd = try connectLoopback(port: port)
        defer { close(fd) }
        let start = Date()
        let head = Array("POST /v1/devices/dev-0/events HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8)
        var index = 0
        while Date().timeIntervalSince(start) < maxSeconds {
            let byte = index < head.count ? head[index] : UInt8(ascii: "a")
            index += 1
            let sent = withUnsafePointer(to: byte) { send(fd, $0, 1, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return Date().timeIntervalSince(start) }
            // A closed socket shows up as readable with 0 bytes.
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let deadline = ContinuousClock.now.advanced(by: interval)
            while ContinuousClock.now < deadline {
                if poll(&poller, 1, 0) > 0 {
                    var buffer = [UInt8](repeating: 0, count: 512)
                    if recv(fd, &buffer, buffer.count, 0) <= 0 { return Date().timeIntervalSince(start) }
                }
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        return nil
    }
}
