import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore

/// The device side of HTTP Digest (MD5, qop=auth) as ISAPI devices speak it. Nonces are a
/// time stamp with an HMAC (valid five minutes), so any number of connections can be checked
/// without keeping state. Shared by the Hikvision terminal and camera simulators.
struct SimulatedDigest: Sendable {
    let username: String
    let password: String
    let realm: String
    private let nonceKey = SymmetricKey(size: .bits256)

    init(username: String, password: String, realm: String) {
        self.username = username
        self.password = password
        self.realm = realm
    }

    /// A `WWW-Authenticate` value with a fresh nonce.
    func challenge(opaque: String? = nil) -> String {
        "Digest qop=\"auth\", realm=\"\(realm)\", nonce=\"\(nonce())\", stale=\"FALSE\"" + (opaque.map { ", opaque=\"\($0)\"" } ?? "")
    }

    func nonce() -> String {
        let stamp = String(Int64(Date().timeIntervalSince1970))
        let mac = HMAC<SHA256>.authenticationCode(for: Data(stamp.utf8), using: nonceKey)
        return stamp + "." + Data(mac).prefix(12).map { String(format: "%02x", $0) }.joined()
    }

    func verify(_ header: String, method: String, uri: String) -> Bool {
        guard header.lowercased().hasPrefix("digest ") else { return false }
        let fields = Self.parse(String(header.dropFirst(7)))
        guard fields["username"] == username, fields["realm"] == realm, fields["uri"] == uri, let nonce = fields["nonce"],
            let response = fields["response"], let nc = fields["nc"], let cnonce = fields["cnonce"], fields["qop"] == "auth"
        else { return false }
        let parts = nonce.split(separator: ".")
        guard parts.count == 2, let stamp = Double(parts[0]), Date().timeIntervalSince1970 - stamp < 300 else { return false }
        let mac = HMAC<SHA256>.authenticationCode(for: Data(String(parts[0]).utf8), using: nonceKey)
        guard Data(mac).prefix(12).map({ String(format: "%02x", $0) }).joined() == parts[1] else { return false }
        let ha1 = Self.md5("\(username):\(realm):\(password)")
        let ha2 = Self.md5("\(method):\(uri)")
        return Self.md5("\(ha1):\(nonce):\(nc):\(cnonce):auth:\(ha2)") == response.lowercased()
    }

    static func md5(_ text: String) -> String {
        Insecure.MD5.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func parse(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        let pattern = /([A-Za-z]+)=(?:"([^"]*)"|([^,\s]*))/
        for match in text.matches(of: pattern) {
            fields[String(match.1).lowercased()] = String(match.2 ?? match.3 ?? "")
        }
        return fields
    }
}

/// What the Hikvision simulators share when they play an HTTP listening host's client.
enum SimulatedPush {
    /// A small JPEG-shaped picture part body.
    static let picture: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0] + Array(repeating: 0x42, count: 512) + [0xFF, 0xD9]

    /// A listening-mode multipart body as the firmware writes it: the alert part with its
    /// Content-Length, then a picture part. Returns the body and its Content-Type.
    static func multipart(
        boundary: String, alert: String, alertDisposition: String, alertType: String, pictureDisposition: String
    ) -> (body: [UInt8], contentType: String) {
        var body = Array("--\(boundary)\r\nContent-Disposition: \(alertDisposition)\r\nContent-Type: \(alertType)\r\nContent-Length: \(alert.utf8.count)\r\n\r\n\(alert)\r\n".utf8)
        body += Array("--\(boundary)\r\nContent-Disposition: \(pictureDisposition)\r\nContent-Type: image/jpeg\r\n\r\n".utf8)
        body += picture
        body += Array("\r\n--\(boundary)--\r\n".utf8)
        return (body, "multipart/form-data; boundary=\(boundary)")
    }

    /// POSTs `body` to `url`; the status, or 0 when the connection failed.
    static func post(_ body: [UInt8], contentType: String, to url: String, client: HTTPClient) async -> Int {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: contentType)
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            _ = try await response.body.collect(upTo: 1 << 20)
            return Int(response.status.code)
        } catch {
            return 0
        }
    }
}
