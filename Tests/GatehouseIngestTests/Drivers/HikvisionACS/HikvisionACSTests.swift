import Foundation
@testable import GatehouseCore
import GatehouseProfiles
import GatehouseQueue
import Logging
import Testing

@testable import GatehouseIngest

/// Mapping vectors from the ISAPI notes, body parsing and refusals, the Digest client, options.
@Suite("hikvision-acs driver")
struct HikvisionACSTests {
    static let shanghai = TimeZone(identifier: "Asia/Shanghai") ?? .gmt

    /// An access-terminal push in the shape public ISAPI integrations document (see Drivers/HikvisionACS/README.md).
    static let sample = """
        {"ipAddress":"192.168.30.15","portNo":80,"protocol":"HTTP","channelID":1,
         "dateTime":"2025-03-14T07:59:03+08:00","activePostCount":1,
         "eventType":"AccessControllerEvent","eventState":"active",
         "AccessControllerEvent":{"deviceName":"3号楼单元门","majorEventType":5,"subEventType":75,
          "name":"张伟","employeeNoString":"B3-1201-01","cardReaderNo":1,"doorNo":1,"serialNo":20418,
          "currentVerifyMode":"cardOrFace","attendanceStatus":"undefined","mask":"no"}}
        """

    static func alert(major: Int, minor: Int, extra: String = "") -> [UInt8] {
        Array("""
            {"macAddress":"44:19:B6:10:22:7E","dateTime":"2025-03-14T07:59:03+08:00","eventType":"AccessControllerEvent",\
            "AccessControllerEvent":{"majorEventType":\(major),"subEventType":\(minor),"doorNo":2,"serialNo":7\(extra)}}
            """.utf8)
    }

    static func draft(_ body: [UInt8], contentType: String? = "application/json") throws -> EventDraft {
        let push = try HikvisionACSRecords.parsePush(body, contentType: contentType)
        let record = try #require(push.record)
        return HikvisionACSRecords.draft(for: record, identity: "T1", zone: shanghai)
    }

    @Test("the notes' face pass: access.granted, person subject, door-1, verify mode, dedup on serialNo")
    func sampleVector() throws {
        let draft = try Self.draft(Array(Self.sample.utf8))
        #expect(draft.kind == .accessGranted)
        #expect(draft.result == .granted)
        #expect(draft.subject == Subject(type: .person, value: "B3-1201-01"))
        #expect(draft.point == "door-1")
        #expect(draft.occurredAt == DeviceTimeParser.parseRFC3339("2025-03-13T23:59:03Z"))
        #expect(draft.deviceTime == "2025-03-14T07:59:03+08:00")
        #expect(draft.attributes?["verifyMode"] == .string("cardOrFace"))
        #expect(draft.attributes?["method"] == .string("face"))
        #expect(draft.attributes?["serialNo"] == .number(20418))
        #expect(draft.attributes?["name"] == nil)
        #expect(draft.dedupKey == "hikvision-acs:T1:20418")
    }

    @Test("(major, minor) pairs map to the kinds the notes give", arguments: [
        (5, 0x01, EventKind.accessGranted), (5, 0x26, .accessGranted), (5, 0x4b, .accessGranted), (5, 0x65, .accessGranted),
        (5, 0x06, .accessDenied), (5, 0x09, .accessDenied), (5, 0x4c, .accessDenied), (5, 0x50, .accessDenied),
        (5, 0x15, .doorUnlocked), (5, 0x16, .doorLocked), (5, 0x17, .doorExitRequest), (5, 0x19, .doorOpened),
        (5, 0x1a, .doorClosed), (5, 0x1b, .doorForced), (5, 0x1c, .doorHeldOpen), (5, 0x25, .intercomCall),
        (1, 0x404, .alarmTamper), (1, 0x406, .alarmTamper), (1, 0x40d, .alarmDuress), (3, 0x400, .doorRemoteOpen),
        (1, 0x400, .vendorOther), (5, 0x999, .vendorOther),
    ])
    func codeTable(major: Int, minor: Int, kind: EventKind) throws {
        let draft = try Self.draft(Self.alert(major: major, minor: minor))
        #expect(draft.kind == kind)
        #expect(draft.point == "door-2")
    }

    @Test("a refusal keeps its reason; a card without an employee becomes the card subject")
    func deniedWithCard() throws {
        let draft = try Self.draft(Self.alert(major: 5, minor: 0x09, extra: #","cardNo":"3482219901","currentVerifyMode":"card""#))
        #expect(draft.kind == .accessDenied)
        #expect(draft.result == .denied)
        #expect(draft.attributes?["reason"] == .string("unknown-card"))
        #expect(draft.subject == Subject(type: .card, value: "3482219901"))
        let person = try Self.draft(Self.alert(major: 5, minor: 0x01, extra: #","cardNo":"3482219901","employeeNoString":"E1""#))
        #expect(person.subject == Subject(type: .person, value: "E1"))
        #expect(person.attributes?["cardNo"] == nil)
    }

    @Test("multipart with the JSON part and a picture: the picture is counted, not kept")
    func multipart() throws {
        let json = String(decoding: Self.alert(major: 5, minor: 0x4b), as: UTF8.self)
        var body = Array("--MIME_boundary\r\nContent-Disposition: form-data; name=\"AccessControllerEvent\"\r\nContent-Type: application/json\r\n\r\n\(json)\r\n".utf8)
        body += Array("--MIME_boundary\r\nContent-Disposition: form-data; name=\"Picture\"\r\nContent-Type: image/jpeg\r\n\r\n".utf8)
        body += [0xFF, 0xD8, 0x00, 0xFF, 0xD9] + Array("\r\n--MIME_boundary--\r\n".utf8)
        let push = try HikvisionACSRecords.parsePush(body, contentType: "multipart/form-data; boundary=\"MIME_boundary\"")
        #expect(push.pictures == 1)
        #expect(push.record?.minor == 0x4b)
        #expect(push.macAddress == "44:19:B6:10:22:7E")
    }

    @Test("tolerated shapes: filename before name, no boundary parameter, a bare alert under a multipart type")
    func tolerantMultipart() throws {
        let json = String(decoding: Self.alert(major: 5, minor: 0x01), as: UTF8.self)
        let body = Array("--boundary\r\nContent-Disposition: form-data; filename=\"x.json\"; name=\"event_log\"\r\n\r\n\(json)\r\n--boundary--".utf8)
        #expect(try HikvisionACSRecords.parsePush(body, contentType: "multipart/form-data").record?.minor == 1)
        #expect(try MultipartBody.parts(body, boundary: "boundary").first?.name == "event_log")
        #expect(try HikvisionACSRecords.parsePush(Array(json.utf8), contentType: "multipart/form-data; boundary=boundary").record?.minor == 1)
    }

    @Test("malformed JSON and truncated multipart are refused with reasons")
    func refusals() {
        #expect(throws: PayloadError.self) { try HikvisionACSRecords.parsePush(Array("{\"eventType\":".utf8), contentType: "application/json") }
        do {
            _ = try HikvisionACSRecords.parsePush(Array("{\"eventType\":".utf8), contentType: "application/json")
        } catch {
            #expect(error.reason.contains("not valid JSON"), "\(error.reason)")
        }
        let truncated = Array("--b\r\nContent-Disposition: form-data; name=\"AccessControllerEvent\"\r\n\r\n{\"eventType\":\"AccessC".utf8)
        do {
            _ = try HikvisionACSRecords.parsePush(truncated, contentType: "multipart/form-data; boundary=b")
            Issue.record("a truncated multipart body was accepted")
        } catch {
            #expect(error.reason.contains("truncated"), "\(error.reason)")
            #expect(error.reason.contains("--b--"), "\(error.reason)")
        }
        do {
            _ = try HikvisionACSRecords.parsePush(Self.alert(major: 5, minor: 0).map { $0 } + [], contentType: nil)
            _ = try HikvisionACSRecords.parsePush(Array(#"{"eventType":"AccessControllerEvent","AccessControllerEvent":{"majorEventType":"x","subEventType":1}}"#.utf8), contentType: nil)
            Issue.record("a non-integer major was accepted")
        } catch {
            #expect(error.reason.contains("majorEventType 'x' is not an integer"), "\(error.reason)")
        }
        let heartbeat = try? HikvisionACSRecords.parsePush(Array(#"{"eventType":"heartBeat"}"#.utf8), contentType: nil)
        #expect(heartbeat?.record == nil && heartbeat?.eventType == "heartBeat")
    }

    @Test("AcsEvent search pages parse, and the request carries beginSerialNo")
    func searchPage() throws {
        let reply = #"{"AcsEvent":{"searchID":"s","totalMatches":3,"responseStatusStrg":"MORE","numOfMatches":2,"InfoList":[{"major":5,"minor":1,"time":"2025-03-14T08:00:00+08:00","cardNo":"99","doorNo":1,"serialNo":41},{"major":5,"minor":25,"time":"2025-03-14T08:00:01+08:00","doorNo":1,"serialNo":42}]}}"#
        let page = try HikvisionACSRecords.parseSearch(Array(reply.utf8))
        #expect(page.more && page.numOfMatches == 2)
        #expect(page.records.map(\.serialNo) == [41, 42])
        #expect(HikvisionACSRecords.draft(for: page.records[1], identity: "T", zone: Self.shanghai).kind == .doorOpened)
        let request = String(decoding: HikvisionACSRecords.searchRequest(searchID: "s", position: 30, maxResults: 30, beginSerialNo: 43), as: UTF8.self)
        #expect(request.contains(#""beginSerialNo":43"#) && request.contains(#""searchResultPosition":30"#))
        #expect(throws: PayloadError.self) { try HikvisionACSRecords.parseSearch(Array(#"{"AcsEvent":{}}"#.utf8)) }
    }

    @Test("Digest client: the RFC 2617 vector")
    func digestVector() throws {
        let challenge = try #require(HikvisionDigestClient.challenge(
            #"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#))
        let header = HikvisionDigestClient.authorization(
            challenge, method: "GET", uri: "/dir/index.html", username: "Mufasa", password: "Circle Of Life", cnonce: "0a4f113b", nc: 1)
        #expect(header.contains(#"response="6629fae49393a05397450978507c4ef1""#), "\(header)")
        #expect(header.contains("nc=00000001") && header.contains(#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#))
        // The gateway's own Digest server accepts what the client computes.
        let server = DigestAuthentication()
        let issued = Date(timeIntervalSince1970: 1_750_000_000)
        let ours = try #require(HikvisionDigestClient.challenge(server.challenge(now: issued)))
        let answer = HikvisionDigestClient.authorization(ours, method: "POST", uri: "/x", username: "u", password: "p", cnonce: "abc", nc: 3)
        #expect(server.verify(header: answer, method: "POST", uri: "/x", username: "u", password: "p", now: issued.addingTimeInterval(10)))
        #expect(!server.verify(header: answer, method: "POST", uri: "/x", username: "u", password: "q", now: issued.addingTimeInterval(10)))
        // A nonce is good for its lifetime on the clock it is given, not longer.
        #expect(!server.verify(header: answer, method: "POST", uri: "/x", username: "u", password: "p", now: issued.addingTimeInterval(DigestAuthentication.nonceLifetime)))
    }

    @Test("options are read with line numbers; validate: poll needs address and credentials")
    func validation() throws {
        let found = DriverOptionFixture.diagnostics(driver: "hikvision-acs", "mode: poll\npoll_interval_seconds: 0\ncolour: red")
        let text = found.map(\.description).joined(separator: "\n")
        #expect(found.count == 2, "\(text)")
        #expect(text.contains("fixture.yaml:9:30: devices[0].options.poll_interval_seconds: 0 is out of range (expected 0.1 to 3600)"), "\(text)")
        #expect(text.contains("fixture.yaml:10:7: devices[0].options.colour: unknown option"), "\(text)")
        let pull = DriverOptionFixture.diagnostics(driver: "hikvision-acs", "mode: pull")
        #expect(pull.map(\.description) == ["fixture.yaml:8:13: devices[0].options.mode: 'pull' is not valid (expected one of push, poll) — did you mean 'poll'?"])

        let driver = HikvisionACSDriver()
        var device = try #require(DriverOptionFixture.device(driver: "hikvision-acs", ""))
        #expect(driver.validate(device: device).isEmpty)
        device = try #require(DriverOptionFixture.device(driver: "hikvision-acs", "mode: poll"))
        let problems = driver.validate(device: device)
        #expect(problems.contains { $0.contains("address: required with mode: poll") }, "\(problems)")
        #expect(problems.contains { $0.contains("auth: required with mode: poll") })
        device.address = "127.0.0.1:8000"
        device.auth = .digest(username: "admin", password: Secret(value: "x", origin: "inline"))
        #expect(driver.validate(device: device).isEmpty)
        let options = try HikvisionACSOptions(device)
        #expect(options.mode == .poll && options.maxResults == 30 && options.pollIntervalSeconds == 5)
    }

    @Test("a device-agnostic post is matched by MAC address against serial")
    func identify() throws {
        let driver = HikvisionACSDriver()
        var device = DeviceConfig(
            id: "h", driver: "hikvision-acs", vendor: "hikvision", type: .accessTerminal, timeZone: .gmt, allowFrom: [],
            offlineAfterSeconds: 300, enabled: true, serial: "44-19-b6-10-22-7e", options: [:])
        let push = try HikvisionACSRecords.parsePush(Self.alert(major: 5, minor: 1), contentType: nil)
        #expect(driver.identify(push, among: [device])?.id == "h")
        device.serial = "44:19:b6:10:22:7f"
        #expect(driver.identify(push, among: [device]) == nil)
    }
}
