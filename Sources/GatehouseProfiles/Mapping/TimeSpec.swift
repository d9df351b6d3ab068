import Foundation
import GatehouseCore

/// One way a vendor writes its time stamp; a profile lists several and the first present wins
/// (Dahua: `RealUTC` when the firmware sends it, else `UTC`, which is local time written as epoch).
public struct TimeSpec: Sendable, Equatable {
    /// The time formats the engine reads.
    public enum Format: String, Sendable, CaseIterable {
        /// RFC 3339 / ISO 8601; without a zone it is read in the device's zone.
        case rfc3339
        /// `yyyy-MM-dd HH:mm:ss[.SSS]` wall clock in the device's zone.
        case local
        /// `yyyyMMddHHmmss[SSS]` wall clock in the device's zone.
        case compact
        case epochSeconds = "epoch-seconds"
        case epochMillis = "epoch-millis"
        /// Seconds since 1970 counted on the device's wall clock, not UTC: Dahua's `UTC` field.
        case epochLocal = "epoch-local"
    }

    public var path: FieldPath
    public var format: Format
    /// Milliseconds to add (Dahua `UTCMS`).
    public var millis: FieldPath?
    /// Microseconds to add (Zhenshi `usec`).
    public var micros: FieldPath?

    /// Nil when the field is absent; an error when present but unreadable.
    func evaluate(_ context: MappingContext, zone: TimeZone) throws(MappingError) -> (Timestamp, String)? {
        guard let text = context.text(path), !text.isEmpty else { return nil }
        let base: Timestamp?
        switch format {
        case .rfc3339, .local:
            base = DeviceTimeParser.parse(text, zone: zone)
        case .compact:
            base = Self.compact(text, zone: zone)
        case .epochSeconds:
            base = Double(text).flatMap { $0 < 1e11 ? DeviceTimeParser.fromEpoch($0) : nil }
        case .epochMillis:
            base = Double(text).flatMap { DeviceTimeParser.fromEpoch($0 < 1e11 ? $0 / 1000 : $0) }
        case .epochLocal:
            base = Double(text).flatMap { seconds -> Timestamp? in
                guard seconds.isFinite, seconds >= 0, seconds < 1e11 else { return nil }
                let utc = DeviceTimeParser.localToUTC(Int64(seconds), zone: zone)
                let time = Timestamp(milliseconds: utc * 1000)
                return DeviceTimeParser.plausibleRange.contains(time) ? time : nil
            }
        }
        guard var time = base else {
            throw MappingError("field '\(path)': '\(text)' is not a valid \(format.rawValue) time (\(Self.example(format)), between 1970 and 2199)")
        }
        if let millis, let extra = context.text(millis).flatMap(Double.init), extra >= 0, extra < 1000 {
            time = Timestamp(milliseconds: time.milliseconds + Int64(extra))
        }
        if let micros, let extra = context.text(micros).flatMap(Double.init), extra >= 0, extra < 1_000_000 {
            time = Timestamp(milliseconds: time.milliseconds + Int64(extra / 1000))
        }
        return (time, text)
    }

    static func example(_ format: Format) -> String {
        switch format {
        case .rfc3339: "expected e.g. 2025-03-14T08:12:09+08:00"
        case .local: "expected e.g. 2025-03-14 08:12:09"
        case .compact: "expected e.g. 20250314081209 or 20250314081209413"
        case .epochSeconds, .epochLocal: "expected seconds since 1970, e.g. 1741911129"
        case .epochMillis: "expected milliseconds since 1970, e.g. 1741911129412"
        }
    }

    /// `yyyyMMddHHmmss` with optional milliseconds, as local wall clock.
    static func compact(_ text: String, zone: TimeZone) -> Timestamp? {
        let digits = Array(text.utf8)
        guard digits.count == 14 || digits.count == 17, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        let s = String(decoding: digits, as: UTF8.self)
        func part(_ from: Int, _ length: Int) -> String {
            let start = s.index(s.startIndex, offsetBy: from)
            return String(s[start..<s.index(start, offsetBy: length)])
        }
        var local = "\(part(0, 4))-\(part(4, 2))-\(part(6, 2)) \(part(8, 2)):\(part(10, 2)):\(part(12, 2))"
        if digits.count == 17 { local += "." + part(14, 3) }
        return DeviceTimeParser.parse(local, zone: zone)
    }
}
