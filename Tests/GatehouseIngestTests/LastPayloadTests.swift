import Foundation
@testable import GatehouseCore
import Testing

@testable import GatehouseIngest

/// A device's last raw payload as the console shows it (`LastPayload.shown(under:)`).
@Suite("last payload")
struct LastPayloadTests {
    static let at = Timestamp(milliseconds: 1_764_576_000_000)
    static func plate(_ value: String, name: String? = nil) -> [EventDraft] {
        [EventDraft(kind: .vehicleEntry, subject: Subject(type: .plate, value: value), attributes: name.map { ["ownerName": .string($0)] })]
    }

    static let masking = PrivacyPolicy(modes: [.plate: .mask, .card: .hash], hashSecret: Secret(value: "site-secret", origin: "test"))

    @Test("a plate the mapping read is replaced as the policy stores it, also JSON-escaped and percent-encoded; a name is removed")
    func policyForms() {
        let body = #"{"plate":"川F12345","copy":"\u5ddd\u0046\u0031\u0032\u0033\u0034\u0035","escaped":"\u5dddF12345","form":"p=%E5%B7%9DF12345","owner":"张三"}"#
        let shown = LastPayload(Array(body.utf8), contentType: "application/json", receivedAt: Self.at, mapped: Self.plate("川F12345", name: "张三"))
            .shown(under: Self.masking)
        #expect(!shown.text.contains("川F12345") && !shown.text.contains("5ddd") && !shown.text.contains("5DDD") && !shown.text.contains("%E5%B7%9D"), "\(shown.text)")
        #expect(!shown.text.contains("张三"))
        #expect(shown.text.contains(#""plate":"川F1***5""#) && shown.text.contains(#""owner":"…""#), "\(shown.text)")
        #expect(shown.mapped)
        let hashed = LastPayload(Array(#"{"card":"8800123456"}"#.utf8), contentType: nil, receivedAt: Self.at,
            mapped: [EventDraft(kind: .accessGranted, subject: Subject(type: .card, value: "8800123456"))]).shown(under: Self.masking)
        #expect(hashed.text.contains("hmac-sha256:") && !hashed.text.contains("8800123456"))
        let kept = LastPayload(Array(body.utf8), contentType: nil, receivedAt: Self.at, mapped: Self.plate("川F12345")).shown(under: .default)
        #expect(kept.text.contains("川F12345"), "the default policy keeps plates: shown as stored")
    }

    @Test("a payload that did not map hides every value-like word")
    func unmapped() {
        let shown = LastPayload(Array(#"{"plate":"川F12345","card":"8800123456","door":1}"#.utf8), contentType: nil, receivedAt: Self.at, mapped: nil)
            .shown(under: .default)
        #expect(!shown.mapped && !shown.text.contains("川F12345") && !shown.text.contains("8800123456"))
        #expect(shown.text.contains(#""door":1"#))
    }

    @Test("base64 pictures and binary parts are replaced by a note of their size")
    func pictures() {
        let picture = Data((0..<3000).map { UInt8($0 % 251) }).base64EncodedString()
        let json = #"{"plate":"川F12345","picture":""# + picture + #"","after":"kept"}"#
        let shown = LastPayload(Array(json.utf8), contentType: "application/json", receivedAt: Self.at, mapped: Self.plate("川F12345"))
            .shown(under: Self.masking)
        #expect(shown.text.contains("[base64, \(picture.utf8.count) bytes: not shown]") && shown.text.contains(#""after":"kept""#), "\(shown.text)")
        let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10] + Array("JFIF".utf8) + (0..<5000).map { UInt8(($0 * 7) % 256) }
        let multipart = Array("--b\r\nContent-Type: application/json\r\n\r\n{\"plate\":\"川F12345\"}\r\n--b\r\nContent-Type: image/jpeg\r\n\r\n".utf8)
            + jpeg + Array("\r\n--b--\r\n and the rest of the body, readable text\r\n".utf8)
        let parts = LastPayload(multipart, contentType: "multipart/form-data; boundary=b", receivedAt: Self.at, mapped: Self.plate("川F12345"))
            .shown(under: Self.masking)
        #expect(parts.text.contains("川F1***5") && parts.text.contains("bytes: not shown]") && parts.text.contains("--b--"), "\(parts.text)")
        #expect(!parts.text.unicodeScalars.contains { $0 == "\u{FFFD}" }, "no undecodable bytes reach the page")
    }

    @Test("a large payload keeps at most 16 KB, compacted so that the fields after a picture still show, and never the start of a cut plate")
    func bounded() {
        let picture = String(repeating: "QUJD", count: 50_000)
        let big = Array((#"{"picture":""# + picture + #"","plate":"川F12345"}"#).utf8)
        let payload = LastPayload(big, contentType: nil, receivedAt: Self.at, mapped: Self.plate("川F12345"))
        let shown = payload.shown(under: Self.masking)
        #expect(shown.byteCount == big.count && shown.shownBytes == big.count, "the picture is elided, so all of it is covered")
        #expect(payload.kept.count <= LastPayload.keptBytes)
        #expect(shown.text.contains("川F1***5"), "\(shown.text)")
        let filler = String(repeating: "a b ", count: LastPayload.keptBytes / 4 - 1)
        let cut = Array((filler + "川F12345 more").utf8)
        let cutShown = LastPayload(cut, contentType: nil, receivedAt: Self.at, mapped: Self.plate("川F12345")).shown(under: Self.masking)
        #expect(cutShown.shownBytes < cutShown.byteCount && !cutShown.text.hasSuffix("川F") && cutShown.text.hasSuffix("…"), "\(cutShown.text.suffix(20))")
    }
}
