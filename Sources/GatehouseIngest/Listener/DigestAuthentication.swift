import Crypto
import Foundation
import GatehouseCore

/// Server side of HTTP Digest (RFC 7616 with MD5 and qop=auth, the variant device firmware speaks).
///
/// Nonces carry their own time and an HMAC under a per-process key, so no nonce table is kept;
/// a nonce is accepted for `nonceLifetime` seconds.
struct DigestAuthentication: Sendable {
    static let realm = "gatehouse"
    static let nonceLifetime: Double = 300
    let key = SymmetricKey(size: .bits256)

    /// The `WWW-Authenticate` value for a 401.
    func challenge(now: Date) -> String {
        "Digest realm=\"\(Self.realm)\", qop=\"auth\", algorithm=MD5, nonce=\"\(nonce(at: now))\""
    }

    func nonce(at time: Date) -> String {
        let stamp = String(Int64(time.timeIntervalSince1970))
        let mac = HMAC<SHA256>.authenticationCode(for: Data(stamp.utf8), using: key)
        return stamp + "-" + Data(mac).prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `header` (the Authorization value) proves `username`/`password` for `method` and `uri`.
    func verify(header: String, method: String, uri: String, username: String, password: String, now: Date) -> Bool {
        guard header.lowercased().hasPrefix("digest ") else { return false }
        let fields = Self.parse(String(header.dropFirst(7)))
        guard let user = fields["username"], let nonce = fields["nonce"], let response = fields["response"],
            let requestURI = fields["uri"], fields["realm"] == Self.realm, requestURI == uri, user == username
        else { return false }
        // The nonce must be ours and fresh.
        let parts = nonce.split(separator: "-", maxSplits: 1)
        guard parts.count == 2, let stamp = Double(parts[0]), now.timeIntervalSince1970 - stamp < Self.nonceLifetime,
            self.nonce(at: Date(timeIntervalSince1970: stamp)) == nonce
        else { return false }
        guard let expected = Self.expectedResponse(fields: fields, method: method, password: password) else { return false }
        return DeviceRequests.constantTimeEqual(expected, response.lowercased())
    }

    /// The `response` a client must send for the fields of its Authorization header (MD5, with
    /// qop=auth or without qop, RFC 2617); nil when fields are missing. SIP registrars use it too.
    static func expectedResponse(fields: [String: String], method: String, password: String) -> String? {
        guard let username = fields["username"], let realm = fields["realm"], let nonce = fields["nonce"], let uri = fields["uri"] else { return nil }
        let ha1 = md5("\(username):\(realm):\(password)")
        let ha2 = md5("\(method):\(uri)")
        guard let qop = fields["qop"] else { return md5("\(ha1):\(nonce):\(ha2)") }
        guard qop == "auth", let nc = fields["nc"], let cnonce = fields["cnonce"] else { return nil }
        return md5("\(ha1):\(nonce):\(nc):\(cnonce):\(qop):\(ha2)")
    }

    static func md5(_ text: String) -> String {
        Insecure.MD5.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// `key="value", key=value, …` as in the Authorization header.
    static func parse(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        var rest = Substring(text)
        while !rest.isEmpty {
            rest = rest.drop { $0 == " " || $0 == "," }
            guard let equals = rest.firstIndex(of: "=") else { break }
            let key = rest[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            rest = rest[rest.index(after: equals)...]
            let value: Substring
            if rest.first == "\"" {
                rest = rest.dropFirst()
                let end = rest.firstIndex(of: "\"") ?? rest.endIndex
                value = rest[..<end]
                rest = end < rest.endIndex ? rest[rest.index(after: end)...] : rest[end...]
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = rest[..<end]
                rest = rest[end...]
            }
            fields[key] = value.trimmingCharacters(in: .whitespaces)
        }
        return fields
    }
}
