import Foundation
import GatehouseCore
import Testing

@testable import GatehouseIngest

@Suite("generic-json decoder")
struct GenericJSONDecoderTests {
    static let shanghai = TimeZone(identifier: "Asia/Shanghai") ?? .gmt

    @Test("local time without a zone is read in the device's zone; plates are normalized")
    func localTimeAndPlate() throws {
        let body = Array(#"{"kind":"vehicle.detected","occurredAt":"2026-11-24 16:05:09","subject":{"type":"plate","value":"川a·123 45"},"dedupKey":"r1"}"#.utf8)
        let drafts = try GenericJSONDecoder.decode(body, zone: Self.shanghai)
        #expect(drafts.count == 1)
        #expect(drafts[0].occurredAt?.rfc3339 == "2026-11-24T08:05:09.000Z")
        #expect(drafts[0].deviceTime == "2026-11-24 16:05:09")
        #expect(drafts[0].subject?.value == "川A12345")
        #expect(drafts[0].dedupKey == "r1")
    }

    @Test("errors name the field and what would be valid", arguments: [
        (#"{"kind":"door.opened","direction":"sideways"}"#, "field 'direction': 'sideways' is not valid (expected one of in, out)"),
        (#"[{"kind":"door.opened"},{"kind":"door.opened","result":7}]"#, "field '[1].result': expected a string, found a number"),
        (#"{"kind":"door.opened","occurredAt":999999999999999}"#, "is not a time between 1970 and 2199"),
        // Integers longer than 15 digits keep their exact text, and are still numbers of seconds.
        (#"{"kind":"door.opened","occurredAt":99999999999999999}"#, "99999999999999999 is not a time between 1970 and 2199"),
        (#"{"kind":"door.opened","occurredAt":1e400}"#, "1e400 is not a time between 1970 and 2199"),
        (#"{"kind":"door.opened","occurredAt":"2026-02-30 10:00:00"}"#, "is not a time"),
        (#"[]"#, "empty array"),
        (#""just a string""#, "expected a JSON object or an array of objects"),
    ])
    func errors(body: String, fragment: String) {
        #expect(throws: PayloadError.self) { try GenericJSONDecoder.decode(Array(body.utf8), zone: Self.shanghai) }
        do {
            _ = try GenericJSONDecoder.decode(Array(body.utf8), zone: Self.shanghai)
        } catch {
            #expect(error.reason.contains(fragment), "\(error.reason)")
        }
    }

    @Test("deeply nested JSON is refused with an error, not a crash")
    func deepNesting() {
        let body = Array(("{\"kind\":\"door.opened\",\"attributes\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}").utf8)
        #expect(throws: PayloadError.self) { try GenericJSONDecoder.decode(body, zone: Self.shanghai) }
    }
}
