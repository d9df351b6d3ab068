import AsyncHTTPClient
import Foundation
import GatehouseSimulation
import GatehouseSinks
import GatehouseTesting
import Logging
import NIOCore
import Synchronization
import Testing

@testable import GatehouseCore
@testable import GatehouseIngest

/// The RTSP codec on the camera notes' samples, the Digest vector, the state machine on a
/// ManualClock, the config block, and the probes against the RTSP camera simulator.
@Suite("liveness")
struct LivenessTests {
    static let url = "rtsp://192.0.2.31:554/Streaming/Channels/102"

    @Test("request: request line, CSeq, headers, User-Agent, blank line")
    func request() {
        let bytes = RTSPCodec.request("DESCRIBE", url: Self.url, cseq: 2, headers: [.init(name: "Accept", value: "application/sdp")])
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix("DESCRIBE \(Self.url) RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\nUser-Agent: Gatehouse/"))
        #expect(text.hasSuffix("\r\n\r\n"))
    }

    @Test("response: the notes' 401 with two challenges and 200 with an SDP body; incomplete → nil; pipelined replies split")
    func response() throws {
        let challenge = """
            RTSP/1.0 401 Unauthorized\r
            CSeq: 2\r
            WWW-Authenticate: Digest realm="IP Camera(D2041)", nonce="b7e3a9d0c4f2", stale="FALSE"\r
            WWW-Authenticate: Basic realm="IP Camera(D2041)"\r
            \r

            """
        let (parsed, consumed) = try #require(try RTSPCodec.response(in: Array(challenge.utf8)))
        #expect(parsed.status == 401 && parsed.reason == "Unauthorized" && parsed.cseq == 2 && consumed == challenge.utf8.count)
        #expect(parsed.values("www-authenticate").count == 2)
        let sdp = "v=0\r\no=- 1741918811 1 IN IP4 192.0.2.31\r\ns=Media Presentation\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n"
        let ok = "RTSP/1.0 200 OK\r\nCSeq: 3\r\nContent-Type: application/sdp\r\nContent-Length: \(sdp.utf8.count)\r\n\r\n" + sdp
        let both = Array((ok + challenge).utf8)
        let (first, used) = try #require(try RTSPCodec.response(in: both))
        #expect(first.status == 200 && String(decoding: first.body, as: UTF8.self) == sdp && used == ok.utf8.count)
        #expect(try RTSPCodec.response(in: Array(both[used...]))?.response.status == 401)
        // Every prefix short of the whole is incomplete, not an error.
        for cut in [1, 10, ok.utf8.count - sdp.utf8.count - 1, ok.utf8.count - 1] {
            #expect(try RTSPCodec.response(in: Array(ok.utf8.prefix(cut))) == nil, "cut \(cut)")
        }
        // Bare LF lines, as some firmware writes them.
        #expect(try RTSPCodec.response(in: Array("RTSP/1.0 200 OK\nCSeq: 1\n\n".utf8))?.response.cseq == 1)
    }

    @Test("response: another protocol, a bad status, a bad Content-Length and oversized headers or body are protocol errors")
    func malformed() {
        let bad = [
            "HTTP/1.1 200 OK\r\n\r\n", "SSH-2.0-dropbear\r\n", "RTSP/1.0 abc OK\r\n\r\n", "RTSP/1.0 200 OK\r\nno colon here\r\n\r\n",
            "RTSP/1.0 200 OK\r\nContent-Length: -4\r\n\r\n", "RTSP/1.0 200 OK\r\nContent-Length: \(RTSPCodec.maxBodyBytes + 1)\r\n\r\n",
            "RTSP/1.0 200 OK\r\nX: " + String(repeating: "a", count: RTSPCodec.maxHeaderBytes + 10),
        ]
        for text in bad {
            #expect(throws: RTSPCodec.ProtocolError.self, "\(text.prefix(40))") { try RTSPCodec.response(in: Array(text.utf8)) }
        }
    }

    @Test("the notes' Digest vector: DESCRIBE, no qop → f3b6d63e196c57f76030e63bbcf940a5, uri the request URL byte for byte")
    func digestVector() throws {
        let challenge = try #require(HikvisionDigestClient.challenge(#"Digest realm="IP Camera(D2041)", nonce="b7e3a9d0c4f2", stale="FALSE""#))
        let header = HikvisionDigestClient.authorization(
            challenge, method: "DESCRIBE", uri: Self.url, username: "viewer", password: "Cam!2025", cnonce: "unused", nc: 1)
        #expect(header == #"Digest username="viewer", realm="IP Camera(D2041)", nonce="b7e3a9d0c4f2", uri="rtsp://192.0.2.31:554/Streaming/Channels/102", response="f3b6d63e196c57f76030e63bbcf940a5""#)
    }

    // MARK: - State machine

    static func settings(failures: Int = 3, successes: Int = 1, dwell: Double = 0) -> CameraLiveness {
        var settings = CameraLiveness()
        settings.failuresToOffline = failures
        settings.successesToOnline = successes
        settings.minDwellSeconds = dwell
        return settings
    }

    static let ok = LivenessProbeResult.ok("DESCRIBE answered 200 OK")
    static let silent = LivenessProbeResult(problem: .timeout, detail: "no answer within 5 s")

    @Test("hysteresis: offline after N failures dated by the first; online after M successes with downSeconds; a single blip changes nothing")
    func hysteresis() {
        let clock = ManualClock()
        let settings = Self.settings(failures: 3, successes: 2)
        var tracker = LivenessTracker()
        #expect(tracker.observe(Self.ok, at: clock.now, settings: settings) == nil)  // 1 of 2
        let firstOK = clock.now
        clock.advance(by: .seconds(30))
        #expect(tracker.observe(Self.ok, at: clock.now, settings: settings) == .online(since: firstOK, downSince: nil))
        clock.advance(by: .seconds(30))
        #expect(tracker.observe(Self.silent, at: clock.now, settings: settings) == nil)
        clock.advance(by: .seconds(30))
        #expect(tracker.observe(Self.ok, at: clock.now, settings: settings) == nil)  // the blip is over
        clock.advance(by: .seconds(30))
        let firstFailure = clock.now
        let lastSuccess = tracker.lastSuccessAt
        #expect(tracker.observe(Self.silent, at: clock.now, settings: settings) == nil)
        clock.advance(by: .seconds(30))
        #expect(tracker.observe(Self.silent, at: clock.now, settings: settings) == nil)
        clock.advance(by: .seconds(30))
        #expect(
            tracker.observe(Self.silent, at: clock.now, settings: settings)
                == .offline(since: firstFailure, problem: .timeout, detail: "no answer within 5 s", consecutiveFailures: 3, lastSuccessAt: lastSuccess))
        clock.advance(by: .seconds(30))
        #expect(tracker.observe(Self.silent, at: clock.now, settings: settings) == nil)  // announced once
        clock.advance(by: .seconds(30))
        let back = clock.now
        #expect(tracker.observe(Self.ok, at: clock.now, settings: settings) == nil)
        clock.advance(by: .seconds(30))
        #expect(tracker.observe(Self.ok, at: clock.now, settings: settings) == .online(since: back, downSince: firstFailure))
    }

    @Test("minimum dwell: a change within min_dwell_seconds of the last one waits, then goes")
    func dwell() {
        let clock = ManualClock()
        let settings = Self.settings(failures: 1, successes: 1, dwell: 120)
        var tracker = LivenessTracker()
        #expect(tracker.observe(Self.ok, at: clock.now, settings: settings) != nil)  // the first decision is not held
        clock.advance(by: .seconds(30))
        #expect(tracker.observe(Self.silent, at: clock.now, settings: settings) == nil)
        #expect(tracker.state == .online)
        clock.advance(by: .seconds(60))
        #expect(tracker.observe(Self.silent, at: clock.now, settings: settings) == nil)
        clock.advance(by: .seconds(30))
        guard case .offline(_, _, _, let failures, _)? = tracker.observe(Self.silent, at: clock.now, settings: settings) else {
            Issue.record("not offline after the dwell")
            return
        }
        #expect(failures == 3)
    }

    @Test("busy, auth-failed and not-found are a camera that answers: it stays online")
    func aliveProblems() {
        let clock = ManualClock()
        let settings = Self.settings(failures: 1)
        var tracker = LivenessTracker()
        _ = tracker.observe(Self.ok, at: clock.now, settings: settings)
        for problem in [LivenessProblem.authFailed, .busy, .notFound] {
            clock.advance(by: .seconds(30))
            #expect(tracker.observe(LivenessProbeResult(problem: problem, detail: "x"), at: clock.now, settings: settings) == nil, "\(problem)")
            #expect(tracker.state == .online && tracker.consecutiveFailures == 0 && tracker.lastProblem == problem)
        }
        clock.advance(by: .seconds(30))
        #expect(tracker.observe(LivenessProbeResult(problem: .unreachable, detail: "refused"), at: clock.now, settings: settings) != nil)
    }

    @Test("the stored tracker resumes a streak: decoded after a 'restart', more failures announce nothing")
    func persisted() throws {
        let clock = ManualClock()
        let settings = Self.settings(failures: 2)
        var tracker = LivenessTracker()
        _ = tracker.observe(Self.silent, at: clock.now, settings: settings)
        clock.advance(by: .seconds(30))
        #expect(tracker.observe(Self.silent, at: clock.now, settings: settings) != nil)
        var restored = try JSONDecoder().decode(LivenessTracker.self, from: try JSONEncoder().encode(tracker))
        #expect(restored == tracker)
        clock.advance(by: .seconds(30))
        #expect(restored.observe(Self.silent, at: clock.now, settings: settings) == nil)
    }

    // MARK: - Config

    static func load(_ devices: String, extra: String = "") throws -> GatehouseConfig {
        let yaml = """
            site: test
            state_directory: /tmp/gatehouse-liveness-config
            \(extra)
            devices:
            \(devices)
            sinks:
              - {name: out, type: file, path: /tmp/gatehouse-liveness-config/out.ndjson}
            """
        return try ConfigLoader.parse(yaml, file: "site.yaml", knownDrivers: DriverRegistry.names, driverOptions: DriverRegistry.options, sinkTypes: SinkRegistry.readers)
    }

    @Test("brand defaults from the address: DESCRIBE on the sub-stream with credentials, OPTIONS without, ONVIF for the onvif driver, TCP otherwise")
    func defaults() throws {
        let config = try Self.load(
            """
              - {id: hik, driver: generic-json, vendor: hikvision, type: camera, address: 192.0.2.31, auth: {username: viewer, password: x, scheme: digest}, liveness: {}}
              - {id: dahua, driver: generic-json, vendor: dahua, type: camera, address: "192.0.2.32:80", liveness: {}}
              - {id: tapo, driver: onvif, vendor: tapo, type: camera, address: 192.0.2.33, auth: {username: viewer, password: x, scheme: digest}, liveness: {}}
              - {id: xm, driver: generic-json, vendor: xiongmai, type: camera, address: 192.0.2.34, liveness: {}}
              - {id: snap, driver: generic-json, vendor: hikvision, type: camera, address: 192.0.2.35, liveness: {probe: snapshot, interval_seconds: 300}}
            """, extra: "liveness: {concurrency: 8, timeout_seconds: 3}")
        #expect(config.liveness == LivenessSettings(concurrency: 8, timeoutSeconds: 3))
        let hik = try #require(config.device("hik")?.liveness)
        #expect(hik.probe == .rtspDescribe && hik.target == "rtsp://192.0.2.31:554/Streaming/Channels/102")
        #expect(hik.intervalSeconds == 30 && hik.jitter == 0.2 && hik.failuresToOffline == 3 && hik.successesToOnline == 1 && hik.minDwellSeconds == 120)
        #expect(hik.retrySeconds == 10, "interval / failures_to_offline")
        let dahua = try #require(config.device("dahua")?.liveness)
        #expect(dahua.probe == .rtspOptions && dahua.target == "rtsp://192.0.2.32:554/cam/realmonitor?channel=1&subtype=1")
        let tapo = try #require(config.device("tapo")?.liveness)
        #expect(tapo.probe == .onvif && tapo.target == "http://192.0.2.33:2020/onvif/service")
        let xm = try #require(config.device("xm")?.liveness)
        #expect(xm.probe == .tcp && xm.target == "192.0.2.34:554")
        let snap = try #require(config.device("snap")?.liveness)
        #expect(snap.probe == .snapshot && snap.target == "http://192.0.2.35/ISAPI/Streaming/channels/101/picture" && snap.intervalSeconds == 300)
    }

    @Test("config errors name the file, line, key and what is valid")
    func configErrors() {
        let cases: [(String, [String])] = [
            ("liveness: {probe: rtsp}", ["site.yaml", "devices[0].liveness.probe", "rtsp-describe, rtsp-options, tcp, snapshot, onvif"]),
            ("liveness: {probe: rtsp-describe}", ["devices[0].liveness.url", "required", "vendor 'acme'"]),
            ("liveness: {probe: tcp, url: \"rtsp://h/x\"}", ["devices[0].liveness.url", "host:port"]),
            ("liveness: {url: \"rtsp://admin:pw@h/x\"}", ["devices[0].liveness.url", "credentials go in auth:"]),
            ("liveness: {probe: tcp, url: \"h:554\", failures_to_offline: 0}", ["devices[0].liveness.failures_to_offline", "1 to 100"]),
            ("liveness: {probe: tcp, url: \"h:554\", every: 3}", ["devices[0].liveness.every", "unknown key"]),
            ("liveness: {probe: tcp, url: \"h:554\", interval_seconds: 20, retry_seconds: 30}", ["devices[0].liveness.retry_seconds", "1 to 20"]),
        ]
        for (block, expected) in cases {
            do {
                _ = try Self.load("  - {id: c, driver: generic-json, vendor: acme, type: camera, address: 192.0.2.9, \(block)}")
                Issue.record("accepted: \(block)")
            } catch {
                let text = "\(error)"
                for part in expected { #expect(text.contains(part), "\(block): \(text)") }
                #expect(text.contains("site.yaml:5:"), "\(text)")
            }
        }
    }

    // MARK: - Probes against the simulator

    static func quietLogger() -> Logger {
        var logger = Logger(label: "rtsp-sim")
        logger.logLevel = .critical
        return logger
    }

    static let credentials = (username: "viewer", password: "Cam!2025")

    @Test("DESCRIBE with Digest (preferred over Basic), Basic only, a server closing after its 401, and each fault the simulator plays")
    func probesAgainstSimulator() async throws {
        let clock = ManualClock()
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = client.shutdown() }
        let prober = LivenessProber(http: client, timeout: .seconds(5), maxSnapshotBytes: 1 << 20, clock: clock)
        for (authentication, closes) in [(RTSPCamera.Authentication.digest, false), (.digest, true), (.basic, false), (.none, false)] {
            let camera = RTSPCamera(authentication: authentication, closesAfterChallenge: closes, logger: Self.quietLogger())
            let server = Task { try await camera.run() }
            let url = camera.url(port: try await camera.waitUntilRunning())
            let result = await prober.rtsp(.describe, url: url, credentials: Self.credentials)
            #expect(result.problem == nil && result.detail.contains("200"), "\(authentication) closes \(closes): \(result)")
            #expect(camera.counts.basic == (authentication == .basic ? 1 : 0), "\(authentication): Digest is picked when offered")
            #expect(camera.counts.refusedCredentials == 0 && camera.counts.others == 0)
            server.cancel()
        }
        let camera = RTSPCamera(logger: Self.quietLogger())
        let server = Task { try await camera.run() }
        defer { server.cancel() }
        let port = try await camera.waitUntilRunning()
        let url = camera.url(port: port)
        camera.behaviour = .wrongPassword
        #expect(await prober.rtsp(.describe, url: url, credentials: Self.credentials).problem == .authFailed)
        #expect(camera.counts.refusedCredentials == 1, "one try with refused credentials, no storm")
        // Without credentials (withheld after the refusal) OPTIONS still proves the server answers.
        #expect(await prober.rtsp(.options, url: url, credentials: nil).problem == nil)
        #expect(await prober.rtsp(.describe, url: url, credentials: nil).problem == nil)
        #expect(camera.counts.refusedCredentials == 1)
        camera.behaviour = .busy
        #expect(await prober.rtsp(.describe, url: url, credentials: Self.credentials).problem == .busy)
        camera.behaviour = .notFound
        #expect(await prober.rtsp(.describe, url: url, credentials: Self.credentials).problem == .notFound)
        camera.behaviour = .normal
        #expect(await prober.rtsp(.describe, url: "rtsp://127.0.0.1:\(port)/wrong/path", credentials: Self.credentials).problem == .notFound)
        camera.behaviour = .silent
        // The deadline is the injected clock's: it passes when the test moves time, not by waiting.
        // Time moves until the probe ends: its deadline timer may be set only after the connection
        // opens (a busy machine), so one step could land before it and leave the probe waiting.
        let outcome = Mutex<LivenessProbeResult?>(nil)
        let waiting = Task {
            let result = await prober.probe(.rtspDescribe, target: url, credentials: Self.credentials)
            outcome.withLock { $0 = result }
        }
        #expect(await eventually { camera.counts.openConnections == 1 })
        #expect(await eventually(timeout: .seconds(60)) {
            if outcome.withLock({ $0 }) == nil { clock.advance(by: .seconds(5)) }
            return outcome.withLock { $0 } != nil
        })
        await waiting.value
        let timedOut = try #require(outcome.withLock { $0 })
        #expect(timedOut.problem == .timeout && timedOut.detail.contains("5 s"), "\(timedOut)")
        #expect(await eventually { camera.counts.openConnections == 0 }, "the probe's connection is closed at its deadline")
        camera.behaviour = .refuse
        // The simulator closes its listener asynchronously: a connection that slipped in before
        // is closed without an answer (protocol); once the port is closed, connecting is refused.
        #expect(await eventually(timeout: .seconds(60)) { await prober.tcp("127.0.0.1:\(port)").problem == .unreachable })
        let refused = await prober.rtsp(.describe, url: url, credentials: Self.credentials)
        #expect(refused.problem == .unreachable, "\(refused)")
        camera.behaviour = .normal
        #expect(await eventually(timeout: .seconds(60)) { await prober.tcp("127.0.0.1:\(port)").problem == nil }, "the port reopens")
        #expect(camera.counts.others == 0, "a probe sent SETUP or PLAY")
    }

    @Test("snapshot probe: a JPEG is alive, a wrong password auth-failed, a 404 not-found; ONVIF GetSystemDateAndTime against the ONVIF simulator")
    func snapshotAndONVIF() async throws {
        let clock = ManualClock()
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = client.shutdown() }
        let prober = LivenessProber(http: client, timeout: .seconds(30), maxSnapshotBytes: 8 << 20, clock: clock)
        let snapshots = SnapshotCamera(logger: Self.quietLogger())
        let snapshotServer = Task { try await snapshots.run() }
        defer { snapshotServer.cancel() }
        let port = try await snapshots.waitUntilRunning()
        let url = "http://127.0.0.1:\(port)/cgi-bin/snapshot.cgi?channel=1"
        #expect(await prober.snapshot(url, credentials: Self.credentials).problem == nil)
        #expect(await prober.snapshot(url, credentials: ("viewer", "wrong")).problem == .authFailed)
        #expect(await prober.snapshot("http://127.0.0.1:\(port)/no/such/picture", credentials: Self.credentials).problem == .notFound)
        let onvif = ONVIFCamera(logger: Self.quietLogger())
        let onvifServer = Task { try await onvif.run() }
        defer { onvifServer.cancel() }
        let onvifPort = try await onvif.waitUntilRunning()
        let answered = await prober.onvif("http://127.0.0.1:\(onvifPort)/onvif/device_service")
        #expect(answered.problem == nil, "\(answered)")
        let closedPort = try LoopbackPort.free()
        #expect(await prober.onvif("http://127.0.0.1:\(closedPort)/onvif/device_service").problem == .unreachable)
    }
}


/// The monitor in process on a ManualClock against the RTSP camera simulator, with a real queue.
@Suite("liveness monitor", .serialized)
struct LivenessMonitorTests {
    static func camera(_ id: String, url: String, extra: String = "") -> String {
        """
          - id: \(id)
            driver: generic-json
            vendor: hikvision
            type: camera
            auth: {username: viewer, password: "Cam!2025", scheme: digest}
            liveness: {url: "\(url)", interval_seconds: 30, jitter: 0, failures_to_offline: 2, min_dwell_seconds: 0\(extra)}
        """
    }

    static func health(_ fixture: IngestFixture, _ id: String) -> DeviceDirectory.Health? {
        fixture.pipeline.devices.healthSnapshot.first { $0.id == id }
    }

    static func kinds(_ fixture: IngestFixture) async throws -> [EventKind] {
        try await fixture.events().filter { [.deviceOnline, .deviceOffline].contains($0.kind) }.map(\.kind)
    }

    @Test("silent → one device.offline after two probes; a restarted monitor on the same queue takes the state silently; back → one device.online")
    func restartDoesNotReannounce() async throws {
        let camera = RTSPCamera(logger: LivenessTests.quietLogger())
        let server = Task { try await camera.run() }
        defer { server.cancel() }
        let url = camera.url(port: try await camera.waitUntilRunning())
        let clock = ManualClock()
        let fixture = try IngestFixture(devices: Self.camera("cam", url: url), extra: "liveness: {timeout_seconds: 5}", clock: clock)
        var logger = Logger(label: "liveness-tests")
        logger.logLevel = .critical
        let monitor = LivenessMonitor(pipeline: fixture.pipeline, settings: fixture.config.liveness, devices: fixture.config.devices, clock: clock, logger: logger)
        let running = Task { await monitor.run() }
        #expect(await eventually(timeout: .seconds(60)) { Self.health(fixture, "cam")?.state == .up })
        #expect(Self.health(fixture, "cam")?.liveness?.probe == "rtsp-describe")
        camera.behaviour = .silent
        // Time moves in 5-second steps: each probe's deadline, then the next round.
        #expect(await eventually(timeout: .seconds(60)) {
            if Self.health(fixture, "cam")?.state != .down { clock.advance(by: .seconds(5)) }
            return Self.health(fixture, "cam")?.state == .down
        })
        #expect(try await Self.kinds(fixture) == [.deviceOnline, .deviceOffline])
        let offline = try #require(try await fixture.events().last)
        #expect(offline.attributes?["reason"] == .string("timeout") && offline.attributes?["consecutiveFailures"] == .number(2))
        #expect(offline.source.dedupKey?.hasPrefix("liveness:cam:device.offline:") == true)
        running.cancel()
        await running.value

        // The restart: a fresh directory and pipeline over the same queue; the stored tracker says offline.
        let directory = DeviceDirectory(devices: fixture.config.devices, logger: logger, clock: clock)
        let pipeline = IngestPipeline(config: fixture.config, queue: fixture.queue, devices: directory, logger: logger)
        let restarted = LivenessMonitor(pipeline: pipeline, settings: fixture.config.liveness, devices: fixture.config.devices, clock: clock, logger: logger)
        let rerunning = Task { await restarted.run() }
        #expect(await eventually(timeout: .seconds(60)) {
            if restarted.probes("cam") < 3 { clock.advance(by: .seconds(5)) }
            return restarted.probes("cam") >= 3
        })
        #expect(directory.healthSnapshot.first?.state == .down, "the stored state, taken without an event")
        #expect(try await Self.kinds(fixture) == [.deviceOnline, .deviceOffline])
        camera.behaviour = .normal
        // Only between probes: moved during one, the clock would pass its 5 s deadline before a
        // loaded machine let the camera answer.
        #expect(await eventually(timeout: .seconds(120)) {
            if directory.healthSnapshot.first?.state != .up, restarted.probesInFlight == 0 { clock.advance(by: .seconds(5)) }
            return directory.healthSnapshot.first?.state == .up
        })
        #expect(try await Self.kinds(fixture) == [.deviceOnline, .deviceOffline, .deviceOnline])
        let online = try #require(try await fixture.events().last)
        #expect(online.attributes?["downSeconds"] != nil && online.occurredAt.milliseconds > offline.occurredAt.milliseconds)
        rerunning.cancel()
        await rerunning.value
        await fixture.finish()
    }

    @Test("a change is confirmed at retry_seconds: a silent camera is offline one retry per further failure after the first, not one interval each")
    func retryConfirmsSooner() async throws {
        let camera = RTSPCamera(logger: LivenessTests.quietLogger())
        let server = Task { try await camera.run() }
        defer { server.cancel() }
        let url = camera.url(port: try await camera.waitUntilRunning())
        let clock = ManualClock()
        let devices = """
              - id: cam
                driver: generic-json
                vendor: hikvision
                type: camera
                auth: {username: viewer, password: "Cam!2025", scheme: digest}
                liveness: {url: "\(url)", interval_seconds: 120, jitter: 0, failures_to_offline: 3, retry_seconds: 10, min_dwell_seconds: 0}
            """
        let fixture = try IngestFixture(devices: devices, extra: "liveness: {timeout_seconds: 5}", clock: clock)
        var logger = Logger(label: "liveness-tests")
        logger.logLevel = .critical
        let monitor = LivenessMonitor(pipeline: fixture.pipeline, settings: fixture.config.liveness, devices: fixture.config.devices, clock: clock, logger: logger)
        let running = Task { await monitor.run() }
        #expect(await eventually(timeout: .seconds(60)) { Self.health(fixture, "cam")?.state == .up })
        // Between probes the monitor's one timer is the next round; during a silent probe, its
        // deadline. Time moves only while exactly one is armed, so no step lands while a probe is
        // still opening its connection (a busy machine) and the clock reads the schedule exactly.
        #expect(await eventually(timeout: .seconds(60)) { clock.pendingTimers == 1 })
        camera.behaviour = .silent
        #expect(await eventually(timeout: .seconds(120)) {
            if Self.health(fixture, "cam")?.state != .down, clock.pendingTimers == 1 { clock.advance(by: .seconds(5)) }
            return Self.health(fixture, "cam")?.state == .down
        })
        let offline = try #require(try await fixture.events().last)
        #expect(offline.kind == .deviceOffline && offline.attributes?["consecutiveFailures"] == .number(3))
        // From the first failed probe's start to the announcement: two retries of 10 s, then the
        // last probe's 5 s deadline; without retries it would be two intervals, 240 s.
        let confirming = offline.receivedAt.milliseconds - offline.occurredAt.milliseconds
        #expect((25_000...30_000).contains(confirming), "\(confirming) ms")
        running.cancel()
        await running.value
        await fixture.finish()
    }

    @Test("a refused password is tried once: the camera stays online (auth-failed), later probes are OPTIONS without credentials")
    func lockout() async throws {
        let camera = RTSPCamera(behaviour: .wrongPassword, logger: LivenessTests.quietLogger())
        let server = Task { try await camera.run() }
        defer { server.cancel() }
        let url = camera.url(port: try await camera.waitUntilRunning())
        let clock = ManualClock()
        let fixture = try IngestFixture(devices: Self.camera("cam", url: url), clock: clock)
        var logger = Logger(label: "liveness-tests")
        logger.logLevel = .critical
        let monitor = LivenessMonitor(pipeline: fixture.pipeline, settings: fixture.config.liveness, devices: fixture.config.devices, clock: clock, logger: logger)
        let running = Task { await monitor.run() }
        // Time moves only between probes, so no probe's deadline passes: every verdict is the camera's.
        let advancedAfter = Mutex(0)
        #expect(await eventually(timeout: .seconds(60)) {
            let done = monitor.probes("cam")
            let move = done < 4 && advancedAfter.withLock { last in
                defer { last = done }
                return last < done
            }
            if move { clock.advance(by: .seconds(30)) }
            return done >= 4
        })
        #expect(camera.counts.refusedCredentials == 1, "credentials were sent again after a refusal")
        #expect(camera.counts.options >= 3)
        let health = try #require(Self.health(fixture, "cam"))
        #expect(health.state == .up && health.liveness?.credentialsWithheld == true && health.liveness?.probe == "rtsp-options", "\(health)")
        #expect(try await Self.kinds(fixture) == [.deviceOnline])
        running.cancel()
        await running.value
        await fixture.finish()
    }

    @Test("reload: an unchanged config restarts nothing; a changed password is tried once more; an added camera is probed; a removed one no more, its stored state deleted")
    func reload() async throws {
        let camera = RTSPCamera(behaviour: .wrongPassword, logger: LivenessTests.quietLogger())
        let server = Task { try await camera.run() }
        defer { server.cancel() }
        let url = camera.url(port: try await camera.waitUntilRunning())
        let clock = ManualClock()
        // The longest probe deadline: time moves in 10 s steps, so no deadline passes while a probe
        // that has armed it but not yet the round's next timer is in flight on a busy machine.
        let fixture = try IngestFixture(devices: Self.camera("a", url: url), extra: "liveness: {timeout_seconds: 120}", clock: clock)
        var logger = Logger(label: "liveness-tests")
        logger.logLevel = .critical
        let monitor = LivenessMonitor(pipeline: fixture.pipeline, settings: fixture.config.liveness, devices: fixture.config.devices, clock: clock, logger: logger)
        let running = Task { await monitor.run() }
        // Time moves only while one timer is armed (between probes, the round's own), so every
        // verdict is the camera's, never a deadline's.
        func probe(until done: @escaping @Sendable () -> Bool) async -> Bool {
            await eventually(timeout: .seconds(60)) {
                if !done(), clock.pendingTimers == 1 { clock.advance(by: .seconds(10)) }
                return done()
            }
        }
        #expect(await probe { monitor.probes("a") >= 2 })
        #expect(camera.counts.refusedCredentials == 1)
        #expect(monitor.apply(settings: fixture.config.liveness, devices: fixture.config.devices) == [], "the same config changes nothing")

        let changed = try LivenessTests.load(
            Self.camera("a", url: url).replacingOccurrences(of: "Cam!2025", with: "Cam!2026") + "\n" + Self.camera("b", url: url),
            extra: "liveness: {timeout_seconds: 120}")
        #expect(monitor.apply(settings: changed.liveness, devices: changed.devices) == ["liveness of a changed", "liveness on b"])
        let before = monitor.probes("a")
        #expect(await probe { monitor.probes("b") >= 2 && monitor.probes("a") >= before + 2 })
        // a's new password and b's once each, and no more.
        #expect(camera.counts.refusedCredentials == 3, "\(camera.counts)")
        #expect(try await fixture.queue.deviceCursor(LivenessMonitor.cursorKey("a")) != nil)

        let onlyB = try LivenessTests.load(Self.camera("b", url: url), extra: "liveness: {timeout_seconds: 120}")
        #expect(monitor.apply(settings: onlyB.liveness, devices: onlyB.devices) == ["liveness off a"])
        let probedA = monitor.probes("a")
        let probedB = monitor.probes("b")
        #expect(await probe { monitor.probes("b") >= probedB + 3 })
        #expect(monitor.probes("a") == probedA, "a removed camera is probed no more")
        #expect(try await fixture.queue.deviceCursor(LivenessMonitor.cursorKey("a")) == nil, "its stored state is deleted")
        #expect(camera.counts.refusedCredentials == 3)
        running.cancel()
        await running.value
        await fixture.finish()
    }

    @Test("500 cameras with a limit of 4: every camera probed, never more than 4 probes in flight as the camera counts them")
    func boundedAndStaggered() async throws {
        let camera = RTSPCamera(authentication: .none, behaviour: .slow, slowDelay: .milliseconds(20), logger: LivenessTests.quietLogger())
        let server = Task { try await camera.run() }
        defer { server.cancel() }
        let url = camera.url(port: try await camera.waitUntilRunning())
        let clock = ManualClock()
        let devices = (0..<500).map { Self.camera("cam-\($0)", url: url) }.joined(separator: "\n")
        let fixture = try IngestFixture(devices: devices, extra: "liveness: {concurrency: 4}", clock: clock)
        var logger = Logger(label: "liveness-tests")
        logger.logLevel = .critical
        let monitor = LivenessMonitor(pipeline: fixture.pipeline, settings: fixture.config.liveness, devices: fixture.config.devices, clock: clock, logger: logger)
        let running = Task { await monitor.run() }
        // Staggered: at the start only the first camera is due; the others follow over the interval.
        #expect(await eventually(timeout: .seconds(60)) { monitor.probes("cam-0") == 1 })
        #expect(camera.counts.describes == 1 && monitor.probes("cam-1") == 0)
        // The whole interval passes at once (no probe in flight, so no deadline passes with it):
        // all 500 are due together, the worst case for a burst.
        clock.advance(by: .seconds(30))
        #expect(await eventually(timeout: .seconds(300)) { camera.counts.describes >= 500 }, "\(camera.counts)")
        #expect(camera.counts.maxPendingReplies <= 4 && camera.counts.maxPendingReplies >= 1, "\(camera.counts)")
        running.cancel()
        await running.value
        await fixture.finish()
    }
}
