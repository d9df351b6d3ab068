import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseSinks
import AsyncHTTPClient
import GatehouseTesting
import Logging
import Testing

@testable import GatehouseIngest

/// Picture health's pure parts: decoding (libjpeg through the C shim), scores on pictures the
/// snapshot simulator makes, and the judge's hysteresis and learning on a ManualClock.
@Suite("picture health")
struct PictureHealthTests {
    static func snapshot(_ picture: SnapshotCamera.Picture, frame: Int = 1, width: Int = 640, height: Int = 360) throws -> [UInt8] {
        try SnapshotCamera.encode(rgb: SnapshotCamera.scene(picture, frame: frame, width: width, height: height), width: width, height: height)
    }

    static func scores(_ picture: SnapshotCamera.Picture, frame: Int = 2, previousFrame: Int? = 1) throws -> PictureScores {
        let previous = try previousFrame.map { Thumbnail(try GreyPicture.decodeJPEG(try snapshot(picture, frame: $0))) }
        return PictureScores.score(try GreyPicture.decodeJPEG(try snapshot(picture, frame: frame)), previous: previous).scores
    }

    @Test("a sharp picture scores far sharper than a blurred one; dark, covered and unchanged pictures show in their scores")
    func scoresOfGeneratedPictures() throws {
        let sharp = try Self.scores(.sharp)
        let blurred = try Self.scores(.blurred)
        let dark = try Self.scores(.dark)
        let covered = try Self.scores(.covered)
        #expect(blurred.sharpness < sharp.sharpness * 0.2, "sharp \(sharp.sharpness), blurred \(blurred.sharpness)")
        #expect(sharp.brightness > 100 && dark.brightness < 25, "\(sharp.brightness) \(dark.brightness)")
        #expect(dark.contrast >= 6, "a dark picture still has contrast: \(dark.contrast)")
        #expect(covered.contrast < 6 && sharp.contrast > 40, "\(covered.contrast) \(sharp.contrast)")
        #expect((sharp.change ?? 0) > 0.1, "a live camera's frames differ: \(String(describing: sharp.change))")
        // The same bytes again, as a frozen encoder serves them.
        let frame = try GreyPicture.decodeJPEG(try Self.snapshot(.sharp))
        let again = PictureScores.score(frame, previous: Thumbnail(frame)).scores
        #expect(again.change == 0)

        // The judge's verdicts with the sharp picture as the learned baseline.
        var learned = CameraPictureHealth()
        learned.learnHours = 0
        var judge = PictureHealthJudge()
        _ = judge.observe(sharp, at: Timestamp(milliseconds: 0), settings: learned)
        #expect(judge.problems(sharp, learned).isEmpty)
        #expect(judge.problems(blurred, learned) == [.blurred])
        #expect(judge.problems(dark, learned) == [.tooDark])
        #expect(judge.problems(covered, learned).first == .covered)
        #expect(judge.problems(again, learned) == [.frozen])
    }

    @Test("decoding reduces a large picture to about 320-640 pixels wide, grey, and keeps its full size")
    func reducedScale() throws {
        let (width, height) = (3840, 2160)
        let jpeg = try SnapshotCamera.encode(rgb: [UInt8](repeating: 90, count: width * height), width: width, height: height, components: 1)
        let picture = try GreyPicture.decodeJPEG(jpeg)
        #expect(picture.width == 480 && picture.height == 270 && picture.fullWidth == 3840 && picture.fullHeight == 2160)
        #expect(picture.pixels.count == 480 * 270)
        #expect(abs(PictureScores.meanAndDeviation(picture).mean - 90) < 2)
    }

    @Test("corrupt, truncated, non-JPEG and oversized input is a clear error, never a crash or a grey picture")
    func badInput() throws {
        let good = try Self.snapshot(.sharp)
        #expect(throws: GreyPicture.DecodeError.self) { try GreyPicture.decodeJPEG(Array("<html>401</html>".utf8)) }
        #expect(throws: GreyPicture.DecodeError.self) { try GreyPicture.decodeJPEG([]) }
        do {
            _ = try GreyPicture.decodeJPEG(Array(good.prefix(good.count / 2)))
            Issue.record("a truncated JPEG decoded")
        } catch {
            #expect(error.description.contains("JPEG decoder"), "\(error)")
        }
        var scrambled = good
        for index in stride(from: 20, to: 600, by: 3) { scrambled[index] = 0xA5 }  // the header's tables
        #expect(throws: GreyPicture.DecodeError.self) { try GreyPicture.decodeJPEG(scrambled) }
        do {
            _ = try GreyPicture.decodeJPEG(good, maxPixels: 10_000)
            Issue.record("an oversized picture decoded")
        } catch {
            #expect(error.description.contains("640x360"), "\(error)")
        }
    }

    static func bad(sharpness: Double = 10) -> PictureScores { PictureScores(sharpness: sharpness, brightness: 120, contrast: 50, change: 3) }
    static func good(sharpness: Double = 1000) -> PictureScores { PictureScores(sharpness: sharpness, brightness: 120, contrast: 50, change: 3) }

    @Test("hysteresis: raised after raise_after bad snapshots in a row, cleared after clear_after good ones, once each")
    func hysteresis() {
        let clock = ManualClock()
        var settings = CameraPictureHealth()
        settings.minSharpness = 100
        settings.raiseAfter = 3
        settings.clearAfter = 2
        var judge = PictureHealthJudge()
        func observe(_ scores: PictureScores) -> PictureHealthJudge.Transition? {
            clock.advance(by: .seconds(600))
            return judge.observe(scores, at: clock.now, settings: settings)
        }
        #expect(observe(Self.bad()) == nil)
        #expect(observe(Self.bad()) == nil)
        #expect(observe(Self.good()) == nil)  // the streak is broken
        let start = clock.now.adding(seconds: 600)
        #expect(observe(Self.bad()) == nil)
        #expect(observe(Self.bad()) == nil)
        #expect(observe(Self.bad()) == .degraded(.init(reason: .blurred, since: start), problems: [.blurred]))
        #expect(observe(Self.bad()) == nil)  // still degraded: not announced again
        #expect(observe(Self.good()) == nil)
        #expect(observe(Self.bad()) == nil)
        let firstGood = clock.now.adding(seconds: 600)
        #expect(observe(Self.good()) == nil)
        #expect(observe(Self.good()) == .restored(.init(reason: .blurred, since: start), at: firstGood))
        #expect(observe(Self.good()) == nil)
        #expect(judge.degradation == nil)
    }

    @Test("the sharpness baseline is the median of the camera's first learn_hours; blurred is a fraction of it; a set minimum learns nothing")
    func learning() throws {
        let clock = ManualClock()
        var settings = CameraPictureHealth()
        settings.learnHours = 24
        settings.raiseAfter = 1
        settings.clearAfter = 1
        var judge = PictureHealthJudge()
        // A dim camera: its own sharpness is ~200, far below what a bright one scores.
        for sharpness in [180.0, 200, 220, 190, 210] {
            #expect(judge.observe(Self.good(sharpness: sharpness), at: clock.now, settings: settings) == nil)
            clock.advance(by: .seconds(3600))
        }
        #expect(judge.baseline == nil && judge.blurLimit(settings) == nil)  // fewer than six samples: no verdict yet
        _ = judge.observe(Self.good(sharpness: 205), at: clock.now, settings: settings)
        #expect(judge.blurLimit(settings) == (200 + 205) / 2 * 0.35)
        clock.advance(by: .seconds(19 * 3600))
        // Learning is over: the baseline is fixed from what was learned, this snapshot not included.
        #expect(judge.observe(Self.good(sharpness: 5000), at: clock.now, settings: settings) == nil)
        let baseline = try #require(judge.baseline)
        #expect(baseline == 202.5)
        clock.advance(by: .seconds(600))
        #expect(judge.observe(Self.good(sharpness: 60), at: clock.now, settings: settings) != nil)  // below 0.35 × 202.5
        clock.advance(by: .seconds(600))
        #expect(judge.observe(Self.good(sharpness: 150), at: clock.now, settings: settings) != nil)  // restored: 150 is this camera's normal
        // The judge survives a restart as JSON.
        let restored = try JSONDecoder().decode(PictureHealthJudge.self, from: JSONEncoder().encode(judge))
        #expect(restored == judge)

        var fixed = settings
        fixed.minSharpness = 50
        var absolute = PictureHealthJudge()
        _ = absolute.observe(Self.good(sharpness: 200), at: clock.now, settings: fixed)
        #expect(absolute.samples.isEmpty && absolute.blurLimit(fixed) == 50)
    }

    @Test("snapshot Digest: the notes' vector C, with the request target byte for byte")
    func digestVector() throws {
        let challenge = try #require(HikvisionDigestClient.challenge(
            #"Digest realm="Login to 4L0C7E1PAZ", qop="auth", nonce="1873054219", opaque="5ccc069c403ebaf9f0171e9517f40e41""#))
        let uri = SnapshotFetcher.requestTarget("http://192.0.2.32/cgi-bin/snapshot.cgi?channel=1")
        #expect(uri == "/cgi-bin/snapshot.cgi?channel=1")
        let header = HikvisionDigestClient.authorization(challenge, method: "GET", uri: uri, username: "viewer", password: "Cam!2025", cnonce: "9a1e3f", nc: 1)
        #expect(header.contains(#"response="9d40dce166d6b383e396b45b35836718""#), "\(header)")
    }

    @Test("brand default snapshot URLs from the device's address")
    func brandDefaults() {
        #expect(CameraPictureHealth.defaultSnapshotURL(vendor: "hikvision", address: "192.0.2.31") == "http://192.0.2.31/ISAPI/Streaming/channels/101/picture")
        #expect(CameraPictureHealth.defaultSnapshotURL(vendor: "Dahua", address: "192.0.2.32:8080") == "http://192.0.2.32:8080/cgi-bin/snapshot.cgi?channel=1")
        #expect(CameraPictureHealth.defaultSnapshotURL(vendor: "uniview", address: "192.0.2.33") == nil)
        #expect(CameraPictureHealth.defaultSnapshotURL(vendor: "hikvision", address: nil) == nil)
    }
}

/// The `picture_health:` blocks as the config loader reads them.
@Suite("picture health config")
struct PictureHealthConfigTests {
    static func parse(_ devices: String, top: String = "") throws(ConfigError) -> GatehouseConfig {
        try ConfigLoader.parse(
            """
            site: s
            \(top)
            devices:
            \(devices)
            sinks:
              - {name: out, type: file, path: /tmp/out}
            """, file: "test.yaml", knownDrivers: ["generic-json"], sinkTypes: SinkRegistry.readers)
    }

    @Test("defaults, a brand URL from the address, the shared settings")
    func reads() throws {
        let config = try Self.parse(
            """
              - id: cam
                driver: generic-json
                vendor: hikvision
                type: camera
                address: 192.0.2.31
                picture_health: {interval_seconds: 300, min_sharpness: 40}
            """, top: "picture_health: {concurrency: 2, timeout_seconds: 5}")
        let health = try #require(config.devices.first?.pictureHealth)
        #expect(health.snapshotURL == "http://192.0.2.31/ISAPI/Streaming/channels/101/picture")
        #expect(health.intervalSeconds == 300 && health.minSharpness == 40 && health.raiseAfter == 3 && health.learnHours == 72)
        #expect(config.pictureHealth == PictureHealthSettings(concurrency: 2, timeoutSeconds: 5))
    }

    @Test("source: onvif is the default for an onvif camera without snapshot_url, can be asked for on any camera, and needs an address and no snapshot_url")
    func onvifSource() throws {
        let config = try ConfigLoader.parse(
            """
            site: s
            devices:
              - {id: a, driver: onvif, type: camera, address: 192.0.2.40, picture_health: {}}
              - {id: b, driver: onvif, type: camera, address: 192.0.2.41, picture_health: {snapshot_url: "http://192.0.2.41/snap.jpg"}}
              - {id: c, driver: generic-json, vendor: uniview, type: camera, address: 192.0.2.42:8000, picture_health: {source: onvif}}
            sinks:
              - {name: out, type: file, path: /tmp/out}
            """, file: "test.yaml", knownDrivers: ["generic-json", "onvif"], sinkTypes: SinkRegistry.readers)
        let health = config.devices.map { $0.pictureHealth }
        #expect(health[0]?.source == .onvif && health[0]?.snapshotURL == nil)
        #expect(health[1]?.source == .url && health[1]?.snapshotURL == "http://192.0.2.41/snap.jpg")
        #expect(health[2]?.source == .onvif)
        do {
            _ = try ConfigLoader.parse(
                """
                site: s
                devices:
                  - {id: a, driver: generic-json, type: camera, picture_health: {source: onvif}}
                  - {id: b, driver: onvif, type: camera, address: 192.0.2.41, picture_health: {source: onvif, snapshot_url: "http://192.0.2.41/x"}}
                  - {id: c, driver: onvif, type: camera, address: 192.0.2.41, picture_health: {source: rtsp}}
                sinks:
                  - {name: out, type: file, path: /tmp/out}
                """, file: "test.yaml", knownDrivers: ["generic-json", "onvif"], sinkTypes: SinkRegistry.readers)
            Issue.record("accepted")
        } catch {
            let keys = error.diagnostics.map(\.key)
            #expect(keys.contains("devices[0].picture_health.source") && error.description.contains("address"), "\(error)")
            #expect(keys.contains("devices[1].picture_health.snapshot_url"), "\(error)")
            #expect(keys.contains("devices[2].picture_health.source") && error.description.contains("url, onvif"), "\(error)")
        }
    }

    @Test("a camera with no snapshot URL and no brand default stops start-up at its line, naming what would be valid")
    func missingURL() {
        do {
            _ = try Self.parse(
                """
                  - id: cam
                    driver: generic-json
                    vendor: uniview
                    type: camera
                    address: 192.0.2.33
                    picture_health:
                      raise_after: 0
                """)
            Issue.record("accepted")
        } catch {
            let keys = error.diagnostics.map(\.key)
            #expect(keys.contains("devices[0].picture_health.snapshot_url"), "\(error)")
            #expect(keys.contains("devices[0].picture_health.raise_after"), "\(error)")
            #expect(error.description.contains("uniview") && error.description.contains("hikvision, dahua"), "\(error)")
            #expect(error.diagnostics.allSatisfy { $0.line >= 8 }, "\(error.diagnostics.map(\.line))")
        }
    }
}

/// The monitor in process, on a ManualClock, against two snapshot camera simulators.
@Suite("picture health monitor")
struct PictureHealthMonitorTests {
    @Test("first snapshots are staggered over one interval, then one per interval on that phase; state is stored per camera")
    func staggered() async throws {
        var logger = Logger(label: "snapshot-sim")
        logger.logLevel = .warning
        let cameras = [SnapshotCamera(logger: logger), SnapshotCamera(logger: logger)]
        let servers = cameras.map { camera in Task { try await camera.run() } }
        defer { for server in servers { server.cancel() } }
        var ports: [Int] = []
        for camera in cameras { ports.append(try await camera.waitUntilRunning()) }
        let clock = ManualClock()
        let fixture = try IngestFixture(
            devices: ports.enumerated().map { index, port in
                """
                  - id: cam-\(index)
                    driver: generic-json
                    vendor: dahua
                    type: camera
                    address: 127.0.0.1:\(port)
                    auth: {username: viewer, password: "Cam!2025", scheme: digest}
                    picture_health: {interval_seconds: 600}
                """
            }.joined(separator: "\n"), extra: "picture_health: {concurrency: 1}", clock: clock)
        let monitor = PictureHealthMonitor(
            pipeline: fixture.pipeline, settings: fixture.config.pictureHealth, devices: fixture.config.devices, clock: clock, logger: logger)
        let running = Task { await monitor.run() }
        let start = clock.now

        #expect(await eventually(timeout: .seconds(60)) { monitor.figures("cam-0")?.snapshots == 1 })
        #expect(cameras[1].snapshotsServed == 0)  // its first snapshot is half an interval later
        // Time moves in 10-second steps until each next snapshot: when it was asked for is what counts.
        #expect(await eventually(timeout: .seconds(60)) {
            if monitor.figures("cam-1")?.snapshots != 1 { clock.advance(by: .seconds(10)) }
            return monitor.figures("cam-1")?.snapshots == 1
        })
        let second = try #require(monitor.figures("cam-1")?.lastAskedAt)
        #expect(second.milliseconds - start.milliseconds >= 300_000)
        #expect(await eventually(timeout: .seconds(60)) {
            if monitor.figures("cam-0")?.snapshots != 2 { clock.advance(by: .seconds(10)) }
            return monitor.figures("cam-0")?.snapshots == 2
        })
        let third = try #require(monitor.figures("cam-0")?.lastAskedAt)
        #expect(third.milliseconds - start.milliseconds >= 600_000)
        #expect(monitor.figures("cam-0")?.failures == 0 && monitor.figures("cam-0")?.lastScores?.change != nil)
        // Each camera's judge is stored under its own cursor, not the device's.
        #expect(try await fixture.queue.deviceCursor("picture-health:cam-0") != nil)
        #expect(try await fixture.queue.deviceCursor("cam-0") == nil)
        #expect(try await fixture.events().isEmpty)  // healthy pictures raise nothing
        running.cancel()
        await running.value
        await fixture.finish()
    }
}

/// The snapshot fetcher against the simulator with each way a camera protects its snapshot.
@Suite("snapshot fetcher")
struct SnapshotFetcherTests {
    @Test("Digest, Basic and no authentication give the JPEG; a wrong password and a missing one are clear errors, asked once")
    func authentication() async throws {
        var logger = Logger(label: "snapshot-sim")
        logger.logLevel = .critical
        // A thrown request must not skip the shutdown (a dropped client stops the test process).
        try await withHTTPClient { client in
            let fetcher = SnapshotFetcher(client: client, timeout: .seconds(30), maxBytes: 8 << 20)
            for scheme in SnapshotCamera.Authentication.allCases {
                let camera = SnapshotCamera(authentication: scheme, logger: logger)
                let server = Task { try await camera.run() }
                let port = try await camera.waitUntilRunning()
                let url = "http://127.0.0.1:\(port)/cgi-bin/snapshot.cgi?channel=1"
                let jpeg = try await fetcher.fetch(url, username: "viewer", password: "Cam!2025")
                #expect(try GreyPicture.decodeJPEG(jpeg).width == 320, "\(scheme)")
                if scheme != .none {
                    await #expect(throws: SnapshotFetcher.Failure.self) { try await fetcher.fetch(url, username: "viewer", password: "wrong") }
                    #expect(camera.refusedCredentials == 1, "\(scheme): one try with the wrong password, no storm")
                    do {
                        _ = try await fetcher.fetch(url, username: nil, password: nil)
                        Issue.record("\(scheme): fetched without credentials")
                    } catch {
                        #expect("\(error)".contains("401") && "\(error)".contains("auth:"), "\(error)")
                    }
                }
                server.cancel()
            }
            // A snapshot over the limit is refused, not read whole.
            let camera = SnapshotCamera(authentication: .none, logger: logger)
            let server = Task { try await camera.run() }
            let port = try await camera.waitUntilRunning()
            let small = SnapshotFetcher(client: client, timeout: .seconds(30), maxBytes: 1024)
            do {
                _ = try await small.fetch("http://127.0.0.1:\(port)/ISAPI/Streaming/channels/101/picture", username: nil, password: nil)
                Issue.record("an oversized snapshot was read")
            } catch {
                #expect("\(error)".contains("max_snapshot_bytes"), "\(error)")
            }
            server.cancel()
        }
    }
}
