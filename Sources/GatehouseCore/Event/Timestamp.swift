import Foundation

/// A point in time with millisecond precision, written as RFC 3339 UTC (`2026-11-24T08:00:00.123Z`).
///
/// Hand-written formatting because it sits on the ingest hot path and Foundation's
/// formatters allocate; parsing accepts what devices actually send (see `DeviceTimeParser`).
public struct Timestamp: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }
    public init(_ date: Date) { self.milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }

    public static var now: Timestamp { Timestamp(Date()) }

    public var date: Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
    public var seconds: Double { Double(milliseconds) / 1000 }

    public func adding(seconds: Double) -> Timestamp {
        Timestamp(milliseconds: milliseconds + Int64(seconds * 1000))
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.milliseconds < rhs.milliseconds }

    public var description: String { rfc3339 }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    public var rfc3339: String {
        let millis = Int(((milliseconds % 1000) + 1000) % 1000)
        let totalSeconds = (milliseconds - Int64(millis)) / 1000
        let days = Int(totalSeconds >= 0 ? totalSeconds / 86_400 : (totalSeconds - 86_399) / 86_400)
        let secondOfDay = Int(totalSeconds - Int64(days) * 86_400)
        let (y, m, d) = CivilDate.fromDays(days)
        var out = [UInt8]()
        out.reserveCapacity(24)
        func put(_ value: Int, _ width: Int) {
            var digits = [UInt8](repeating: 0x30, count: width)
            var v = value
            for i in stride(from: width - 1, through: 0, by: -1) {
                digits[i] = UInt8(0x30 + v % 10)
                v /= 10
            }
            out.append(contentsOf: digits)
        }
        put(y, 4); out.append(0x2D); put(m, 2); out.append(0x2D); put(d, 2)
        out.append(0x54)
        put(secondOfDay / 3600, 2); out.append(0x3A); put(secondOfDay / 60 % 60, 2); out.append(0x3A)
        put(secondOfDay % 60, 2); out.append(0x2E); put(millis, 3); out.append(0x5A)
        return String(decoding: out, as: UTF8.self)
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let parsed = DeviceTimeParser.parseRFC3339(text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath,
                      debugDescription: "invalid time '\(text)' (expected RFC 3339, e.g. 2026-11-24T08:00:00Z)"))
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rfc3339)
    }
}

/// Proleptic Gregorian calendar arithmetic (H. Hinnant's days-from-civil), zone-free.
enum CivilDate {
    static func toDays(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func fromDays(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

/// Reads the time stamps devices send: RFC 3339 with a zone, or local wall-clock time with
/// no zone (read in the device's configured zone), with `T` or a space, optional fraction.
public enum DeviceTimeParser {
    /// A wall-clock reading with no zone attached.
    public struct WallClock: Sendable, Equatable {
        public var year, month, day, hour, minute, second, millisecond: Int
        /// Seconds east of UTC when the text carried a zone.
        public var utcOffsetSeconds: Int?
    }

    /// Parses `YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|±HH:MM|±HHMM]`; nil when it is not that shape or not a real date.
    public static func parseWallClock(_ text: String) -> WallClock? {
        let b = Array(text.utf8)
        var i = 0
        func number(_ width: Int) -> Int? {
            guard i + width <= b.count else { return nil }
            var v = 0
            for k in i..<(i + width) {
                let c = b[k]
                guard c >= 0x30, c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            i += width
            return v
        }
        func expect(_ chars: Set<UInt8>) -> Bool {
            guard i < b.count, chars.contains(b[i]) else { return false }
            i += 1
            return true
        }
        guard let year = number(4), expect([0x2D]), let month = number(2), expect([0x2D]), let day = number(2),
            expect([0x54, 0x74, 0x20]), let hour = number(2), expect([0x3A]), let minute = number(2),
            expect([0x3A]), let second = number(2)
        else { return nil }
        var millis = 0
        if i < b.count, b[i] == 0x2E {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                if digits < 3 { millis = millis * 10 + Int(b[i] - 0x30) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            // Digits past milliseconds were dropped above; pad shorter fractions to milliseconds.
            if digits < 3 { for _ in digits..<3 { millis *= 10 } }
        }
        var offset: Int?
        if i < b.count {
            if b[i] == 0x5A || b[i] == 0x7A {
                offset = 0
                i += 1
            } else if b[i] == 0x2B || b[i] == 0x2D {
                let sign = b[i] == 0x2D ? -1 : 1
                i += 1
                guard let oh = number(2) else { return nil }
                _ = expect([0x3A])
                guard let om = number(2), oh < 24, om < 60 else { return nil }
                offset = sign * (oh * 3600 + om * 60)
            } else {
                return nil
            }
        }
        guard i == b.count, (1...12).contains(month), day >= 1,
            day <= CivilDate.daysInMonth(year: year, month: month),
            hour < 24, minute < 60, second <= 60
        else { return nil }
        return WallClock(
            year: year, month: month, day: day, hour: hour, minute: minute, second: min(second, 59),
            millisecond: millis, utcOffsetSeconds: offset)
    }

    /// Device times outside 1970–2199 are rejected: no event happened then, and the formatter
    /// writes four-digit years only.
    public static let plausibleRange = Timestamp(milliseconds: 0)..<Timestamp(milliseconds: 7_258_118_400_000)

    /// Epoch seconds, or milliseconds when the number is that large; nil outside `plausibleRange`.
    public static func fromEpoch(_ number: Double) -> Timestamp? {
        guard number.isFinite, number >= 0, number < 1e14 else { return nil }
        let time = Timestamp(milliseconds: number > 1e11 ? Int64(number) : Int64(number * 1000))
        return plausibleRange.contains(time) ? time : nil
    }

    /// RFC 3339 with a mandatory zone.
    public static func parseRFC3339(_ text: String) -> Timestamp? {
        guard let wall = parseWallClock(text), let offset = wall.utcOffsetSeconds else { return nil }
        return Timestamp(milliseconds: (naiveSeconds(wall) - Int64(offset)) * 1000 + Int64(wall.millisecond))
    }

    /// A device time: with a zone it is taken as written; without one it is read in `zone`.
    public static func parse(_ text: String, zone: TimeZone) -> Timestamp? {
        guard let wall = parseWallClock(text) else { return nil }
        let naive = naiveSeconds(wall)
        let seconds = wall.utcOffsetSeconds.map { naive - Int64($0) } ?? localToUTC(naive, zone: zone)
        let time = Timestamp(milliseconds: seconds * 1000 + Int64(wall.millisecond))
        return plausibleRange.contains(time) ? time : nil
    }

    /// Converts seconds of a zone's wall clock (counted as if it were UTC) to real UTC seconds.
    public static func localToUTC(_ naive: Int64, zone: TimeZone) -> Int64 {
        // Two passes settle the offset across a DST change; zones without DST need one.
        var guess = naive - Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(naive))))
        guess = naive - Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(guess))))
        return guess
    }

    static func naiveSeconds(_ w: WallClock) -> Int64 {
        let days = Int64(CivilDate.toDays(year: w.year, month: w.month, day: w.day))
        return days * 86_400 + Int64(w.hour * 3600 + w.minute * 60 + w.second)
    }
}
