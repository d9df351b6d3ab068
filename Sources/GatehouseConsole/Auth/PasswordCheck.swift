import Crypto
import CryptoExtras
import Foundation
import GatehouseCore

/// scrypt through swift-crypto's CryptoExtras (BoringSSL): derive, store, verify.
public enum PasswordCheck {
    /// A new hash for `password` with a random salt, in the format `admin.console.users` takes.
    /// N = 2^15, r = 8, p = 1: about 32 MiB and a tenth of a second per login on a small box.
    public static func hash(_ password: String, logRounds: Int = 15) throws -> ConsolePasswordHash {
        let salt = Data(SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) })
        let key = try derive(password, salt: salt, logRounds: logRounds, blockSize: 8, parallelism: 1)
        return ConsolePasswordHash(logRounds: logRounds, blockSize: 8, parallelism: 1, salt: salt, key: key)
    }

    public static func verify(_ password: String, against stored: ConsolePasswordHash) -> Bool {
        guard
            let derived = try? derive(
                password, salt: stored.salt, logRounds: stored.logRounds, blockSize: stored.blockSize, parallelism: stored.parallelism,
                outputByteCount: stored.key.count)
        else { return false }
        // SymmetricKey's == compares in constant time.
        return SymmetricKey(data: derived) == SymmetricKey(data: stored.key)
    }

    static func derive(_ password: String, salt: Data, logRounds: Int, blockSize: Int, parallelism: Int, outputByteCount: Int = 32) throws -> Data {
        let key = try KDF.Scrypt.deriveKey(
            from: Array(password.utf8), salt: salt, outputByteCount: outputByteCount, rounds: 1 << logRounds, blockSize: blockSize,
            parallelism: parallelism)
        return key.withUnsafeBytes { Data($0) }
    }
}
