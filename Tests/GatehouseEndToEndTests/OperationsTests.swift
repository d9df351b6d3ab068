import AsyncHTTPClient
import Crypto
import Foundation
import GatehouseSimulation
import GatehouseTesting
import NIOCore
import Testing

/// Device authentication schemes, quarantine tools and systemd notification, against the daemon process.
@Suite("Daemon operations", .serialized)
struct OperationsTests {
    static func md5(_ text: String) -> String { Insecure.MD5.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined() }

    static func post(_ url: String, headers: [(String, String)], body: String = #"{"kind":"door.opened"}"#) async throws -> (Int, String, String?) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        return (Int(response.status.code), text, response.headers.first(name: "WWW-Authenticate"))
    }

    @Test("devices authenticate with a token, HTTP Basic or HTTP Digest; wrong credentials get 401 with the right challenge; Expect: 100-continue is answered")
    func authenticationSchemes() async throws {
        let (_, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        var site = TestSite(receiverPort: port)
        site.devices = 1
        site.extraDevices = """
              - id: basic-door
                driver: generic-json
                type: door-controller
                auth: {username: door, password: "s3cret"}
              - id: digest-cam
                driver: generic-json
                type: camera
                auth: {username: cam, password: "d1gest", scheme: digest}
            """
        defer { site.remove() }
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: try site.write())
        let base = "http://127.0.0.1:\(ingest)/v1/devices"

        let basic = "Basic " + Data("door:s3cret".utf8).base64EncodedString()
        #expect(try await Self.post("\(base)/basic-door/events", headers: [("Authorization", basic)]).0 == 200)
        let wrongBasic = try await Self.post("\(base)/basic-door/events", headers: [("Authorization", "Basic " + Data("door:nope".utf8).base64EncodedString())])
        #expect(wrongBasic.0 == 401 && wrongBasic.2?.hasPrefix("Basic") == true, "\(wrongBasic)")

        // Digest: the first request is challenged; the answer to the challenge is accepted.
        let uri = "/v1/devices/digest-cam/events"
        let challenge = try await Self.post("\(base)/digest-cam/events", headers: [])
        #expect(challenge.0 == 401)
        let header = try #require(challenge.2)
        #expect(header.hasPrefix("Digest") && header.contains("qop=\"auth\""), "\(header)")
        let nonce = try #require(header.split(separator: ",").first { $0.contains("nonce=") }?.split(separator: "\"").dropFirst().first.map(String.init))
        func answer(password: String) -> String {
            let ha1 = Self.md5("cam:gatehouse:\(password)")
            let ha2 = Self.md5("POST:\(uri)")
            let response = Self.md5("\(ha1):\(nonce):00000001:abc123:auth:\(ha2)")
            return "Digest username=\"cam\", realm=\"gatehouse\", nonce=\"\(nonce)\", uri=\"\(uri)\", qop=auth, nc=00000001, cnonce=\"abc123\", response=\"\(response)\", algorithm=MD5"
        }
        // Clients that wait for 100 Continue before sending a body get it at once.
        let fd = try SlowClient.connectLoopback(port: ingest)
        defer { close(fd) }
        let body = #"{"kind":"door.opened","dedupKey":"expect-1"}"#
        let head = "POST /v1/devices/dev-0/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestSite.token(0))\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nExpect: 100-continue\r\n\r\n"
        _ = Array(head.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        // Polled without blocking a thread of the test pool (ChildProcess says why).
        func readReply(seconds: Double) async -> String {
            var received: [UInt8] = []
            let until = Date().addingTimeInterval(seconds)
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            while Date() < until, !String(decoding: received, as: UTF8.self).contains("\r\n\r\n") {
                if poll(&poller, 1, 0) > 0 {
                    var buffer = [UInt8](repeating: 0, count: 2048)
                    let n = recv(fd, &buffer, buffer.count, 0)
                    if n <= 0 { break }
                    received += buffer.prefix(n)
                } else {
                    try? await Task.sleep(for: .milliseconds(10))
                }
            }
            return String(decoding: received, as: UTF8.self)
        }
        let interim = await readReply(seconds: 10)
        #expect(interim.hasPrefix("HTTP/1.1 100 Continue"), "\(interim)")
        _ = Array(body.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        let final = await readReply(seconds: 30)
        #expect(final.hasPrefix("HTTP/1.1 200"), "\(final)")

        let accepted = try await Self.post("\(base)/digest-cam/events", headers: [("Authorization", answer(password: "d1gest"))])
        #expect(accepted.0 == 200, "\(accepted)")
        let refused = try await Self.post("\(base)/digest-cam/events", headers: [("Authorization", answer(password: "wrong"))])
        #expect(refused.0 == 401 && refused.1.contains("bad-credentials"), "\(refused)")
        // A nonce that is not ours is refused too.
        let forged = answer(password: "d1gest").replacingOccurrences(of: nonce, with: "1700000000-00000000000000000000000000000000")
        #expect(try await Self.post("\(base)/digest-cam/events", headers: [("Authorization", forged)]).0 == 401)
        #expect(try await daemon.stop() == 0)
    }

    @Test("an event the centre rejects is quarantined; `quarantine show` explains it and `replay` delivers it with its id")
    func quarantineReplay() async throws {
        let (receiver, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        receiver.setMode(.unavailable)
        let site = TestSite(receiverPort: port)
        defer { site.remove() }
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: try site.write())
        let oracle = Oracle()
        let pusher = DevicePusher(baseURL: "http://127.0.0.1:\(ingest)")
        var ids: [String] = []
        for sequence in 0..<3 {
            ids += await oracle.push(pusher, device: 0, events: [["kind": "door.opened", "dedupKey": "q-\(sequence)"]]).ids
        }
        await pusher.shutdown()
        try #require(ids.count == 3)
        receiver.setMode(.reject(ids: [ids[1]], status: 400))
        #expect(await receiver.waitUntilContains([ids[0], ids[2]], timeout: .seconds(20)))
        #expect(!receiver.snapshot.uniqueIDs.contains(ids[1]))

        let list = try await DaemonProcess.runTool(["quarantine", "list", "--config", site.configPath, "--json"])
        #expect(list.status == 0 && list.stdout.contains("sink:central"), "\(list)")
        let entryID = try #require(
            (try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])?.first?["id"] as? Int)
        let show = try await DaemonProcess.runTool(["quarantine", "show", String(entryID), "--config", site.configPath])
        #expect(show.status == 0 && show.stdout.contains("rejected by sink central") && show.stdout.contains(ids[1]), "\(show)")

        receiver.setMode(.accept)
        let replay = try await DaemonProcess.runTool(["quarantine", "replay", "--config", site.configPath])
        #expect(replay.status == 0 && replay.stdout.contains("replayed as \(ids[1])"), "\(replay)")
        #expect(await receiver.waitUntilContains([ids[1]], timeout: .seconds(20)), "the replayed event keeps its id and is delivered")
        let again = try await DaemonProcess.runTool(["quarantine", "list", "--config", site.configPath])
        #expect(again.stdout.contains("quarantine is empty"), "replayed entries leave the pending list: \(again.stdout)")
        #expect(try await daemon.stop() == 0)
    }

    @Test("systemd notification: READY=1 once listening, STATUS= lines, WATCHDOG=1 at half WATCHDOG_USEC, STOPPING=1")
    func systemdNotify() async throws {
        let (_, receiverTask, port) = try await startReceiver()
        defer { receiverTask.cancel() }
        let site = TestSite(receiverPort: port)
        defer { site.remove() }
        let socketPath = site.directory + "/notify.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(socketPath.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
        let (daemon, _, _) = try await DaemonProcess.start(
            configPath: try site.write(), environment: ["NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "1000000"])
        var messages: [String] = []
        // Bounded, and ended as soon as both arrived: a busy machine only makes it take longer.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !(messages.contains { $0.contains("WATCHDOG=1") } && messages.contains { $0.contains("STATUS=devices") }) {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, 0) > 0 {
                var buffer = [UInt8](repeating: 0, count: 4096)
                let n = recv(fd, &buffer, buffer.count, 0)
                if n > 0 { messages.append(String(decoding: buffer.prefix(n), as: UTF8.self)) }
            } else {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(messages.first?.contains("READY=1") == true, "\(messages)")
        #expect(messages.contains { $0.contains("WATCHDOG=1") }, "\(messages)")
        #expect(messages.contains { $0.contains("STATUS=devices") }, "\(messages)")
        #expect(try await daemon.stop() == 0)
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var stopping = false
        while poll(&poller, 1, 200) > 0 {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            if String(decoding: buffer.prefix(n), as: UTF8.self).contains("STOPPING=1") { stopping = true }
        }
        #expect(stopping)
    }
}
