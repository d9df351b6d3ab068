import AsyncHTTPClient
import Crypto
import Foundation
import GatehouseCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Plays a Hikvision access-control terminal: an in-memory event log numbered by `serialNo`,
/// served by `POST /ISAPI/AccessControl/AcsEvent?format=json` behind HTTP Digest (MD5,
/// qop=auth) on 127.0.0.1, and pushes of `AccessControllerEvent` (JSON or multipart with a
/// picture) to a gateway URL, as HTTP-listening firmware does.
public final class HikvisionTerminal: Sendable {
    /// One record of the log.
    public struct Record: Sendable, Equatable {
        public var serialNo: Int64
        public var major: Int
        public var minor: Int
        public var time: String
        public var employee: String?
        public var cardNo: String?
        public var doorNo: Int
        public var verifyMode: String
        /// The entry's JSON fields as sent instead of the ones above (a firmware's malformed entry).
        public var rawFields: String?

        public init(
            serialNo: Int64, major: Int = 5, minor: Int = 75, time: String, employee: String? = nil, cardNo: String? = nil,
            doorNo: Int = 1, verifyMode: String = "cardOrFace"
        ) {
            self.serialNo = serialNo
            self.major = major
            self.minor = minor
            self.time = time
            self.employee = employee
            self.cardNo = cardNo
            self.doorNo = doorNo
            self.verifyMode = verifyMode
        }

        var fields: String {
            if let rawFields { return rawFields }
            var text = "\"major\":\(major),\"minor\":\(minor),\"time\":\"\(time)\",\"doorNo\":\(doorNo),\"cardReaderNo\":1,"
                + "\"serialNo\":\(serialNo),\"currentVerifyMode\":\"\(verifyMode)\",\"attendanceStatus\":\"undefined\""
            if let employee { text += ",\"employeeNoString\":\"\(employee)\"" }
            if let cardNo { text += ",\"cardNo\":\"\(cardNo)\"" }
            return text
        }
    }

    /// What the server saw, for tests.
    public struct Figures: Sendable, Equatable {
        public var searches = 0
        public var challenges = 0
        public var refusedCredentials = 0
        /// `beginSerialNo` of each search, in order.
        public var beginSerialNos: [Int64] = []
    }

    private struct State {
        var log: [Record] = []
        var figures = Figures()
    }

    public let username: String
    public let password: String
    public let realm = "DS-K1T671M"
    public let macAddress: String
    private let state = Mutex(State())
    private let server = SimulatedServer(name: "hikvision terminal simulator")
    private let digest: SimulatedDigest
    private let logger: Logger
    let client: HTTPClient

    public init(username: String = "admin", password: String = "hik12345", macAddress: String = "44:19:b6:10:22:7e", logger: Logger) {
        self.username = username
        self.password = password
        self.macAddress = macAddress
        digest = SimulatedDigest(username: username, password: password, realm: realm)
        self.logger = logger
        var http = HTTPClient.Configuration()
        http.timeout = .init(connect: .seconds(2), read: .seconds(10))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: http)
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    // MARK: - The log

    /// Appends records with the next serial numbers; returns them.
    @discardableResult
    public func record(
        count: Int, major: Int = 5, minor: Int = 75, employee: @Sendable (Int64) -> String? = { "E\($0)" }, cardNo: String? = nil,
        at time: Date = Date()
    ) -> [Record] {
        let stamp = Self.isoTime(time)
        return state.withLock { s in
            var added: [Record] = []
            for _ in 0..<count {
                let serial = (s.log.last?.serialNo ?? 0) + 1
                let record = Record(serialNo: serial, major: major, minor: minor, time: stamp, employee: employee(serial), cardNo: cardNo)
                s.log.append(record)
                added.append(record)
            }
            return added
        }
    }

    /// Appends one entry whose JSON fields are `fields(serialNo)` verbatim; returns its serial number.
    @discardableResult
    public func recordMalformed(_ fields: @Sendable (Int64) -> String) -> Int64 {
        state.withLock { s in
            let serial = (s.log.last?.serialNo ?? 0) + 1
            var record = Record(serialNo: serial, time: Self.isoTime(Date()))
            record.rawFields = fields(serial)
            s.log.append(record)
            return serial
        }
    }

    public var log: [Record] { state.withLock { $0.log } }
    public var figures: Figures { state.withLock { $0.figures } }

    static func isoTime(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(secondsFromGMT: 8 * 3600)
        return formatter.string(from: date).replacingOccurrences(of: "Z", with: "+08:00")
    }

    // MARK: - The ISAPI server

    /// Serves until cancelled; `waitUntilRunning()` gives the port.
    public func run(port: Int = 0) async throws {
        try await server.run(host: "127.0.0.1", port: port, logger: logger) { request in await self.respond(to: request) }
    }

    public func waitUntilRunning(timeout: Duration = .seconds(60)) async throws -> Int {
        try await server.waitUntilRunning(timeout: timeout) { HikvisionTerminalError(description: $0) }
    }

    func respond(to request: Request) async -> Response {
        guard request.method == .post, request.uri.path == "/ISAPI/AccessControl/AcsEvent" else {
            return Self.status(.notFound, #"{"statusCode":4,"statusString":"Invalid Operation","subStatusCode":"notSupport"}"#)
        }
        guard let header = request.headers[.authorization], digest.verify(header, method: "POST", uri: request.uri.description) else {
            let refused = request.headers[.authorization] != nil
            state.withLock {
                $0.figures.challenges += 1
                if refused { $0.figures.refusedCredentials += 1 }
            }
            var headers = HTTPFields()
            headers[.wwwAuthenticate] = digest.challenge(opaque: "hik")
            return Response(status: .unauthorized, headers: headers)
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: 1 << 20)
        } catch {
            return Self.status(.badRequest, #"{"statusCode":4,"statusString":"Invalid Content"}"#)
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
            let cond = object["AcsEventCond"] as? [String: Any], let searchID = cond["searchID"] as? String
        else {
            return Self.status(.badRequest, #"{"statusCode":6,"statusString":"Invalid Content","subStatusCode":"badJsonContent"}"#)
        }
        let position = (cond["searchResultPosition"] as? Int) ?? 0
        let maxResults = max(1, min((cond["maxResults"] as? Int) ?? 30, 100))
        let begin = (cond["beginSerialNo"] as? Int).map(Int64.init) ?? 1
        let matches = state.withLock { s -> [Record] in
            s.figures.searches += 1
            s.figures.beginSerialNos.append(begin)
            return s.log.filter { $0.serialNo >= begin }
        }
        let page = matches.dropFirst(position).prefix(maxResults)
        let more = position + page.count < matches.count
        let status = matches.isEmpty ? "NO MATCH" : (more ? "MORE" : "OK")
        let list = page.map { "{\($0.fields)}" }.joined(separator: ",")
        let json = """
            {"AcsEvent":{"searchID":"\(searchID)","totalMatches":\(matches.count),"responseStatusStrg":"\(status)",\
            "numOfMatches":\(page.count),"InfoList":[\(list)]}}
            """
        return Self.status(.ok, json)
    }

    static func status(_ status: HTTPResponse.Status, _ json: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: json)))
    }

    // MARK: - Pushing

    public enum PushFormat: String, Sendable { case json, multipart }

    /// The `EventNotificationAlert` JSON of one record, as HTTP-listening firmware sends it.
    public func alert(_ record: Record) -> String {
        var block = "\"deviceName\":\"3号楼单元门\",\"majorEventType\":\(record.major),\"subEventType\":\(record.minor),"
            + "\"cardReaderNo\":1,\"doorNo\":\(record.doorNo),\"serialNo\":\(record.serialNo),"
            + "\"currentVerifyMode\":\"\(record.verifyMode)\",\"attendanceStatus\":\"undefined\",\"mask\":\"no\""
        if let employee = record.employee { block += ",\"name\":\"张伟\",\"employeeNoString\":\"\(employee)\"" }
        if let cardNo = record.cardNo { block += ",\"cardNo\":\"\(cardNo)\"" }
        return """
            {"ipAddress":"127.0.0.1","portNo":80,"protocol":"HTTP","macAddress":"\(macAddress)","channelID":1,\
            "dateTime":"\(record.time)","activePostCount":1,"eventType":"AccessControllerEvent","eventState":"active",\
            "eventDescription":"Access Controller Event","AccessControllerEvent":{\(block)}}
            """
    }

    /// The body and Content-Type of one push.
    public func pushBody(_ record: Record, format: PushFormat) -> (body: [UInt8], contentType: String) {
        let json = alert(record)
        switch format {
        case .json:
            return (Array(json.utf8), "application/json; charset=\"UTF-8\"")
        case .multipart:
            return SimulatedPush.multipart(
                boundary: "MIME_boundary", alert: json, alertDisposition: "form-data; name=\"AccessControllerEvent\"",
                alertType: "application/json", pictureDisposition: "form-data; name=\"Picture\"; filename=\"Picture.jpg\"")
        }
    }

    /// POSTs each record to `url`; returns the HTTP status of each (0 when the connection failed).
    public func push(_ records: [Record], to url: String, format: PushFormat) async -> [Int] {
        var statuses: [Int] = []
        for record in records {
            let (body, type) = pushBody(record, format: format)
            statuses.append(await SimulatedPush.post(body, contentType: type, to: url, client: client))
        }
        return statuses
    }
}

public struct HikvisionTerminalError: Error, CustomStringConvertible {
    public let description: String
}
