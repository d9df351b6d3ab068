import Foundation
import Testing

@testable import GatehouseCore

@Suite("Timestamp")
struct TimestampTests {
    static let shanghai = TimeZone(identifier: "Asia/Shanghai")!

    @Test(
        "rfc3339 formats known instants",
        arguments: [
            (Int64(0), "1970-01-01T00:00:00.000Z"),
            (1, "1970-01-01T00:00:00.001Z"),
            (1_709_210_096_789, "2024-02-29T12:34:56.789Z"),  // leap day
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),  // leap day of a year divisible by 400
            (1_795_478_400_123, "2026-11-24T00:00:00.123Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (-999, "1969-12-31T23:59:59.001Z"),
            (-1000, "1969-12-31T23:59:59.000Z"),
            (-1001, "1969-12-31T23:59:58.999Z"),
            (-86_400_000, "1969-12-31T00:00:00.000Z"),
            (-86_400_001, "1969-12-30T23:59:59.999Z"),
            (-14_182_940_000, "1969-07-20T20:17:40.000Z"),
            (-2_208_988_800_000, "1900-01-01T00:00:00.000Z"),
            (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        ])
    func formatsKnownInstants(milliseconds: Int64, expected: String) throws {
        let timestamp = Timestamp(milliseconds: milliseconds)
        #expect(timestamp.rfc3339 == expected)
        #expect(timestamp.description == expected)
        // And back again: what we write, we read.
        #expect(DeviceTimeParser.parseRFC3339(expected) == timestamp)
    }

    @Test("rfc3339 agrees with Foundation over a spread of instants")
    func agreesWithFoundation() {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        // A deterministic spread from 1900 to 2100, with odd milliseconds.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<2000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let span: Int64 = 6_311_433_600_000  // 200 years in ms
            let millis = -2_208_988_800_000 + Int64(state >> 20) % span
            let timestamp = Timestamp(milliseconds: millis)
            let expected = formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
            #expect(timestamp.rfc3339 == expected, "millis \(millis)")
            #expect(DeviceTimeParser.parseRFC3339(timestamp.rfc3339) == timestamp)
        }
    }

    @Test("Codable writes and reads the RFC 3339 string")
    func codable() throws {
        let timestamp = Timestamp(milliseconds: 1_709_210_096_789)
        let data = try JSONEncoder().encode([timestamp])
        #expect(String(decoding: data, as: UTF8.self) == #"["2024-02-29T12:34:56.789Z"]"#)
        #expect(try JSONDecoder().decode([Timestamp].self, from: data) == [timestamp])
        // A time without a zone is not an RFC 3339 time and must not decode.
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([Timestamp].self, from: Data(#"["2024-02-29 12:34:56"]"#.utf8))
        }
    }

    @Test("init(Date) floors to the millisecond, also before 1970")
    func fromDate() {
        #expect(Timestamp(Date(timeIntervalSince1970: 1.2345)).milliseconds == 1234)
        #expect(Timestamp(Date(timeIntervalSince1970: -0.0005)).milliseconds == -1)
    }
}

@Suite("DeviceTimeParser")
struct DeviceTimeParserTests {
    static let shanghai = TimeZone(identifier: "Asia/Shanghai")!
    static let utc = TimeZone(identifier: "UTC")!

    @Test(
        "local times without a zone are read in the device's zone",
        arguments: [
            ("2026-11-24 08:00:00", "2026-11-24T00:00:00.000Z"),
            ("2026-11-24T08:00:00", "2026-11-24T00:00:00.000Z"),
            ("2026-11-24t08:00:00", "2026-11-24T00:00:00.000Z"),
            ("2026-11-24 07:59:59", "2026-11-23T23:59:59.000Z"),  // crosses midnight backwards
            ("2026-01-01 05:00:00", "2025-12-31T21:00:00.000Z"),  // crosses a year
            ("2024-02-29 23:30:00", "2024-02-29T15:30:00.000Z"),
        ])
    func localInShanghai(text: String, expected: String) {
        #expect(DeviceTimeParser.parse(text, zone: Self.shanghai)?.rfc3339 == expected)
    }

    @Test(
        "times with a zone are taken as written, whatever the device's zone",
        arguments: [
            ("2026-11-24T08:00:00+08:00", "2026-11-24T00:00:00.000Z"),
            ("2026-11-24T08:00:00+0800", "2026-11-24T00:00:00.000Z"),
            ("2026-11-24 08:00:00+08:00", "2026-11-24T00:00:00.000Z"),
            ("2026-11-24T08:00:00Z", "2026-11-24T08:00:00.000Z"),
            ("2026-11-24T08:00:00z", "2026-11-24T08:00:00.000Z"),
            ("2026-11-24T08:00:00+00:00", "2026-11-24T08:00:00.000Z"),
            ("2026-11-24T08:00:00-05:30", "2026-11-24T13:30:00.000Z"),
            ("2026-11-24T08:00:00-0530", "2026-11-24T13:30:00.000Z"),
            ("2026-11-24T08:00:00.250+08:00", "2026-11-24T00:00:00.250Z"),
        ])
    func withZone(text: String, expected: String) {
        #expect(DeviceTimeParser.parse(text, zone: Self.shanghai)?.rfc3339 == expected)
        #expect(DeviceTimeParser.parse(text, zone: Self.utc)?.rfc3339 == expected)
        #expect(DeviceTimeParser.parseRFC3339(text)?.rfc3339 == expected)
    }

    @Test(
        "fractional seconds of one to three digits",
        arguments: [
            ("2026-11-24T08:00:00.1Z", "2026-11-24T08:00:00.100Z"),
            ("2026-11-24T08:00:00.12Z", "2026-11-24T08:00:00.120Z"),
            ("2026-11-24T08:00:00.123Z", "2026-11-24T08:00:00.123Z"),
            ("2026-11-24T08:00:00.007Z", "2026-11-24T08:00:00.007Z"),
            ("2026-11-24 08:00:00.5", "2026-11-24T00:00:00.500Z"),
        ])
    func shortFractions(text: String, expected: String) {
        #expect(DeviceTimeParser.parse(text, zone: Self.shanghai)?.rfc3339 == expected)
    }

    // Extra digits beyond milliseconds are truncated, never rounded up into the next second.
    @Test(
        "fractional seconds of four to six digits",
        arguments: [
            ("2026-11-24T08:00:00.1234Z", "2026-11-24T08:00:00.123Z"),
            ("2026-11-24T08:00:00.12345Z", "2026-11-24T08:00:00.123Z"),
            ("2026-11-24T08:00:00.123456Z", "2026-11-24T08:00:00.123Z"),
            ("2026-11-24T08:00:00.999999Z", "2026-11-24T08:00:00.999Z"),
            ("2026-11-24 08:00:00.123456", "2026-11-24T00:00:00.123Z"),
        ])
    func longFractions(text: String, expected: String) {
        #expect(DeviceTimeParser.parse(text, zone: Self.shanghai)?.rfc3339 == expected)
    }

    @Test(
        "texts that are not real times are rejected",
        arguments: [
            "2026-02-30 10:00:00",  // no 30 February
            "2025-02-29 10:00:00",  // 2025 is no leap year
            "1900-02-29 10:00:00",  // nor is 1900
            "2026-13-01T00:00:00Z",  // no month 13
            "2026-00-10T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-11-00T00:00:00Z",
            "2026-11-24T24:00:00Z",
            "2026-11-24T08:60:00Z",
            "2026-11-24T08:00:61Z",
            "garbage",
            "",
            "2026-11-24",
            "2026-11-24T08:00",
            "2026-11-24 08:00:00 ",  // trailing space
            "2026-11-24 08:00:00junk",
            "2026-11-24T08:00:00Zjunk",
            "2026-11-24T08:00:00+08:00x",
            "2026-11-24T08:00:00+08",
            "2026-11-24T08:00:00+24:00",
            "2026-11-24T08:00:00+08:60",
            "2026-11-24T08:00:00.",
            "2026-11-24T08:00:00.Z",
            "2026/11/24 08:00:00",
            "26-11-24 08:00:00",
            "2026-11-24_08:00:00",
            " 2026-11-24 08:00:00",
        ])
    func rejects(text: String) {
        #expect(DeviceTimeParser.parse(text, zone: Self.shanghai) == nil)
        #expect(DeviceTimeParser.parseRFC3339(text) == nil)
    }

    @Test("parseRFC3339 requires a zone")
    func rfc3339NeedsZone() {
        #expect(DeviceTimeParser.parseRFC3339("2026-11-24T08:00:00") == nil)
        #expect(DeviceTimeParser.parseRFC3339("2026-11-24T08:00:00.123") == nil)
        #expect(DeviceTimeParser.parseRFC3339("2026-11-24T08:00:00Z")?.rfc3339 == "2026-11-24T08:00:00.000Z")
    }

    @Test("a leap second is held at :59")
    func leapSecond() {
        #expect(
            DeviceTimeParser.parse("2016-12-31T23:59:60Z", zone: Self.utc)?.rfc3339 == "2016-12-31T23:59:59.000Z")
    }

    @Test("wall-clock fields and offset are reported as read")
    func wallClock() throws {
        let wall = try #require(DeviceTimeParser.parseWallClock("2026-11-24 08:09:10.5-03:30"))
        #expect(
            wall
                == DeviceTimeParser.WallClock(
                    year: 2026, month: 11, day: 24, hour: 8, minute: 9, second: 10, millisecond: 500,
                    utcOffsetSeconds: -(3 * 3600 + 30 * 60)))
        #expect(DeviceTimeParser.parseWallClock("2026-11-24 08:09:10")?.utcOffsetSeconds == nil)
    }

    @Test("a zone with daylight saving time is read with the offset in force on that day")
    func daylightSaving() {
        let newYork = TimeZone(identifier: "America/New_York")!
        #expect(DeviceTimeParser.parse("2026-07-01 12:00:00", zone: newYork)?.rfc3339 == "2026-07-01T16:00:00.000Z")
        #expect(DeviceTimeParser.parse("2026-01-15 12:00:00", zone: newYork)?.rfc3339 == "2026-01-15T17:00:00.000Z")
    }
}

@Suite("Device times outside 1970–2199")
struct ImplausibleDeviceTimeTests {
    @Test("wall-clock times outside the plausible range are refused", arguments: ["1969-12-31T23:59:59Z", "2200-01-01T00:00:00Z", "9999-12-31 23:59:59"])
    func wallClock(text: String) {
        #expect(DeviceTimeParser.parse(text, zone: .gmt) == nil)
    }

    @Test("epoch numbers: seconds and milliseconds accepted, absurd ones refused")
    func epoch() {
        #expect(DeviceTimeParser.fromEpoch(1_764_000_000)?.rfc3339 == "2025-11-24T16:00:00.000Z")
        #expect(DeviceTimeParser.fromEpoch(1_764_000_000_123)?.rfc3339 == "2025-11-24T16:00:00.123Z")
        for bad in [-1.0, 1.7e15, 9.3e18, .infinity, .nan, 8e12] {
            #expect(DeviceTimeParser.fromEpoch(bad) == nil, "\(bad)")
        }
    }
}

@Suite("Text in device charsets")
struct TextDecodingTests {
    @Test("GBK bytes from the protocol notes decode and encode back")
    func gbk() {
        // "欢迎光临" in GBK, as LED boards receive it.
        let bytes: [UInt8] = [0xBB, 0xB6, 0xD3, 0xAD, 0xB9, 0xE2, 0xC1, 0xD9]
        #expect(TextDecoding.decode(bytes, as: .gbk) == "欢迎光临")
        #expect(TextDecoding.encode("欢迎光临", as: .gbk) == bytes)
        #expect(TextDecoding.decode(bytes, as: .gb18030) == "欢迎光临")
        #expect(TextDecoding.decode(Array("川F12345".utf8), as: .utf8) == "川F12345")
    }

    @Test("invalid or truncated input is refused, not garbled")
    func invalid() {
        #expect(TextDecoding.decode([0xBB], as: .gbk) == nil, "half a GBK character")
        #expect(TextDecoding.decode([0xFF, 0xFE], as: .utf8) == nil)
        #expect(TextDecoding.Charset(label: "GB2312") == .gbk)
        #expect(TextDecoding.Charset(label: "latin1") == nil)
    }
}
