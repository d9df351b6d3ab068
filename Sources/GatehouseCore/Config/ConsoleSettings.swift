import Foundation

/// The web console on the admin listener (`admin.console:`). Pages are read-only for anyone who
/// reaches the listener; changing actions need one of `users` to log in.
public struct ConsoleSettings: Sendable, Equatable {
    public struct User: Sendable, Equatable {
        public var name: String
        public var passwordHash: ConsolePasswordHash
        public init(name: String, passwordHash: ConsolePasswordHash) {
            self.name = name
            self.passwordHash = passwordHash
        }
    }

    public var enabled: Bool
    public var users: [User]
    /// A session ends this long after login, whatever it did since.
    public var sessionMinutes: Double
    /// The admin listener speaks TLS: the session cookie is marked `Secure`.
    public var secureCookies = false

    public init(enabled: Bool = true, users: [User] = [], sessionMinutes: Double = 30) {
        self.enabled = enabled
        self.users = users
        self.sessionMinutes = sessionMinutes
    }
}

/// A stored scrypt password hash, `scrypt$<log2 N>$<r>$<p>$<salt base64>$<key base64>`, as
/// `gatehouse console hash-password` writes it. Only the format is read here; the console derives
/// and compares the key.
public struct ConsolePasswordHash: Sendable, Equatable, CustomStringConvertible {
    public var logRounds: Int
    public var blockSize: Int
    public var parallelism: Int
    public var salt: Data
    public var key: Data

    public static let format = "scrypt$<log2 N 10…20>$<r 1…32>$<p 1…16>$<salt base64>$<key base64>"

    public init(logRounds: Int, blockSize: Int, parallelism: Int, salt: Data, key: Data) {
        self.logRounds = logRounds
        self.blockSize = blockSize
        self.parallelism = parallelism
        self.salt = salt
        self.key = key
    }

    public init?(_ text: String) {
        let parts = text.split(separator: "$", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 6, parts[0] == "scrypt",
            let logRounds = Int(parts[1]), (10...20).contains(logRounds),
            let blockSize = Int(parts[2]), (1...32).contains(blockSize),
            let parallelism = Int(parts[3]), (1...16).contains(parallelism),
            let salt = Data(base64Encoded: parts[4]), salt.count >= 16,
            let key = Data(base64Encoded: parts[5]), key.count >= 32
        else { return nil }
        self.init(logRounds: logRounds, blockSize: blockSize, parallelism: parallelism, salt: salt, key: key)
    }

    public var description: String {
        "scrypt$\(logRounds)$\(blockSize)$\(parallelism)$\(salt.base64EncodedString())$\(key.base64EncodedString())"
    }
}

extension YAMLMapping {
    /// `admin.tls: {certificate, key}`: both PEM files, readable now rather than at the first
    /// connection.
    package func adminTLS() -> AdminTLSFiles? {
        guard let tls = mapping("tls") else { return nil }
        defer { tls.finish() }
        var files: [String: String] = [:]
        for key in ["certificate", "key"] {
            guard let path = tls.filePath(key, required: true, expected: "a PEM file") else { continue }
            if !FileManager.default.isReadableFile(atPath: path) {
                log.report(tls.node(key), fallback: tls.mark, key: tls.join(key), "cannot read '\(path)' (expected a readable PEM file)")
            }
            files[key] = path
        }
        guard let certificate = files["certificate"], let key = files["key"] else { return nil }
        return AdminTLSFiles(certificateFile: certificate, keyFile: key)
    }

    /// `admin.console:`. Logins send passwords and session cookies, so users on a listener bound
    /// beyond loopback need `admin.tls`.
    package func consoleSettings(adminHost: String, tls: Bool = false) -> ConsoleSettings {
        guard let map = mapping("console") else { return ConsoleSettings() }
        var users: [ConsoleSettings.User] = []
        for item in map.sequence("users") {
            guard let user = YAMLMapping(item.node, path: item.path, log: log) else { continue }
            let name = user.string("name", required: true, expected: "a user name such as installer")
            let hashText = user.string("password_hash", required: true, expected: "a hash from `gatehouse console hash-password`")
            user.finish()
            guard let name, let hashText else { continue }
            guard let hash = ConsolePasswordHash(hashText) else {
                log.report(user.node("password_hash"), fallback: user.mark, key: "\(item.path).password_hash",
                    "not a password hash (expected \(ConsolePasswordHash.format), as `gatehouse console hash-password` prints it)")
                continue
            }
            users.append(.init(name: name, passwordHash: hash))
        }
        var settings = ConsoleSettings(
            enabled: map.bool("enabled", default: true), users: users,
            sessionMinutes: map.double("session_minutes", default: 30, range: 1...1440))
        settings.secureCookies = tls
        if !users.isEmpty && !tls && !Self.isLoopback(adminHost) {
            log.report(map.node("users"), fallback: map.mark, key: map.join("users"),
                "console logins beyond loopback need TLS (admin.host is \(adminHost); expected admin.tls: {certificate: …pem, key: …pem}, or admin.host 127.0.0.1 or ::1 reached over SSH port forwarding)")
        }
        map.finish()
        return settings
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
