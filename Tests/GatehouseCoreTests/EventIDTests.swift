import Foundation
import Testing

@testable import GatehouseCore

@Suite("EventID")
struct EventIDTests {
    static let november24 = Timestamp(milliseconds: 1_795_478_400_123)  // 2026-11-24T00:00:00.123Z

    @Test("100,000 ids in one millisecond are strictly increasing")
    func strictlyIncreasingWithinOneMillisecond() {
        let generator = EventIDGenerator()
        let now = Self.november24
        var previous = generator.next(now: now)
        #expect(previous.milliseconds == now.milliseconds)
        var seen = Set([previous])
        for _ in 1..<100_000 {
            let id = generator.next(now: now)
            guard previous < id else {
                Issue.record("\(id) does not sort after \(previous)")
                return
            }
            // The string order used by `<` and the byte order of the UUID must agree.
            #expect(Self.bytes(previous).lexicographicallyPrecedes(Self.bytes(id)))
            seen.insert(id)
            previous = id
        }
        #expect(seen.count == 100_000)
        // At most 4,096 ids fit one millisecond, so the counter borrows later milliseconds;
        // it must stay close to the clock (at least 3,072 ids in the first, 4,096 in each later one).
        #expect(previous.milliseconds > now.milliseconds)
        #expect(previous.milliseconds <= now.milliseconds + 25)
    }

    @Test("every id is version 7 with variant bits 10")
    func versionAndVariant() {
        let generator = EventIDGenerator()
        for step in 0..<5000 {
            // Same millisecond for a while, then the clock moves on.
            let id = generator.next(now: Timestamp(milliseconds: Self.november24.milliseconds + Int64(step / 1000)))
            let b = id.uuid.uuid
            #expect(b.6 >> 4 == 0x7, "version nibble of \(id)")
            #expect(b.8 >> 6 == 0b10, "variant bits of \(id)")
            #expect(Array(id.description)[14] == "7")
            #expect("89ab".contains(Array(id.description)[19]))
        }
    }

    @Test(
        "milliseconds round-trips the generation time",
        arguments: [
            Int64(1),
            1_709_210_096_789,
            1_795_478_400_123,
            253_402_300_799_999,  // 9999-12-31T23:59:59.999Z
            0xFFFF_FFFF_FFFF,  // the largest 48-bit value
        ])
    func millisecondsRoundTrip(millis: Int64) {
        let id = EventIDGenerator().next(now: Timestamp(milliseconds: millis))
        #expect(id.milliseconds == millis)
        #expect(id.description.hasPrefix(Self.timePrefix(millis)))
    }

    @Test("when the clock moves on, the id takes the new millisecond")
    func followsTheClock() {
        let generator = EventIDGenerator()
        var ids: [EventID] = []
        for offset in [0, 0, 0, 1, 1, 7, 1000] {
            ids.append(generator.next(now: Timestamp(milliseconds: Self.november24.milliseconds + Int64(offset))))
        }
        #expect(ids.map(\.milliseconds).map { $0 - Self.november24.milliseconds } == [0, 0, 0, 1, 1, 7, 1000])
        #expect(ids == ids.sorted())
        // A clock that steps back never makes an id sort before an earlier one.
        let afterStepBack = generator.next(now: Self.november24)
        #expect(ids.last! < afterStepBack)
    }

    @Test("ids from concurrent tasks are all distinct")
    func concurrentUnique() async {
        let generator = EventIDGenerator()
        let now = Self.november24
        let all = await withTaskGroup(of: [EventID].self) { group in
            for _ in 0..<4 {
                group.addTask { (0..<10_000).map { _ in generator.next(now: now) } }
            }
            var all: [EventID] = []
            for await part in group {
                // Within one task the order is the order of the calls.
                #expect(part == part.sorted())
                all += part
            }
            return all
        }
        #expect(Set(all).count == 40_000)
    }

    @Test("description is the lowercase canonical form and parses back")
    func description() throws {
        let id = EventIDGenerator().next(now: Self.november24)
        let text = id.description
        #expect(text == text.lowercased())
        #expect(text == id.uuid.uuidString.lowercased())
        #expect(text.count == 36)
        #expect(
            text.wholeMatch(of: /[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/) != nil)
        #expect(EventID(text) == id)
        #expect(EventID(text.uppercased()) == id)
        #expect(EventID(text.uppercased())?.description == text)
    }

    @Test("a known id reads its time and prints lowercase")
    func knownVector() throws {
        let id = try #require(EventID("01A20ADA-2DA2-7C41-9D2E-5B7F0A3C61E4"))
        #expect(id.description == "01a20ada-2da2-7c41-9d2e-5b7f0a3c61e4")
        #expect(id.milliseconds == 1_795_478_400_418)
        #expect(Timestamp(milliseconds: id.milliseconds).rfc3339 == "2026-11-24T00:00:00.418Z")
    }

    @Test("text that is not a UUID is refused", arguments: ["", "garbage", "01a20ada-2da2-7c41-9d2e", "01a20ada2da27c419d2e5b7f0a3c61e4x"])
    func refusesGarbage(text: String) {
        #expect(EventID(text) == nil)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([EventID].self, from: JSONEncoder().encode([text]))
        }
    }

    @Test("JSON form is the lowercase string")
    func codable() throws {
        let id = try #require(EventID("01A20ADA-2DA2-7C41-9D2E-5B7F0A3C61E4"))
        let data = try JSONEncoder().encode([id])
        #expect(String(decoding: data, as: UTF8.self) == #"["01a20ada-2da2-7c41-9d2e-5b7f0a3c61e4"]"#)
        #expect(try JSONDecoder().decode([EventID].self, from: data) == [id])
    }

    static func bytes(_ id: EventID) -> [UInt8] {
        withUnsafeBytes(of: id.uuid.uuid) { Array($0) }
    }

    /// The first 13 characters of an id made at `millis`: 8 hex digits, a dash, 4 hex digits.
    static func timePrefix(_ millis: Int64) -> String {
        let hex = String(millis, radix: 16)
        let padded = String(repeating: "0", count: 12 - hex.count) + hex
        return String(padded.prefix(8)) + "-" + String(padded.suffix(4))
    }
}
