import Crypto
import Foundation

/// The server side of HTTP Digest (MD5, qop=auth) as device firmware speaks it, for the
/// simulators. Nonces carry their time and an HMAC under a per-instance key, so no nonce table
/// is kept; a nonce is good for five minutes.
struct SimulatedDigest: Sendable {
    let realm: String
    let username: String
    let password: String
    private let nonceKey = SymmetricKey(size: .bits256)

    init(realm: String, username: String, password: String) {
        self.realm = realm
        self.username = username
        self.password = password
    }

    func nonce() -> String {
        let stamp = String(Int64(Date().timeIntervalSince1970))
        return stamp + "." + mac(stamp)
    }

    /// Whether the `Authorization` value proves the user's password for `method` and `uri`.
    func verify(_ header: String, method: String, uri: String) -> Bool {
        guard header.lowercased().hasPrefix("digest ") else { return false }
        let fields = Self.parse(String(header.dropFirst(7)))
        guard fields["username"] == username, fields["realm"] == realm, fields["uri"] == uri, let nonce = fields["nonce"],
            let response = fields["response"], let nc = fields["nc"], let cnonce = fields["cnonce"], fields["qop"] == "auth"
        else { return false }
        let parts = nonce.split(separator: ".")
        guard parts.count == 2, let stamp = Double(parts[0]), Date().timeIntervalSince1970 - stamp < 300,
            mac(String(parts[0])) == parts[1]
        else { return false }
        let ha1 = Self.md5("\(username):\(realm):\(password)")
        let ha2 = Self.md5("\(method):\(uri)")
        return Self.md5("\(ha1):\(nonce):\(nc):\(cnonce):auth:\(ha2)") == response.lowercased()
    }

    private func mac(_ stamp: String) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Data(stamp.utf8), using: nonceKey)).prefix(12).map { String(format: "%02x", $0) }.joined()
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
