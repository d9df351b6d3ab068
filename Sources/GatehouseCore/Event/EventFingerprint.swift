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
    /// Runs for every event ingested, so it hashes the fields in place and writes the hex itself.
    /// `alarm` (state and alarm id) is hashed only when present, so events at an instant keep
    /// the fingerprint they had before alarms had states: a start and its stop at the same second differ.
    public static func of(
        kind: EventKind, subject: Subject?, deviceTime: String?, point: String?, result: AccessResult?,
        alarm: (state: AlarmState, id: String?)? = nil
    ) -> String {
        var hasher = SHA256()
        func add(_ field: String?) {
            // Length-prefixed so that ("ab", "c") and ("a", "bc") differ; absent differs from empty.
            var length = (field.map { UInt32($0.utf8.count) } ?? UInt32.max).bigEndian
            withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
            guard var text = field else { return }
            text.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        }
        add(kind.rawValue)
        add(subject?.type.rawValue)
        add(subject?.value)
        add(deviceTime)
        add(point)
        add(result?.rawValue)
        if let alarm {
            add(alarm.state.rawValue)
            add(alarm.id)
        }
        var hex = [UInt8]()
        hex.reserveCapacity(32)
        for byte in hasher.finalize().prefix(16) {
            hex.append(hexDigits[Int(byte >> 4)])
            hex.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}
