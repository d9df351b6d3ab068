import Crypto

/// A digest of what a device said happened: kind, subject, the device's time, point and result.
///
/// Vendor record numbers are hints, not identities: cameras restart their counters at boot,
/// some firmware sends one placeholder id for every read, cleared controller logs reuse their
/// indexes. The queue treats a repeated dedup key as a duplicate only when the fingerprint is
/// the same too. Receive-side fields (ids, receive time, site) and pictures are left out, so a
/// re-sent payload has the fingerprint of its first copy. It is taken after the privacy policy,
/// so it says nothing the stored event does not.
public enum EventFingerprint {
    /// 32 hex digits: the first 128 bits of SHA-256 over the fields, each length-prefixed.
    public static func of(kind: EventKind, subject: Subject?, deviceTime: String?, point: String?, result: AccessResult?) -> String {
        var hasher = SHA256()
        for field in [kind.rawValue, subject?.type.rawValue, subject?.value, deviceTime, point, result?.rawValue] {
            // Length-prefixed so that ("ab", "c") and ("a", "bc") differ; absent differs from empty.
            let bytes = Array((field ?? "").utf8)
            let length = field == nil ? UInt32.max : UInt32(bytes.count)
            hasher.update(data: withUnsafeBytes(of: length.bigEndian) { Array($0) })
            hasher.update(data: bytes)
        }
        return hasher.finalize().prefix(16).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
