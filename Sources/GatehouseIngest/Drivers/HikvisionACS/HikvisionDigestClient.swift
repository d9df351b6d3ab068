import Crypto
import Foundation
import GatehouseCore

/// The client side of HTTP Digest (RFC 2617/7616, MD5, qop=auth) as ISAPI devices expect it.
/// Pure: the challenge comes in, the `Authorization` value goes out, so tests can pin vectors.
struct HikvisionDigestClient: Sendable {
    struct Challenge: Sendable, Equatable {
        var realm: String
        var nonce: String
        var qop: String?
        var opaque: String?
        var algorithm: String?
    }

    /// The Digest challenge in a `WWW-Authenticate` value, or nil when it is not Digest.
    static func challenge(_ header: String) -> Challenge? {
        guard header.lowercased().hasPrefix("digest ") else { return nil }
        let fields = DigestAuthentication.parse(String(header.dropFirst(7)))
        guard let realm = fields["realm"], let nonce = fields["nonce"] else { return nil }
        // qop may list several ("auth,auth-int"); this client speaks auth.
        let qop = fields["qop"].flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.contains("auth") ? "auth" : nil }
        return Challenge(realm: realm, nonce: nonce, qop: qop, opaque: fields["opaque"], algorithm: fields["algorithm"])
    }

    /// The `Authorization` value for one request. `nc` counts requests made with this nonce.
    static func authorization(
        _ challenge: Challenge, method: String, uri: String, username: String, password: String, cnonce: String, nc: Int
    ) -> String {
        let ha1 = DigestAuthentication.md5("\(username):\(challenge.realm):\(password)")
        let ha2 = DigestAuthentication.md5("\(method):\(uri)")
        let count = String(format: "%08x", nc)
        var header = "Digest username=\"\(username)\", realm=\"\(challenge.realm)\", nonce=\"\(challenge.nonce)\", uri=\"\(uri)\""
        if let qop = challenge.qop {
            let response = DigestAuthentication.md5("\(ha1):\(challenge.nonce):\(count):\(cnonce):\(qop):\(ha2)")
            header += ", qop=\(qop), nc=\(count), cnonce=\"\(cnonce)\", response=\"\(response)\""
        } else {
            header += ", response=\"\(DigestAuthentication.md5("\(ha1):\(challenge.nonce):\(ha2)"))\""
        }
        if let opaque = challenge.opaque { header += ", opaque=\"\(opaque)\"" }
        if challenge.algorithm != nil { header += ", algorithm=MD5" }
        return header
    }

    static func basic(username: String, password: String) -> String {
        "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
    }

    static func newCnonce() -> String {
        (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
}

/// What a gateway-initiated ISAPI connection needs from a device entry (its `http://host:port`
/// and credentials), and what is missing when it cannot log in. Shared by `hikvision-acs`
/// (poll) and `hikvision-camera` (stream), so both read and check `address`/`auth` alike.
struct ISAPIClientConfig: Equatable {
    var baseURL: String?
    var username: String?
    var password: String?
    var useDigest = true

    init(_ device: DeviceConfig) {
        baseURL = device.address.map(Self.baseURL)
        switch device.auth {
        case .digest(let user, let secret): (username, password, useDigest) = (user, secret.value, true)
        case .basic(let user, let secret): (username, password, useDigest) = (user, secret.value, false)
        default: break
        }
    }

    static func baseURL(_ address: String) -> String {
        var text = address.hasPrefix("http://") || address.hasPrefix("https://") ? address : "http://" + address
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    /// `address` and `auth` problems for a device of `noun` ("terminal", "camera") in `mode`; `example` is a host,
    /// `user` what the device calls the account, `otherwise` a way out named after a missing address.
    static func problems(
        in device: DeviceConfig, noun: String, mode: String, example: String, user: String = "ISAPI user", otherwise: String = ""
    ) -> [String] {
        var problems: [String] = []
        if let address = device.address {
            let url = URL(string: baseURL(address))
            if url?.host == nil || !(url?.path ?? "").isEmpty {
                problems.append("address: '\(address)' is not a \(noun) address (expected host or host:port, e.g. \(example):80)")
            }
        } else {
            problems.append("address: required with mode: \(mode) (the \(noun)'s host[:port], e.g. \(example))\(otherwise)")
        }
        switch device.auth {
        case .digest, .basic: break
        case .token:
            problems.append("auth: a token cannot log in to a \(noun) (with mode: \(mode) give username, password and scheme: digest)")
        case nil:
            problems.append("auth: required with mode: \(mode) (the \(noun)'s \(user): username, password, scheme: digest)")
        }
        return problems
    }
}
