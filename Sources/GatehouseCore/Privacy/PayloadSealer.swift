import Crypto
import Foundation

/// Seals raw payloads kept for replay (quarantine) with the site's quarantine key, AES-256-GCM,
/// so that a copy of the queue file holds no clear plate, card or name and replay still works.
/// Each sealed value is stored with `keyID`, so a payload sealed under another key is reported
/// as such instead of failing as corrupt.
public struct PayloadSealer: Sendable {
    /// A short digest of the key (not of the secret text), safe to store and print.
    public let keyID: String
    /// Where the key came from, for messages (`file /etc/…`, `generated file …`).
    public let origin: String
    private let key: SymmetricKey

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The configured secret may be any text: HKDF turns it into a 256-bit key.
    public init(secret: Secret) {
        key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Data(secret.value.utf8)), salt: Data("gatehouse.quarantine".utf8),
            info: Data("aes-256-gcm".utf8), outputByteCount: 32)
        let digest = key.withUnsafeBytes { SHA256.hash(data: Data("gatehouse.key-id".utf8) + Data($0)) }
        keyID = digest.prefix(6).map { String(format: "%02x", $0) }.joined()
        origin = secret.origin
    }

    /// Hex SHA-256 of a payload: what is kept of a discarded quarantine entry instead of its bytes.
    public static func digest(_ payload: Data) -> String {
        SHA256.hash(data: payload).map { String(format: "%02x", $0) }.joined()
    }

    /// Nonce, ciphertext and tag in one blob.
    public func seal(_ plain: Data) throws(Failure) -> Data {
        do {
            guard let combined = try AES.GCM.seal(plain, using: key).combined else {
                throw Failure(description: "AES-GCM gave no combined box")
            }
            return combined
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "cannot seal: \(error)")
        }
    }

    /// Opens a blob sealed under `keyID`; another key id is reported with both ids.
    public func open(_ sealed: Data, keyID sealedWith: String) throws(Failure) -> Data {
        guard sealedWith == keyID else {
            throw Failure(
                description: "sealed with quarantine key \(sealedWith), but the configured key (\(origin)) is \(keyID); configure the key it was sealed with to read it")
        }
        do {
            return try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: key)
        } catch {
            throw Failure(description: "sealed payload does not open with quarantine key \(keyID) (damaged or altered): \(error)")
        }
    }

    public static let generatedKeyFileName = "quarantine.key"
    /// Bytes a sealed blob adds to its plain text: 12 of nonce, 16 of tag.
    public static let overhead = 28

    /// The configured key, or else `<directory>/quarantine.key`, created once with 32 random
    /// bytes and mode 0600. A key beside the data protects copies of the queue file (backups,
    /// support bundles), not a stolen disk: configure `privacy.quarantine_key` for that.
    public static func resolve(configured: Secret?, directory: String) throws(Failure) -> PayloadSealer {
        if let configured { return PayloadSealer(secret: configured) }
        let path = (directory as NSString).appendingPathComponent(generatedKeyFileName)
        if FileManager.default.fileExists(atPath: path) { return try readGenerated(path) }
        do {
            try DurableDirectory.create(directory)
        } catch {
            throw Failure(description: "cannot create \(directory) for the quarantine key: \(error.description)")
        }
        let text = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
        // O_EXCL: of two processes starting at once, one writes the key and the other reads it.
        let fd = Foundation.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST { return try readGenerated(path) }
            throw Failure(description: "cannot create quarantine key file \(path): errno \(errno)")
        }
        let bytes = Array((text + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced else {
            unlink(path)
            throw Failure(description: "cannot write quarantine key file \(path): errno \(errno)")
        }
        // The key's directory entry must outlive a power cut too, or sealed entries become unreadable.
        do { try DurableDirectory.sync(directory) } catch { throw Failure(description: error.description) }
        return PayloadSealer(secret: Secret(value: text, origin: "generated file \(path)"))
    }

    static func readGenerated(_ path: String) throws(Failure) -> PayloadSealer {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Failure(description: "cannot read quarantine key file \(path) (run the tool as the daemon's user, e.g. sudo -u gatehouse, or set privacy.quarantine_key)")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else {
            throw Failure(description: "quarantine key file \(path) is empty (delete it to generate a new one; entries sealed with the old key become unreadable)")
        }
        return PayloadSealer(secret: Secret(value: text, origin: "generated file \(path)"))
    }
}
