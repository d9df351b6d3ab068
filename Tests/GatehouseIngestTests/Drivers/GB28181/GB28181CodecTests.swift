import Foundation
import GatehouseCore
import Testing

@testable import GatehouseIngest

/// The SIP codec, the Digest vectors of the protocol notes and MANSCDP bodies.
@Suite("gb28181 codec")
struct GB28181CodecTests {
    static let register = """
        REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r
        Via: SIP/2.0/UDP 192.0.2.64:5060;rport;branch=z9hG4bK8372251\r
        From: <sip:34020000001320000001@3402000000>;tag=38102\r
        To: <sip:34020000001320000001@3402000000>\r
        Call-ID: 9c2e71f0@192.0.2.64\r
        CSeq: 2 REGISTER\r
        Contact: <sip:34020000001320000001@192.0.2.64:5060>\r
        Authorization: Digest username="34020000001320000001", realm="3402000000", nonce="6fa3d2c1b0e94f7a8c5d3e2f1a0b9c8d", uri="sip:34020000002000000001@3402000000", response="471159ea9cca28e3b239248d2a642ce1", algorithm=MD5, cnonce="0a4f113b", nc=00000001, qop=auth\r
        Max-Forwards: 70\r
        Expires: 3600\r
        Content-Length: 0\r
        \r

        """

    static let keepaliveBody = "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>43</SN>\r\n<DeviceID>34020000001320000001</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"

    static func keepalive(compact: Bool = false) -> String {
        let body = keepaliveBody
        let (v, f, t, i, l, c) = compact ? ("v", "f", "t", "i", "l", "c") : ("Via", "From", "To", "Call-ID", "Content-Length", "Content-Type")
        return "MESSAGE sip:34020000002000000001@3402000000 SIP/2.0\r\n\(v): SIP/2.0/UDP 192.0.2.64:5060;rport;branch=z9hG4bK5520017\r\n"
            + "\(f): <sip:34020000001320000001@3402000000>;tag=41877\r\n\(t): <sip:34020000002000000001@3402000000>\r\n\(i): 51a0d3@192.0.2.64\r\n"
            + "CSeq: 20 MESSAGE\r\n\(c): Application/MANSCDP+xml\r\nMax-Forwards: 70\r\n\(l): \(body.utf8.count)\r\n\r\n\(body)"
    }

    @Test("the notes' REGISTER parses: start line, headers in any case, Digest fields, URI users")
    func parsesRegister() throws {
        let message = try SIPMessage.parse(Array(Self.register.utf8))
        #expect(message.start == .request(method: "REGISTER", uri: "sip:34020000002000000001@3402000000"))
        #expect(message.header("EXPIRES") == "3600")
        #expect(message.header("call-id") == "9c2e71f0@192.0.2.64")
        #expect(message.header("from").flatMap(SIPMessage.user(ofAddress:)) == "34020000001320000001")
        #expect(message.header("from").flatMap { SIPMessage.parameter("tag", in: $0) } == "38102")
        #expect(message.body.isEmpty)
    }

    @Test("compact header forms read like full names; the keepalive body is exactly Content-Length bytes")
    func compactForms() throws {
        let full = try SIPMessage.parse(Array(Self.keepalive().utf8))
        let compact = try SIPMessage.parse(Array(Self.keepalive(compact: true).utf8))
        for name in ["via", "from", "to", "call-id", "content-type", "content-length"] {
            #expect(compact.header(name) == full.header(name), "\(name)")
        }
        #expect(compact.body.count == 169)
        #expect(compact.body == full.body)
    }

    @Test("several Via values, in one header or several, stay in order; serialization round-trips")
    func multiVia() throws {
        let text = Self.register.replacingOccurrences(
            of: "Via: SIP/2.0/UDP 192.0.2.64:5060;rport;branch=z9hG4bK8372251\r\n",
            with: "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa, SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKb\r\nv: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKc\r\n")
        let message = try SIPMessage.parse(Array(text.utf8))
        #expect(message.values("via").count == 3)
        #expect(message.values("VIA").last?.contains("10.0.0.3") == true)
        let again = try SIPMessage.parse(message.serialized())
        #expect(again == message)
    }

    @Test("truncated headers, a short body, a non-numeric Content-Length and junk are errors, not crashes")
    func malformed() {
        let register = Array(Self.register.utf8)
        #expect(throws: SIPParseError.self) { try SIPMessage.parse(Array(register.prefix(120))) }
        let short = Self.keepalive().replacingOccurrences(of: "Content-Length: 169", with: "Content-Length: 400")
        #expect(throws: SIPParseError.badContentLength("Content-Length 400 but 169 body bytes")) { try SIPMessage.parse(Array(short.utf8)) }
        let word = Self.keepalive().replacingOccurrences(of: "Content-Length: 169", with: "Content-Length: lots")
        #expect(throws: SIPParseError.self) { try SIPMessage.parse(Array(word.utf8)) }
        #expect(throws: SIPParseError.self) { try SIPMessage.parse(Array("HELLO\r\n\r\n".utf8)) }
        #expect(throws: SIPParseError.self) { try SIPMessage.parse([0xff, 0xfe, 13, 10, 13, 10]) }
        let noCallID = Self.register.replacingOccurrences(of: "Call-ID: 9c2e71f0@192.0.2.64\r\n", with: "")
        #expect(throws: SIPParseError.malformed("no call-id header")) { try SIPMessage.parse(Array(noCallID.utf8)) }
    }

    @Test("TCP framing: messages split anywhere and CRLF pings between them come out whole and in order")
    func streamFraming() throws {
        var framer = SIPStreamFramer()
        let stream = Array(("\r\n\r\n" + Self.register + "\r\n" + Self.keepalive()).utf8)
        var out: [SIPMessage] = []
        for chunk in stride(from: 0, to: stream.count, by: 37).map({ Array(stream[$0..<min($0 + 37, stream.count)]) }) {
            out += try framer.append(chunk)
        }
        #expect(out.map(\.method) == ["REGISTER", "MESSAGE"])
        #expect(out.last?.body.count == 169)
        var noLength = SIPStreamFramer()
        let bare = Self.register.replacingOccurrences(of: "Content-Length: 0\r\n", with: "")
        #expect(throws: SIPParseError.badContentLength("no Content-Length on a stream transport")) { try noLength.append(Array(bare.utf8)) }
    }

    @Test("the Digest vectors of the notes, with and without qop")
    func digestVectors() {
        var fields: [String: String] = [
            "username": "34020000001320000001", "realm": "3402000000", "nonce": "6fa3d2c1b0e94f7a8c5d3e2f1a0b9c8d",
            "uri": "sip:34020000002000000001@3402000000", "nc": "00000001", "cnonce": "0a4f113b", "qop": "auth",
        ]
        #expect(DigestAuthentication.expectedResponse(fields: fields, method: "REGISTER", password: "gbPass123") == "471159ea9cca28e3b239248d2a642ce1")
        fields["qop"] = nil
        #expect(DigestAuthentication.expectedResponse(fields: fields, method: "REGISTER", password: "gbPass123") == "bba2cb63dabaadb856ffab1a3faee752")
        #expect(DigestAuthentication.expectedResponse(fields: fields, method: "REGISTER", password: "wrong") != "bba2cb63dabaadb856ffab1a3faee752")
    }

    @Test("MANSCDP in GB2312 with Chinese names, UTF-8, no declaration, lone ampersands; bad charsets and XML are errors")
    func manscdp() throws {
        let catalog = "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Response><CmdType>Catalog</CmdType><SN>88</SN><DeviceID>34020000001320000001</DeviceID><SumNum>1</SumNum><DeviceList Num=\"1\"><Item><DeviceID>34020000001310000001</DeviceID><Name>北门入口 & 东</Name></Item></DeviceList></Response>"
        let gb = try #require(TextDecoding.encode(catalog, as: .gb18030))
        #expect(String(validating: gb, as: UTF8.self) == nil)
        let body = try MANSCDPBody.parse(gb)
        #expect(body.root == "Response" && body.cmdType == "Catalog" && body.sn == "88")
        #expect(body.charset == .gb18030)
        #expect(body.element.child("DeviceList")?.child("Item")?.child("Name")?.trimmedText == "北门入口 & 东")
        let utf8 = try MANSCDPBody.parse(Array(Self.keepaliveBody.replacingOccurrences(of: "GB2312", with: "UTF-8").utf8))
        #expect(utf8.cmdType == "Keepalive" && utf8.charset == .utf8)
        let bare = try MANSCDPBody.parse(Array("<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>x</DeviceID></Notify>".utf8))
        #expect(bare.deviceID == "x")
        #expect(throws: MANSCDPError.self) { try MANSCDPBody.parse(Array(Self.keepaliveBody.replacingOccurrences(of: "GB2312", with: "KOI8-R").utf8)) }
        #expect(throws: MANSCDPError.self) { try MANSCDPBody.parse(Array("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Notify><CmdType>A".utf8) + [0xff]) }
        #expect(throws: MANSCDPError.self) { try MANSCDPBody.parse(Array("<Notify><CmdType>Keepalive</CmdType></Notify".utf8)) }
        #expect(throws: MANSCDPError.self) { try MANSCDPBody.parse(Array("<Notify><SN>1</SN></Notify>".utf8)) }
    }

    @Test("alarm method/type become kinds, config rows first; dedup key = SN plus content")
    func alarmKinds() throws {
        func body(_ sn: Int, method: Int, type: Int?, time: String = "2025-03-14T10:16:02") throws -> MANSCDPBody {
            let info = type.map { "<Info><AlarmType>\($0)</AlarmType></Info>" } ?? ""
            return try MANSCDPBody.parse(Array("<?xml version=\"1.0\" encoding=\"GB2312\"?><Notify><CmdType>Alarm</CmdType><SN>\(sn)</SN><DeviceID>34020000001310000001</DeviceID><AlarmPriority>1</AlarmPriority><AlarmMethod>\(method)</AlarmMethod><AlarmTime>\(time)</AlarmTime>\(info)</Notify>".utf8))
        }
        let shanghai = try #require(TimeZone(identifier: "Asia/Shanghai"))
        let motion = GB28181AlarmKinds.draft(try body(1207, method: 5, type: 2), deviceID: "d", zone: shanghai, overrides: [:], channelName: "北门")
        #expect(motion.kind == .cameraMotion)
        #expect(motion.point == "34020000001310000001")
        #expect(motion.priority == .alarm)
        #expect(motion.occurredAt == Timestamp(milliseconds: 1_741_918_562_000))
        #expect(motion.attributes?["pointName"] == .string("北门"))
        #expect(GB28181AlarmKinds.draft(try body(1, method: 5, type: 6), deviceID: "d", zone: shanghai, overrides: [:], channelName: nil).kind == .cameraIntrusion)
        #expect(GB28181AlarmKinds.draft(try body(1, method: 2, type: nil), deviceID: "d", zone: shanghai, overrides: [:], channelName: nil).kind == .alarmInput)
        #expect(GB28181AlarmKinds.draft(try body(1, method: 2, type: 2), deviceID: "d", zone: shanghai, overrides: [:], channelName: nil).kind == .alarmTamper)
        #expect(GB28181AlarmKinds.draft(try body(1, method: 2, type: 6), deviceID: "d", zone: shanghai, overrides: ["2/6": .alarmFire], channelName: nil).kind == .alarmFire)
        #expect(GB28181AlarmKinds.draft(try body(1, method: 7, type: nil), deviceID: "d", zone: shanghai, overrides: [:], channelName: nil).kind == .vendorOther)
        let again = GB28181AlarmKinds.draft(try body(1207, method: 5, type: 2), deviceID: "d", zone: shanghai, overrides: [:], channelName: nil)
        let other = GB28181AlarmKinds.draft(try body(1207, method: 5, type: 2, time: "2025-03-14T11:00:00"), deviceID: "d", zone: shanghai, overrides: [:], channelName: nil)
        #expect(again.dedupKey == motion.dedupKey)
        #expect(other.dedupKey != motion.dedupKey)
        let bad = GB28181AlarmKinds.draft(try body(2, method: 5, type: 2, time: "yesterday"), deviceID: "d", zone: shanghai, overrides: [:], channelName: nil)
        #expect(bad.occurredAt == nil && bad.timeIssue != nil)
    }

    @Test("the Date header is the gateway's local time with milliseconds and no zone")
    func sipDate() throws {
        let shanghai = try #require(TimeZone(identifier: "Asia/Shanghai"))
        #expect(GB28181Registrar.sipDate(Timestamp(milliseconds: 1_741_918_530_512), zone: shanghai) == "2025-03-14T10:15:30.512")
    }
}
