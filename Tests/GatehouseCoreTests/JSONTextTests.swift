import Foundation
import Testing

@testable import GatehouseCore

@Suite("JSON text parser and writer")
struct JSONTextTests {
    @Test("parses what Foundation parses, to the same values", arguments: [
        #"{"a":1,"b":[true,false,null],"c":{"d":"e"},"f":-0.5,"g":1e3,"h":"\u5ddd\"\\\/\n"}"#,
        #"[]"#, #"{}"#, #" [ 1 , 2 ] "#, #""\ud83d\ude97 car""#, #"12345678901234"#, #"-1.25E-2"#,
    ])
    func parity(text: String) throws {
        let ours = try JSONValue.parse(Array(text.utf8))
        let theirs = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(ours == theirs)
        // Writing and parsing again gives the same value.
        #expect(try JSONValue.parse(Array(ours.jsonText.utf8)) == ours)
    }

    @Test("integers longer than 15 digits stay numbers with their exact text, so ids built from them stay distinct")
    func longIntegers() throws {
        // Both round to the same double (12345678901234568): as doubles two records would share a key.
        let parsed = try JSONValue.parse(Array(#"[12345678901234567, 12345678901234568, -98765432109876543, 123456789012345, 1.5]"#.utf8))
        #expect(parsed == .array([
            .exactNumber("12345678901234567"), .exactNumber("12345678901234568"), .exactNumber("-98765432109876543"),
            .number(123_456_789_012_345), .number(1.5),
        ]))
        #expect(parsed.jsonText == #"[12345678901234567,12345678901234568,-98765432109876543,123456789012345,1.5]"#)
    }

    @Test("numbers a double cannot hold exactly are written back exactly as sent, never as null or inf", arguments: [
        "9007199254740993", "18446744073709551617", "1e400", "-1E+400", "1e-400", "0.1000000000000000055511151231257827",
        "3.14159265358979323846", "123456789012345678901234567890.5",
    ])
    func exactNumbers(text: String) throws {
        let parsed = try JSONValue.parse(Array("[\(text)]".utf8))
        #expect(parsed == .array([.exactNumber(text)]))
        #expect(parsed.jsonText == "[\(text)]")
        #expect(JSONValue.exactNumber(text).numberText == text)
    }

    @Test("only numbers beyond the double range count as out of range")
    func beyondRange() throws {
        #expect(JSONValue.exactNumber("1e400").isBeyondDoubleRange)
        #expect(JSONValue.exactNumber("-1e400").isBeyondDoubleRange)
        #expect(!JSONValue.exactNumber("18446744073709551617").isBeyondDoubleRange)
        #expect(!JSONValue.number(1.5).isBeyondDoubleRange)
        // Short decimals stay doubles: they round-trip exactly.
        #expect(try JSONValue.parse(Array("0.1".utf8)) == .number(0.1))
        #expect(try JSONValue.parse(Array("1.5e3".utf8)).jsonText == "1500")
    }

    @Test("refuses malformed text with the byte offset", arguments: [
        (#"{"a":1,}"#, 7), (#"[1 2]"#, 3), (#"{"a" 1}"#, 5), (#""abc"#, 4), (#"01"#, 2), (#"tru"#, 0),
        (#"{"a":1} x"#, 8), (#""\x""#, 2), (#""\ud800""#, 7), ("\"a\u{01}\"", 2), (#"-"#, 1), (#"1."#, 2),
    ])
    func malformed(text: String, offset: Int) {
        do {
            _ = try JSONValue.parse(Array(text.utf8))
            Issue.record("accepted malformed JSON \(text)")
        } catch {
            #expect(error.offset == offset, "\(error)")
        }
    }

    @Test("deep nesting is refused at the limit, not by a crash")
    func depth() {
        let deep = Array((String(repeating: "[", count: 65) + String(repeating: "]", count: 65)).utf8)
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(deep) }
        let fine = Array((String(repeating: "[", count: 64) + String(repeating: "]", count: 64)).utf8)
        #expect((try? JSONValue.parse(fine)) != nil)
    }

    @Test("the writer escapes what JSON requires and sorts keys")
    func writer() {
        let value = JSONValue.object(["b": .string("line\nbreak \"q\" \\ \u{01}"), "a": .number(2), "c": .number(0.25), "d": .null])
        #expect(value.jsonText == #"{"a":2,"b":"line\nbreak \"q\" \\ \u0001","c":0.25,"d":null}"#)
    }
}

@Suite("Event encoding")
struct EventEncodingTests {
    @Test("the hand-built encoding is byte-identical to Foundation's sorted-keys JSONEncoder")
    func parityWithFoundation() throws {
        let ids = EventIDGenerator()
        let now = Timestamp(milliseconds: 1_764_000_000_123)
        let events = [
            Event(
                id: ids.next(now: now), kind: .vehicleEntry, occurredAt: now, receivedAt: now, site: "s",
                device: DeviceRef(id: "gate", vendor: "v", model: "M1", type: .lprCamera), point: "lane-1", direction: .in,
                subject: Subject(type: .plate, value: "川F1***5", treatment: .masked, color: "blue"), result: .granted,
                attributes: ["confidence": .number(97), "note": .string("a \"quoted\"\nline/slash"), "nested": .array([.bool(true), .null, .number(0.5)])],
                source: Source(driver: "profile", profile: "zhenshi-lpr", dedupKey: "k-1", deviceTime: "2025-11-24 16:00:00")),
            Event(
                id: ids.next(now: now), kind: .alarmPanic, occurredAt: now, receivedAt: now, site: "s",
                device: DeviceRef(id: "panel", vendor: "v", type: .alarmPanel), source: Source(driver: "generic-json")),
        ]
        for event in events {
            let ours = try EventCoding.encode(event)
            let foundation = try EventCoding.encoder().encode(event)
            #expect(ours == foundation, "\n\(String(decoding: ours, as: UTF8.self))\n\(String(decoding: foundation, as: UTF8.self))")
            #expect(try EventCoding.decode(ours) == event)
        }
    }
}
