import AsyncHTTPClient
import Foundation
import GatehouseConsole
@testable import GatehouseCore
@testable import GatehouseIngest
import GatehouseQueue
import GatehouseTesting
import Hummingbird
import Logging
import NIOCore
import NIOSSL
import Synchronization
import Testing

/// A real console on 127.0.0.1, port 0, over a real queue; the daemon's own status collector and
/// replayer are exercised by the browser test (scripts/console-browser-test.py).
final class ConsoleHarness: Sendable {
    let fixture: QueueFixture
    let clock = ManualClock(start: .now)
    /// What the console asked the backend to do.
    final class Calls: Sendable {
        let replayed = Mutex<[Int64]>([])
        let activated = Mutex<[String]>([])
        let reloads = Mutex(0)
        let statusReports = Mutex(0)
        /// What the device directory would hold as each device's last raw payload.
        let lastPayloads = Mutex<[String: LastPayload]>([:])
    }
    let calls = Calls()
    /// The policy the backend shows last payloads under: plates masked.
    static let privacy = PrivacyPolicy(modes: [.plate: .mask], hashSecret: nil)
    let log: CapturingLogHandler.Store
    let server: Task<Void, any Error>
    let port: Int
    let client: HTTPClient
    static let password = "correct horse battery staple"
    static let devices = [
        DeviceDirectory.Health(id: "gate-1", driver: "generic-json", state: .up, since: .now, reason: nil, lastSeen: .now, events: 3, detail: nil),
        DeviceDirectory.Health(
            id: "door-2", driver: "zkteco", state: .down, since: .now, reason: "no heartbeat for 90 s", lastSeen: nil, events: 0, detail: nil),
    ]

    /// Runs `body` against a fresh console; the server, the client and the queue's folder are
    /// cleaned up however `body` ends.
    /// With `tls`, the listener speaks HTTPS only (admin.tls) and the client trusts the test CA.
    static func with(sessionMinutes: Double = 30, tls: TestCertificates? = nil, _ body: (ConsoleHarness) async throws -> Void) async throws {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        if let tls {
            var trust = TLSConfiguration.makeClientConfiguration()
            trust.trustRoots = .file(tls.ca)
            configuration.tlsConfiguration = trust
        }
        try await withHTTPClient(configuration: configuration) { client in
            let harness = try await ConsoleHarness(client: client, sessionMinutes: sessionMinutes, tls: tls)
            defer { harness.stop() }
            try await body(harness)
        }
    }

    let scheme: String

    private init(client: HTTPClient, sessionMinutes: Double, tls: TestCertificates?) async throws {
        self.client = client
        scheme = tls == nil ? "http" : "https"
        let fixture = try QueueFixture()
        self.fixture = fixture
        let (logger, store) = CapturingLogHandler.logger()
        log = store
        let hash = try PasswordCheck.hash(Self.password, logRounds: 10)
        var settings = ConsoleSettings(users: [.init(name: "installer", passwordHash: hash)], sessionMinutes: sessionMinutes)
        settings.secureCookies = tls != nil
        let queue = fixture.queue
        let calls = self.calls
        var backend = ConsoleBackend(
            status: {
                calls.statusReports.withLock { $0 += 1 }
                var status = ConsoleStatus(
                    site: "lakeside", startedAt: Timestamp(milliseconds: Timestamp.now.milliseconds - 3_600_000), generatedAt: .now,
                    devices: Self.devices, queue: try await queue.stats(), sinks: [], failedSinks: ["central": "connection refused"])
                status.eventsPerMinute = ["gate-1": 12.25]
                status.clockOffsets = ["gate-1": -42.4]
                return status
            },
            queue: queue,
            replay: { entry in
                calls.replayed.withLock { $0.append(entry.id) }
                try await queue.markReplayed(id: entry.id, eventIDs: [])
                return []
            },
            reload: { calls.reloads.withLock { $0 += 1 } },
            adaptersDirectory: { fixture.directory.appendingPathComponent("adapters").path })
        backend.configFileProblem = { nil }
        backend.lastPayload = { id in calls.lastPayloads.withLock { $0[id] }?.shown(under: Self.privacy) }
        backend.activateProfile = { profile, device in
            guard device == "gate-1" else { throw ConsoleBackendUnavailable(description: "device '\(device)' is not in the config file") }
            calls.activated.withLock { $0.append("\(profile)→\(device)") }
            return "written and reloaded"
        }
        let console = try WebConsole(settings: settings, backend: backend, clock: clock, logger: logger)
        let router = Router()
        console.register(on: router)
        let bound = Mutex<Int?>(nil)
        let app = Application(
            router: router, server: try AdminTLS.serverBuilder(tls.map { AdminTLSFiles(certificateFile: $0.serverCert, keyFile: $0.serverKey) }),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in bound.withLock { $0 = channel.localAddress?.port } }, logger: testLogger())
        server = Task { try await app.runService() }
        _ = await eventually(timeout: .seconds(60)) { bound.withLock { $0 } != nil }
        port = bound.withLock { $0 } ?? 0
    }

    private func stop() {
        server.cancel()
        fixture.remove()
    }

    struct Answer {
        var status: Int
        var body: String
        var cookie: String?
        var headers: [String: String]
    }

    func get(_ path: String, cookie: String? = nil, language: String? = nil, headers: [String: String] = [:]) async throws -> Answer {
        var request = HTTPClientRequest(url: "\(scheme)://127.0.0.1:\(port)\(path)")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let cookie { request.headers.add(name: "Cookie", value: cookie) }
        if let language { request.headers.add(name: "Accept-Language", value: language) }
        return try await send(request)
    }

    func post(_ path: String, form: [String: String], cookie: String? = nil) async throws -> Answer {
        var request = HTTPClientRequest(url: "\(scheme)://127.0.0.1:\(port)\(path)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        if let cookie { request.headers.add(name: "Cookie", value: cookie) }
        var components = URLComponents()
        components.queryItems = form.map { URLQueryItem(name: $0.key, value: $0.value) }
        request.body = .bytes(ByteBuffer(string: components.percentEncodedQuery ?? ""))
        return try await send(request)
    }

    private func send(_ request: HTTPClientRequest) async throws -> Answer {
        let response = try await client.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 4 << 20)
        let cookie = response.headers["Set-Cookie"].first.flatMap { $0.split(separator: ";").first.map(String.init) }
        var headers: [String: String] = [:]
        for header in response.headers { headers[header.name.lowercased()] = header.value }
        return Answer(status: Int(response.status.code), body: String(buffer: body), cookie: cookie, headers: headers)
    }

    /// Logs in; the session cookie and the CSRF token the pages carry.
    func login() async throws -> (cookie: String, csrf: String) {
        let answer = try await post("/console/login", form: ["user": "installer", "password": Self.password])
        #expect(answer.status == 303)
        let cookie = try #require(answer.cookie)
        let page = try await get("/console", cookie: cookie)
        return (cookie, try #require(Self.csrf(in: page.body)))
    }

    static func csrf(in html: String) -> String? {
        guard let range = html.range(of: "name=\"csrf\" value=\"") else { return nil }
        let rest = html[range.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }

    func quarantine(_ body: String, device: String? = "gate-1") async throws -> Int64 {
        try await fixture.queue.quarantine(
            QuarantineRecord(deviceID: device, driver: "generic-json", route: "/push/gate-1", contentType: "application/json", remote: "10.0.0.9",
                reason: "no mapping for field 'plate' value \"川A12345\"", payload: Data(body.utf8)))
    }
}

@Suite("Console pages")
struct ConsolePageTests {
    @Test("the overview shows the status figures and a down device, live from its JSON endpoint")
    func overview() async throws {
        try await ConsoleHarness.with { harness in
            let page = try await harness.get("/console")
            #expect(page.status == 200)
            #expect(page.body.contains("lakeside"))
            #expect(page.body.contains(GatehouseVersion.current))
            #expect(page.body.contains("data-live=\"/console/api/overview\""))
            #expect(page.body.contains("no heartbeat for 90 s"))
            #expect(page.body.contains("connection refused"))
            #expect(page.headers["content-security-policy"]?.contains("default-src 'self'") == true)
            let live = try await harness.get("/console/api/overview")
            let json = try JSONSerialization.jsonObject(with: Data(live.body.utf8)) as? [String: Any]
            let fields = try #require(json?["fields"] as? [String: String])
            #expect(fields["devices-up"] == "1/2")
            #expect(fields["depth"] == "0")
        }
    }

    @Test("live pages polled within a second share one status report; a change or a second later makes a new one")
    func statusShared() async throws {
        try await ConsoleHarness.with { harness in
            for _ in 0..<5 { _ = try await harness.get("/console/api/overview") }
            _ = try await harness.get("/console/api/devices")
            #expect(harness.calls.statusReports.withLock { $0 } == 1)
            harness.clock.advance(by: .seconds(1))
            _ = try await harness.get("/console/api/overview")
            #expect(harness.calls.statusReports.withLock { $0 } == 2)
            let (cookie, csrf) = try await harness.login()
            let before = harness.calls.statusReports.withLock { $0 }
            _ = try await harness.post("/console/reload", form: ["csrf": csrf], cookie: cookie)
            #expect(harness.calls.statusReports.withLock { $0 } > before, "the page after a reload reads a fresh report")
        }
    }

    @Test("the live event feed is read once a second for all browsers; a second later, or after a change, it is read afresh")
    func feedShared() async throws {
        try await ConsoleHarness.with { harness in
            let ids = EventIDGenerator()
            func event(_ plate: String) -> Event {
                Event(
                    id: ids.next(), kind: .vehicleEntry, occurredAt: .now, receivedAt: .now, site: "lakeside",
                    device: DeviceRef(id: "gate-1", vendor: "v", type: .lprCamera), subject: Subject(type: .plate, value: plate, treatment: .masked),
                    source: Source(driver: "test"))
            }
            _ = try await harness.fixture.queue.appendNow([event("川A1***1")])
            #expect(try await harness.get("/console/api/events").body.contains("川A1***1"))
            _ = try await harness.fixture.queue.appendNow([event("川A2***2")])
            #expect(!(try await harness.get("/console/api/events").body.contains("川A2***2")), "the same second's feed is shared")
            #expect(try await harness.get("/console/api/events?device=gate-1").body.contains("川A2***2"), "another filter is its own feed")
            harness.clock.advance(by: .seconds(1))
            #expect(try await harness.get("/console/api/events").body.contains("川A2***2"))
            _ = try await harness.fixture.queue.appendNow([event("川A3***3")])
            let (cookie, csrf) = try await harness.login()
            _ = try await harness.post("/console/reload", form: ["csrf": csrf], cookie: cookie)
            #expect(try await harness.get("/console/api/events").body.contains("川A3***3"), "a change reads afresh")
        }
    }

    @Test("the browser's language picks Chinese or English")
    func language() async throws {
        #expect(Language.preferred(acceptLanguage: "zh-CN,zh;q=0.9,en;q=0.8") == .zh)
        #expect(Language.preferred(acceptLanguage: "en-US,zh;q=0.5") == .en)
        #expect(Language.preferred(acceptLanguage: "fr, zh-TW;q=0.3") == .zh)
        #expect(Language.preferred(acceptLanguage: nil) == .en)
        #expect(Set(Language.en.words.keys) == Set(Language.zh.words.keys))
        try await ConsoleHarness.with { harness in
            let page = try await harness.get("/console/devices", language: "zh-CN,zh;q=0.9")
            #expect(page.body.contains("<html lang=\"zh\""))
            #expect(page.body.contains("设备"))
            #expect(page.body.contains("state-down"))
        }
    }

    @Test("the devices page shows each device's event rate and clock offset, live, under one heading")
    func deviceFigures() async throws {
        try await ConsoleHarness.with { harness in
            let page = try await harness.get("/console/devices")
            #expect(page.body.contains(">12.2<") || page.body.contains(">12.3<"), "events per minute, one decimal")
            #expect(page.body.contains(">-42 s<"))
            #expect(!page.body.contains("<h2>Devices</h2>"), "the page heading is the only one")
            let live = try await harness.get("/console/api/devices")
            #expect(live.body.contains("-42 s"))
            let device = try await harness.get("/console/devices/gate-1")
            #expect(device.body.contains("id=\"f-rate\">12.") && device.body.contains("id=\"f-clock-offset\">-42 s"), "\(device.body)")
            let silent = try await harness.get("/console/devices/door-2")
            #expect(silent.body.contains("id=\"f-rate\">-<") && silent.body.contains("id=\"f-clock-offset\">-<"))
        }
    }

    @Test("the device page shows its last raw payload under the privacy policy, live: the plate masked, never in clear")
    func lastPayload() async throws {
        try await ConsoleHarness.with { harness in
            let before = try await harness.get("/console/devices/gate-1")
            #expect(before.body.contains("nothing received since the daemon started"))
            let body = Array(#"{"kind":"vehicle.entry","subject":{"type":"plate","value":"川F12345"},"attributes":{"lane":"east"}}"#.utf8)
            let drafts = try GenericJSONDecoder.decode(body, zone: TimeZone(identifier: "UTC")!)
            harness.calls.lastPayloads.withLock {
                $0["gate-1"] = LastPayload(body, contentType: "application/json", receivedAt: .now, mapped: drafts)
            }
            harness.clock.advance(by: .seconds(1))
            // Without a login: when, what type and how big, never the text.
            let anonymous = try await harness.get("/console/devices/gate-1")
            #expect(anonymous.body.contains("Log in to see the payload itself") && !anonymous.body.contains("F1***5") && !anonymous.body.contains("east"))
            #expect(anonymous.body.contains("id=\"f-last-payload-type\">application/json<"))
            let anonymousLive = try await harness.get("/console/api/devices/gate-1")
            #expect(anonymousLive.body.contains("Log in to see the payload itself") && !anonymousLive.body.contains("F1"))
            let (cookie, _) = try await harness.login()
            let page = try await harness.get("/console/devices/gate-1", cookie: cookie)
            #expect(page.body.contains("id=\"last-payload\"") && page.body.contains("川F1***5") && page.body.contains("east"), "\(page.body)")
            #expect(!page.body.contains("川F12345") && !page.body.contains("F12345"))
            // The live JSON, rendered once a second and shared, keeps readers and users apart.
            let live = try await harness.get("/console/api/devices/gate-1", cookie: cookie)
            #expect(live.body.contains("川F1***5") && !live.body.contains("F12345"))
            let json = try JSONSerialization.jsonObject(with: Data(live.body.utf8)) as? [String: Any]
            let fields = try #require(json?["fields"] as? [String: String])
            #expect(fields["last-payload"]?.hasPrefix(#"{"kind":"vehicle.entry""#) == true)
        }
    }

    @Test("a live page's JSON is rendered once a second for all browsers, and answered 304 while it has not changed")
    func liveConditional() async throws {
        try await ConsoleHarness.with { harness in
            let first = try await harness.get("/console/api/overview")
            let etag = try #require(first.headers["etag"])
            for _ in 0..<3 {
                let again = try await harness.get("/console/api/overview", headers: ["If-None-Match": etag])
                #expect(again.status == 304 && again.body.isEmpty)
            }
            #expect(try await harness.get("/console/api/overview", headers: ["If-None-Match": "\"other\""]).status == 200)
            harness.clock.advance(by: .seconds(1))
            #expect(try await harness.get("/console/api/overview", headers: ["If-None-Match": etag]).status == 304, "same figures, same tag")
            #expect(harness.calls.statusReports.withLock { $0 } == 2, "one report a second, whatever the number of polls")
            let ids = EventIDGenerator()
            _ = try await harness.fixture.queue.appendNow([
                Event(
                    id: ids.next(), kind: .doorOpened, occurredAt: .now, receivedAt: .now, site: "lakeside",
                    device: DeviceRef(id: "gate-1", vendor: "v", type: .doorController), source: Source(driver: "test"))
            ])
            harness.clock.advance(by: .seconds(1))
            let changed = try await harness.get("/console/api/overview", headers: ["If-None-Match": etag])
            #expect(changed.status == 200 && changed.headers["etag"] != etag && changed.body.contains(#""depth":"1""#), "\(changed.body)")
        }
    }

    @Test("event search filters by kind, device and time range; subjects appear as stored")
    func eventSearch() async throws {
        try await ConsoleHarness.with { harness in
            let ids = EventIDGenerator()
            let now = Timestamp.now
            func event(_ kind: EventKind, _ device: String, _ plate: String, at time: Timestamp) -> Event {
                Event(
                    id: ids.next(), kind: kind, occurredAt: time, receivedAt: time, site: "lakeside",
                    device: DeviceRef(id: device, vendor: "v", type: .doorController), subject: Subject(type: .plate, value: plate, treatment: .masked),
                    source: Source(driver: "test"))
            }
            _ = try await harness.fixture.queue.appendNow([
                event(.vehicleEntry, "gate-1", "川A1***5", at: now),
                event(.accessDenied, "door-2", "川B2***6", at: now),
                event(.vehicleEntry, "gate-1", "川C3***7", at: Timestamp(milliseconds: now.milliseconds - 86_400_000)),
            ])
            let byKind = try await harness.get("/console/events?kind=vehicle.entry")
            #expect(byKind.body.contains("川A1***5") && byKind.body.contains("川C3***7") && !byKind.body.contains("川B2***6"))
            let byDevice = try await harness.get("/console/api/events?device=door-2")
            #expect(byDevice.body.contains("access.denied") && !byDevice.body.contains("vehicle.entry"))
            let from = Timestamp(milliseconds: now.milliseconds - 3_600_000).rfc3339
            let recent = try await harness.get("/console/events?kind=vehicle.entry&from=\(from)")
            #expect(recent.body.contains("川A1***5") && !recent.body.contains("川C3***7"))
            let bad = try await harness.get("/console/events?from=yesterday")
            #expect(bad.body.contains("yesterday?"))
        }
    }

    @Test("quarantine lists the redacted reason; the decoded payload needs a login")
    func quarantineShow() async throws {
        try await ConsoleHarness.with { harness in
            let id = try await harness.quarantine(#"{"plate":"川A12345"}"#)
            let list = try await harness.get("/console/quarantine")
            #expect(list.body.contains("/console/quarantine/\(id)"))
            #expect(!list.body.contains("川A12345"))
            let anonymous = try await harness.get("/console/quarantine/\(id)")
            #expect(anonymous.body.contains("payload-hidden"))
            #expect(!anonymous.body.contains("川A12345"))
            let (cookie, _) = try await harness.login()
            let shown = try await harness.get("/console/quarantine/\(id)", cookie: cookie)
            #expect(shown.body.contains("川A12345"))
            #expect(try await harness.get("/console/quarantine/999999").status == 404)
        }
    }
}

@Suite("Console profiles")
struct ConsoleProfileTests {
    /// The shipped zhenshi-lpr profile and one that does not load, in the harness's adapters folder.
    static func adapters(_ harness: ConsoleHarness) throws -> URL {
        let folder = harness.fixture.directory.appendingPathComponent("adapters")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("broken"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: GatehouseTesting.repositoryRoot.appendingPathComponent("adapters/zhenshi-lpr"), to: folder.appendingPathComponent("zhenshi-lpr"))
        try "format: 1\nname: broken\nvendor: x\nbody: {format: jsno}\n".write(
            to: folder.appendingPathComponent("broken/profile.yaml"), atomically: true, encoding: .utf8)
        return folder
    }

    @Test("the profiles page lists loaded profiles and names a broken one's file, line and key")
    func list() async throws {
        try await ConsoleHarness.with { harness in
            _ = try Self.adapters(harness)
            let page = try await harness.get("/console/profiles")
            #expect(page.body.contains("zhenshi-lpr"))
            #expect(page.body.contains("broken/profile.yaml:4"), "\(page.body)")
            #expect(page.body.contains("body.format"))
        }
    }

    @Test("the tester maps a pasted payload into events and the reply, and shows why one does not map")
    func tester() async throws {
        try await ConsoleHarness.with { harness in
            let folder = try Self.adapters(harness)
            let sample = try String(contentsOf: folder.appendingPathComponent("zhenshi-lpr/samples/entry-read.json"), encoding: .utf8)
            let mapped = try await harness.post("/console/profiles/test", form: ["profile": "zhenshi-lpr", "payload": sample])
            #expect(mapped.status == 200)
            #expect(mapped.body.contains("id=\"test-result\""))
            #expect(mapped.body.contains("vehicle.detected"), "\(mapped.body)")
            #expect(mapped.body.contains("&quot;reply&quot;"))
            let truncated = try String(contentsOf: folder.appendingPathComponent("zhenshi-lpr/samples/malformed-truncated.json"), encoding: .utf8)
            let unmapped = try await harness.post("/console/profiles/test", form: ["profile": "zhenshi-lpr", "payload": truncated])
            #expect(unmapped.body.contains("&quot;error&quot;"), "\(unmapped.body)")
        }
    }

    @Test("a draft profile is scaffolded from a device's captured payloads only by a logged-in user, with the CSRF token, and logged")
    func scaffold() async throws {
        try await ConsoleHarness.with { harness in
            let folder = try Self.adapters(harness)
            _ = try await harness.quarantine(#"{"Plate":{"number":"川A12345","time":"2026-12-01 08:00:00","lane":"1"}}"#)
            let form = ["device": "gate-1", "name": "acme-lpr"]
            #expect(try await harness.post("/console/profiles/scaffold", form: form).status == 401)
            let (cookie, csrf) = try await harness.login()
            #expect(try await harness.post("/console/profiles/scaffold", form: form, cookie: cookie).status == 403)
            let bad = try await harness.post("/console/profiles/scaffold", form: ["device": "gate-1", "name": "../etc", "csrf": csrf], cookie: cookie)
            #expect(bad.body.contains("flash error"))
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("acme-lpr").path))
            let made = try await harness.post("/console/profiles/scaffold", form: form.merging(["csrf": csrf]) { $1 }, cookie: cookie)
            #expect(made.status == 200)
            #expect(made.body.contains("id=\"scaffolded\""))
            let draft = try String(contentsOf: folder.appendingPathComponent("acme-lpr/profile.yaml"), encoding: .utf8)
            #expect(draft.contains("name: acme-lpr"))
            let samples = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("acme-lpr/samples").path)
            let sample = try #require(samples.first { $0.hasSuffix(".json") })
            let sampleText = try String(contentsOf: folder.appendingPathComponent("acme-lpr/samples/\(sample)"), encoding: .utf8)
            #expect(!sampleText.contains("川A12345"), "the scaffold's samples replace personal values: \(sampleText)")
            #expect(harness.log.all.contains { $0.message.contains("installer scaffolded profile acme-lpr") })
        }
    }

    @Test("a profile.yaml is edited from its page: saved only when the loader takes it, its findings shown with line and key otherwise")
    func editProfile() async throws {
        try await ConsoleHarness.with { harness in
            let folder = try Self.adapters(harness)
            let file = folder.appendingPathComponent("zhenshi-lpr/profile.yaml")
            let original = try String(contentsOf: file, encoding: .utf8)
            let page = try await harness.get("/console/profiles/zhenshi-lpr")
            #expect(page.status == 200)
            #expect(page.body.contains("id=\"profile-text\""))
            #expect(page.body.contains("name: zhenshi-lpr"))
            #expect(try await harness.get("/console/profiles/..%2Fetc").status == 404)
            let path = "/console/profiles/zhenshi-lpr/save"
            #expect(try await harness.post(path, form: ["text": "format: 1\n"]).status == 401)
            let (cookie, csrf) = try await harness.login()
            #expect(try await harness.post(path, form: ["text": "format: 1\n"], cookie: cookie).status == 403)
            let broken = original.replacingOccurrences(of: "name: zhenshi-lpr", with: "name: zhenshi-lpr\nbogus_key: 1")
            let refused = try await harness.post(path, form: ["csrf": csrf, "text": broken], cookie: cookie)
            #expect(refused.status == 400)
            #expect(refused.body.contains("id=\"t-profile-findings\""))
            #expect(refused.body.contains("bogus_key"), "the finding names the key")
            #expect(refused.body.contains("zhenshi-lpr/profile.yaml:"), "and the file with its line")
            #expect(try String(contentsOf: file, encoding: .utf8) == original, "nothing written on error")
            let edited = original.replacingOccurrences(of: "name: zhenshi-lpr", with: "name: zhenshi-lpr\n# edited from the console")
            let saved = try await harness.post(path, form: ["csrf": csrf, "text": edited.replacingOccurrences(of: "\n", with: "\r\n")], cookie: cookie)
            #expect(saved.status == 200)
            #expect(try String(contentsOf: file, encoding: .utf8) == edited, "saved with the file's own line ends")
            #expect(harness.log.all.contains { $0.message.contains("installer saved profile zhenshi-lpr") && $0.metadata["console.action"] == "edit profile" })
        }
    }

    @Test("activating a profile for a device needs a login and the CSRF token, goes through the backend and is logged; a refusal is shown")
    func activateProfile() async throws {
        try await ConsoleHarness.with { harness in
            _ = try Self.adapters(harness)
            let path = "/console/profiles/zhenshi-lpr/activate"
            #expect(try await harness.post(path, form: ["device": "gate-1"]).status == 401)
            let (cookie, csrf) = try await harness.login()
            #expect(try await harness.post(path, form: ["device": "gate-1"], cookie: cookie).status == 403)
            #expect(harness.calls.activated.withLock { $0 }.isEmpty)
            let page = try await harness.get("/console/profiles/zhenshi-lpr", cookie: cookie)
            #expect(page.body.contains("<option>gate-1</option>") && page.body.contains("<option>door-2</option>"))
            #expect(!page.body.contains("config-not-writable"))
            let done = try await harness.post(path, form: ["csrf": csrf, "device": "gate-1"], cookie: cookie)
            #expect(done.status == 200)
            #expect(harness.calls.activated.withLock { $0 } == ["zhenshi-lpr→gate-1"])
            #expect(harness.log.all.contains { $0.message.contains("installer activated profile zhenshi-lpr for device gate-1") })
            let refused = try await harness.post(path, form: ["csrf": csrf, "device": "gate-9"], cookie: cookie)
            #expect(refused.status == 409)
            #expect(refused.body.contains("flash error") && refused.body.contains("gate-9"))
            #expect(try await harness.post("/console/profiles/nope/activate", form: ["csrf": csrf, "device": "gate-1"], cookie: cookie).status == 404)
        }
    }

    @Test("a quarantined payload is loaded into the tester only for a logged-in user")
    func fromQuarantine() async throws {
        try await ConsoleHarness.with { harness in
            _ = try Self.adapters(harness)
            let id = try await harness.quarantine(#"{"plate":"川A12345"}"#)
            let anonymous = try await harness.get("/console/profiles/test?quarantine=\(id)&profile=zhenshi-lpr")
            #expect(!anonymous.body.contains("川A12345"))
            let (cookie, _) = try await harness.login()
            let shown = try await harness.get("/console/profiles/test?quarantine=\(id)&profile=zhenshi-lpr", cookie: cookie)
            #expect(shown.body.contains("川A12345"))
        }
    }
}

@Suite("Console access")
struct ConsoleAccessTests {
    @Test("a replay without login is refused and changes nothing")
    func refusedWithoutLogin() async throws {
        try await ConsoleHarness.with { harness in
            let id = try await harness.quarantine("{}")
            let answer = try await harness.post("/console/quarantine/\(id)/replay", form: ["csrf": "guess"])
            #expect(answer.status == 401)
            #expect(harness.calls.replayed.withLock { $0 }.isEmpty)
            #expect(try await harness.fixture.queue.quarantineEntry(id: id)?.replayedAt == nil)
            #expect(try await harness.post("/console/reload", form: [:]).status == 401)
            #expect(harness.calls.reloads.withLock { $0 } == 0)
        }
    }

    @Test("a logged-in change without the session's CSRF token is refused")
    func csrfRefused() async throws {
        try await ConsoleHarness.with { harness in
            let id = try await harness.quarantine("{}")
            let (cookie, csrf) = try await harness.login()
            #expect(try await harness.post("/console/quarantine/\(id)/replay", form: [:], cookie: cookie).status == 403)
            #expect(try await harness.post("/console/quarantine/\(id)/replay", form: ["csrf": csrf + "x"], cookie: cookie).status == 403)
            #expect(harness.calls.replayed.withLock { $0 }.isEmpty)
            #expect(harness.log.all.contains { $0.message.contains("CSRF") && $0.metadata["console.user"] == "installer" })
        }
    }

    @Test("a logged-in replay and reload run and are logged with who and what")
    func auditedChange() async throws {
        try await ConsoleHarness.with { harness in
            let id = try await harness.quarantine("{}")
            let (cookie, csrf) = try await harness.login()
            let answer = try await harness.post("/console/quarantine/\(id)/replay", form: ["csrf": csrf], cookie: cookie)
            #expect(answer.status == 200)
            #expect(harness.calls.replayed.withLock { $0 } == [id])
            #expect(try await harness.fixture.queue.quarantineEntry(id: id)?.replayedAt != nil)
            #expect(harness.log.all.contains { $0.message.contains("installer replayed quarantine entry \(id)") && $0.metadata["console.action"] == "replay" })
            #expect(try await harness.post("/console/reload", form: ["csrf": csrf], cookie: cookie).status == 200)
            #expect(harness.calls.reloads.withLock { $0 } == 1)
            #expect(harness.log.all.contains { $0.message.contains("installer asked for a config reload") })
        }
    }

    @Test("discarding a quarantined entry needs a login, the CSRF token and a reason; it is recorded, logged and cannot be replayed")
    func discard() async throws {
        try await ConsoleHarness.with { harness in
            let body = #"{"plate":"川A12345"}"#
            let id = try await harness.quarantine(body)
            let path = "/console/quarantine/\(id)/discard"
            #expect(try await harness.post(path, form: ["reason": "test"]).status == 401)
            let (cookie, csrf) = try await harness.login()
            #expect(try await harness.post(path, form: ["reason": "test"], cookie: cookie).status == 403)
            let noReason = try await harness.post(path, form: ["csrf": csrf, "reason": " "], cookie: cookie)
            #expect(noReason.status == 400)
            #expect(noReason.body.contains("needs a reason"))
            #expect(try await harness.fixture.queue.quarantineEntry(id: id)?.isWaiting == true, "refusals change nothing")

            let shownBefore = try await harness.get("/console/quarantine/\(id)", cookie: cookie)
            #expect(shownBefore.body.contains("id=\"discard-form\""))
            let done = try await harness.post(path, form: ["csrf": csrf, "reason": "installer's test push"], cookie: cookie)
            #expect(done.status == 200)
            #expect(done.body.contains("installer&#39;s test push") || done.body.contains("installer&#x27;s test push"), "\(done.body)")
            #expect(done.body.contains(PayloadSealer.digest(Data(body.utf8))))
            #expect(!done.body.contains("川A12345"))
            #expect(!done.body.contains("id=\"discard-form\"") && !done.body.contains("id=\"replay\""))
            let entry = try #require(try await harness.fixture.queue.quarantineEntry(id: id))
            #expect(entry.discarded?.by == "installer")
            #expect(entry.discarded?.reason == "installer's test push")
            #expect(entry.payload.isEmpty)
            #expect(try await harness.fixture.queue.stats().quarantineWaiting == 0)
            #expect(
                harness.log.all.contains {
                    $0.message.contains("installer discarded quarantine entry \(id): installer's test push") && $0.metadata["console.action"] == "discard"
                })
            let list = try await harness.get("/console/quarantine")
            #expect(list.body.contains("installer&#39;s test push") || list.body.contains("installer&#x27;s test push"))
            let replay = try await harness.post("/console/quarantine/\(id)/replay", form: ["csrf": csrf], cookie: cookie)
            #expect(replay.body.contains("flash error"))
            #expect(harness.calls.replayed.withLock { $0 }.isEmpty)
        }
    }

    @Test("with admin.tls the console answers over TLS only, and the session cookie is Secure")
    func overTLS() async throws {
        let certificates = try await TestCertificates()
        defer { certificates.remove() }
        try await ConsoleHarness.with(tls: certificates) { harness in
            let page = try await harness.get("/console")
            #expect(page.status == 200)
            #expect(page.body.contains("lakeside"))
            let login = try await harness.post("/console/login", form: ["user": "installer", "password": ConsoleHarness.password])
            #expect(login.status == 303)
            let setCookie = try #require(login.headers["set-cookie"])
            #expect(setCookie.contains("Secure"), "\(setCookie)")
            #expect(setCookie.contains("HttpOnly"))
            // Plain HTTP to the TLS port gets no page.
            let plain = try await withHTTPClient { client -> Int? in
                do {
                    let response = try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(harness.port)/console"), timeout: .seconds(30))
                    return Int(response.status.code)
                } catch {
                    return nil
                }
            }
            #expect(plain == nil, "plain HTTP was answered \(plain.map(String.init) ?? "")")
        }
        try await ConsoleHarness.with { harness in
            let login = try await harness.post("/console/login", form: ["user": "installer", "password": ConsoleHarness.password])
            #expect(login.headers["set-cookie"]?.contains("Secure") == false, "no Secure flag without TLS (the browser would drop the cookie)")
        }
    }

    @Test("a wrong password gets no session")
    func wrongPassword() async throws {
        try await ConsoleHarness.with { harness in
            let answer = try await harness.post("/console/login", form: ["user": "installer", "password": "wrong"])
            #expect(answer.status == 401)
            #expect(answer.cookie == nil)
            #expect(try await harness.post("/console/login", form: ["user": "nobody", "password": ConsoleHarness.password]).status == 401)
        }
    }

    @Test("after five wrong passwords the user name is locked for a minute on the console's clock, then works again")
    func loginThrottle() async throws {
        try await ConsoleHarness.with { harness in
            for _ in 0..<5 {
                #expect(try await harness.post("/console/login", form: ["user": "installer", "password": "guess"]).status == 401)
            }
            let locked = try await harness.post("/console/login", form: ["user": "installer", "password": ConsoleHarness.password])
            #expect(locked.status == 429)
            #expect(locked.cookie == nil)
            harness.clock.advance(by: .seconds(61))
            #expect(try await harness.post("/console/login", form: ["user": "installer", "password": ConsoleHarness.password]).status == 303)
        }
    }

    @Test("a session expires after session_minutes on the console's clock")
    func sessionExpires() async throws {
        try await ConsoleHarness.with(sessionMinutes: 5) { harness in
            let id = try await harness.quarantine("{}")
            let (cookie, csrf) = try await harness.login()
            harness.clock.advance(by: .seconds(5 * 60 + 1))
            #expect(try await harness.post("/console/quarantine/\(id)/replay", form: ["csrf": csrf], cookie: cookie).status == 401)
            #expect(harness.calls.replayed.withLock { $0 }.isEmpty)
        }
    }

    @Test("a password hash survives its text form and checks only the right password")
    func passwordHash() throws {
        let hash = try PasswordCheck.hash("s3cret", logRounds: 10)
        let parsed = try #require(ConsolePasswordHash(hash.description))
        #expect(PasswordCheck.verify("s3cret", against: parsed))
        #expect(!PasswordCheck.verify("s3cret ", against: parsed))
        #expect(ConsolePasswordHash("bcrypt$10$abc") == nil)
    }
}
