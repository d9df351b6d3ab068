import AsyncHTTPClient
import Foundation
import GatehouseCore
import NIOCore
import NIOHTTP1

/// Plays a ZKTeco PUSH device against the gateway: the handshake, ATTLOG/OPERLOG/rtlog uploads
/// in batches (GBK when configured), re-sending a batch until it is answered `OK`, and
/// `getrequest` polling with `devicecmd` reports — as the firmware does.
public final class ZKTecoDevice: Sendable {
    public struct Configuration: Sendable {
        public var serial: String
        /// Gateway ingest base URL, e.g. `http://127.0.0.1:8080`.
        public var baseURL: String
        /// How bodies are encoded; GBK firmware sends no charset hint.
        public var charset: TextDecoding.Charset
        public var batchSize: Int
        /// Attempts per batch before giving up (the firmware never gives up; tests must).
        public var maxAttempts: Int
        public var retryDelay: Duration
        /// The device's wall clock zone for the times it writes.
        public var timeZone: TimeZone

        public init(
            serial: String, baseURL: String, charset: TextDecoding.Charset = .utf8, batchSize: Int = 50, maxAttempts: Int = 10,
            retryDelay: Duration = .milliseconds(200), timeZone: TimeZone = TimeZone(identifier: "Asia/Shanghai") ?? .gmt
        ) {
            self.serial = serial
            self.baseURL = baseURL
            self.charset = charset
            self.batchSize = batchSize
            self.maxAttempts = maxAttempts
            self.retryDelay = retryDelay
            self.timeZone = timeZone
        }
    }

    /// One HTTP exchange; status 0 means the connection failed.
    public struct Reply: Sendable {
        public var status: Int
        public var body: String
        public var isOK: Bool { status == 200 && body.hasPrefix("OK") }
    }

    /// A command handed out on `getrequest`.
    public struct Command: Sendable, Equatable {
        public var id: String
        public var text: String
    }

    public let configuration: Configuration
    let client: HTTPClient

    public init(configuration: Configuration) {
        self.configuration = configuration
        var http = HTTPClient.Configuration()
        http.timeout = .init(connect: .seconds(2), read: .seconds(10))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: http)
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    // MARK: - Protocol steps

    /// `GET /iclock/cdata?SN=…&options=all`: the option block as key/value pairs (nil when refused).
    public func handshake() async -> (reply: Reply, options: [String: String]?) {
        let reply = await exchange(.GET, "cdata", ["options": "all", "pushver": "2.4.1", "language": "83"])
        guard reply.status == 200, reply.body.hasPrefix("GET OPTION FROM:") else { return (reply, nil) }
        var options: [String: String] = [:]
        for line in reply.body.split(separator: "\n").dropFirst() {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { options[String(parts[0])] = String(parts[1]) }
        }
        return (reply, options)
    }

    /// Posts one batch of lines to `table` once.
    public func upload(table: String, lines: [String], stamp: String? = nil) async -> Reply {
        var query = ["table": table]
        if let stamp { query[table == "OPERLOG" ? "OpStamp" : "Stamp"] = stamp }
        let text = lines.map { $0 + "\n" }.joined()
        let body = TextDecoding.encode(text, as: configuration.charset) ?? Array(text.utf8)
        return await exchange(.POST, "cdata", query, body: body)
    }

    /// Posts a batch until it is answered `OK` (a non-OK reply or a broken connection means the
    /// same batch again, as firmware does); returns the replies, the last one OK unless attempts ran out.
    public func uploadUntilAcknowledged(table: String, lines: [String], stamp: String? = nil) async -> [Reply] {
        var replies: [Reply] = []
        for attempt in 1...max(1, configuration.maxAttempts) {
            let reply = await upload(table: table, lines: lines, stamp: stamp)
            replies.append(reply)
            if reply.isOK || attempt == configuration.maxAttempts { break }
            try? await Task.sleep(for: configuration.retryDelay)
        }
        return replies
    }

    /// `GET /iclock/getrequest`: the `C:<id>:<command>` lines, none when the reply is `OK`.
    public func poll() async -> [Command] {
        let reply = await exchange(.GET, "getrequest", ["INFO": "Ver 8.0.4,0,0,0,127.0.0.1"])
        guard reply.status == 200 else { return [] }
        return reply.body.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: ":", maxSplits: 2)
            guard parts.count == 3, parts[0] == "C" else { return nil }
            return Command(id: String(parts[1]), text: String(parts[2]))
        }
    }

    /// `POST /iclock/devicecmd` with one `ID=…&Return=…&CMD=…` line per executed command.
    public func report(_ commands: [Command], returnCode: Int = 0) async -> Reply {
        let body = commands.map { "ID=\($0.id)&Return=\(returnCode)&CMD=\($0.text.split(separator: " ").prefix(2).joined(separator: " "))" }
            .joined(separator: "\n")
        return await exchange(.POST, "devicecmd", [:], body: Array(body.utf8))
    }

    private func exchange(_ method: HTTPMethod, _ endpoint: String, _ query: [String: String], body: [UInt8]? = nil) async -> Reply {
        var parameters = "SN=\(percentEncoded(configuration.serial))"
        for (key, value) in query.sorted(by: { $0.key < $1.key }) { parameters += "&\(key)=\(percentEncoded(value))" }
        var request = HTTPClientRequest(url: "\(configuration.baseURL)/iclock/\(endpoint)?\(parameters)")
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "text/plain")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
            return Reply(status: Int(response.status.code), body: text)
        } catch {
            return Reply(status: 0, body: "\(error)")
        }
    }

    private func percentEncoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    // MARK: - Records

    /// ATTLOG punches `PIN \t local time \t status \t verify \t workcode…`, one second apart from `start`.
    public func attendanceLines(count: Int, firstPIN: Int = 1000, start: Date = Date(timeIntervalSince1970: 1_741_910_400)) -> [String] {
        (0..<count).map { i in
            "\(firstPIN + i)\t\(localTime(start.addingTimeInterval(Double(i))))\t0\t\([15, 1, 4][i % 3])\t0\t0\t0\t0"
        }
    }

    /// Access-panel rtlog lines alternating granted (0) and denied (27) card events on doors 1 and 2.
    public func realtimeLines(count: Int, firstIndex: Int = 1, start: Date = Date(timeIntervalSince1970: 1_741_910_400)) -> [String] {
        (0..<count).map { i in
            let time = localTime(start.addingTimeInterval(Double(i)))
            return "time=\(time)\tpin=\(i % 2 == 0 ? String(2000 + i) : "0")\tcardno=\(10_058_000 + i)\teventaddr=\(i % 2 + 1)"
                + "\tevent=\(i % 2 == 0 ? 0 : 27)\tinoutstatus=\(i % 2)\tverifytype=4\tindex=\(firstIndex + i)"
        }
    }

    /// OPERLOG USER records, e.g. names in Chinese for GBK firmware.
    public static func userLines(_ users: [(pin: String, name: String)]) -> [String] {
        users.map { "USER PIN=\($0.pin)\tName=\($0.name)\tPri=0\tPasswd=\tCard=0\tGrp=1\tTZ=0000000100000000" }
    }

    /// `YYYY-MM-DD HH:MM:SS` on the device's wall clock.
    public func localTime(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = configuration.timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ v: Int?) -> String { String(format: "%02d", v ?? 0) }
        return "\(c.year ?? 2000)-\(two(c.month))-\(two(c.day)) \(two(c.hour)):\(two(c.minute)):\(two(c.second))"
    }

    // MARK: - A whole session

    /// What a session did.
    public struct Tally: Sendable {
        public var batches = 0
        public var acknowledgedRecords = 0
        public var retries = 0
        public var failedBatches = 0
        public var commandsExecuted = 0
        public var refusedHandshake: Reply?
    }

    /// Handshake, `records` ATTLOG punches and `realtime` rtlog events in batches (stamps counting up
    /// from the gateway's), then one `getrequest` poll whose commands are reported done.
    public func run(records: Int, realtime: Int = 0) async -> Tally {
        var tally = Tally()
        let (reply, options) = await handshake()
        guard let options else {
            tally.refusedHandshake = reply
            return tally
        }
        var stamp = Int(options["ATTLOGStamp"] ?? "0") ?? 0
        func send(_ table: String, _ lines: [String], stamped: Bool) async {
            for start in stride(from: 0, to: lines.count, by: max(1, configuration.batchSize)) {
                let batch = Array(lines[start..<min(lines.count, start + configuration.batchSize)])
                if stamped { stamp += batch.count }
                let replies = await uploadUntilAcknowledged(table: table, lines: batch, stamp: stamped ? String(stamp) : nil)
                tally.batches += 1
                tally.retries += replies.count - 1
                if replies.last?.isOK == true { tally.acknowledgedRecords += batch.count } else { tally.failedBatches += 1 }
            }
        }
        await send("ATTLOG", attendanceLines(count: records), stamped: true)
        await send("rtlog", realtimeLines(count: realtime), stamped: false)
        let commands = await poll()
        if !commands.isEmpty, await report(commands).isOK { tally.commandsExecuted = commands.count }
        return tally
    }
}
