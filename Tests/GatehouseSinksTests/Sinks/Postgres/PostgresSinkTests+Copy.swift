import Foundation
@testable import GatehouseCore
import GatehouseQueue
@testable import GatehouseSinks
import GatehouseTesting
import NIOCore
import Testing

/// The COPY path and its `INSERT … ON CONFLICT` fallback. Part of the serialized PostgreSQL suite.
extension PostgresSinkTests {
    func storedBatch(_ events: some Sequence<Event>, firstSeq: Int64 = 1) throws -> SinkBatch {
        let stored = try events.enumerated().map {
            StoredEvent(seq: firstSeq + Int64($0.offset), priority: $0.element.priority, body: try EventCoding.encode($0.element))
        }
        return SinkBatch(sink: "warehouse", events: stored)
    }

    @Test func aCopyBatchMeetingStoredIdsFallsBackToTheInsertAndLandsExactlyOnce() async throws {
        let table = TestPostgres.uniqueTable()
        let store = try await TestQueue(sinks: ["warehouse"])
        defer { store.remove() }
        let events = try await append(store, 40)
        let sink = try #require(try SinkRegistry.make(sinkConfig(table: table), logger: testLogger()) as? PostgresSink)

        #expect(await sink.send(try storedBatch(events[0..<10])) == .delivered)
        #expect(await sink.copiedBatches == 1)
        // Overlaps the first batch by five ids, as a batch resent after a lost COMMIT answer or
        // cut at other bounds by a split does: COPY refuses it whole, the insert adds the rest.
        #expect(await sink.send(try storedBatch(events[5..<25], firstSeq: 6)) == .delivered)
        #expect(await sink.copiedBatches == 1)
        #expect(await sink.insertedBatches == 1)
        #expect(postgres.logLines(containing: "duplicate key value violates unique constraint \"\(table)") >= 1)
        // The connection is usable after the rolled-back COPY: the next fresh batch goes by COPY again.
        #expect(await sink.send(try storedBatch(events[25..<40], firstSeq: 26)) == .delivered)
        #expect(await sink.copiedBatches == 2)
        await sink.shutdown()

        #expect(try await postgres.count("SELECT count(*) FROM \(table)") == events.count)
        #expect(Set(try await ids(in: table)) == Set(events.map(\.id.description)))
    }

    @Test func aBodyCopyCannotCarryCancelsItsCopyMidStreamAndTheConnectionStaysUsable() async throws {
        let table = TestPostgres.uniqueTable()
        let store = try await TestQueue(sinks: ["warehouse"])
        defer { store.remove() }
        // Several COPY chunks long: the first ones are on the server before the last body is written.
        let events = try await append(store, 800, attributes: ["pad": .string(String(repeating: "x", count: 600))])
        // A NUL in a column, which no text column takes: COPY cannot carry it; the insert reads the
        // column from the jsonb, which refuses it (22P05), so the batch is rejected for splitting.
        let uncopyable = try await append(store, 1)[0]
        var withNul = uncopyable
        withNul.subject = Subject(type: .card, value: "a\u{0}b")
        let sink = try #require(try SinkRegistry.make(sinkConfig(table: table), logger: testLogger()) as? PostgresSink)

        let outcome = await sink.send(try storedBatch(events + [withNul]))
        guard case .rejected(let reason) = outcome else {
            Issue.record("expected the batch rejected, got \(outcome)")
            return
        }
        #expect(reason.contains("22P05"))
        #expect(await sink.copiedBatches == 0)
        #expect(try await postgres.count("SELECT count(*) FROM \(table)") == 0)
        // The cancelled COPY left the connection clean: the batch mates go by COPY on it.
        #expect(await sink.send(try storedBatch(events)) == .delivered)
        #expect(await sink.copiedBatches == 1)
        await sink.shutdown()
        #expect(Set(try await ids(in: table)) == Set(events.map(\.id.description)))
    }

    @Test func awkwardCharactersInBodiesAndColumnsArriveUnchanged() async throws {
        let table = TestPostgres.uniqueTable()
        let store = try await TestQueue(sinks: ["warehouse"])
        defer { store.remove() }
        // What would end or re-read a COPY text field (tab, newline, carriage return, backslash,
        // the `\N` of a NULL), JSON's own escapes, and text beyond ASCII.
        let awkward = [
            "tab\there", "line\nbreak", "carriage\rreturn", "back\\slash", "\\N", "ends with \\", "quote \" and \\\"",
            "川F1***5 门禁", "emoji 🚗🚪", "\u{1}\u{1f} control", "\\t not a tab",
        ]
        let now = Timestamp.now
        let events = awkward.enumerated().map { index, text in
            Event(
                id: store.ids.next(), kind: .accessGranted, occurredAt: now, receivedAt: now, site: "site \(text)",
                device: DeviceRef(id: "door\t\(index)", vendor: "acme", type: .doorController), point: "door-1",
                subject: Subject(type: .card, value: text), attributes: ["note": .string(text)], source: Source(driver: "test"))
        }
        _ = try await store.queue.appendNow(events)
        let sink = try #require(try SinkRegistry.make(sinkConfig(table: table), logger: testLogger()) as? PostgresSink)
        #expect(await sink.send(try storedBatch(events)) == .delivered)
        #expect(await sink.copiedBatches == 1)
        await sink.shutdown()

        for (event, text) in zip(events, awkward) {
            let body = try #require(String(data: try EventCoding.encode(event), encoding: .utf8))
            let literal = body.replacingOccurrences(of: "'", with: "''")
            // Each column equal to the value the insert's `->>` reads from the same body, and the body equal to it.
            let sameAsInsert = try await postgres.count(
                """
                SELECT count(*) FROM \(table) t, (SELECT '\(literal)'::jsonb AS e) b WHERE t.id = '\(event.id)'
                AND t.body = b.e AND t.site = b.e->>'site' AND t.device = b.e#>>'{device,id}'
                AND t.subject = b.e#>>'{subject,value}' AND t.body#>>'{attributes,note}' = t.subject
                """)
            #expect(sameAsInsert == 1, "\(text.debugDescription)")
            #expect(try await postgres.column("SELECT subject FROM \(table) WHERE id = '\(event.id)'") == [text])
        }
    }
}

@Suite struct PostgresCopyRowsTests {
    func text(_ chunks: [ByteBuffer]) -> String {
        chunks.map { String(buffer: $0) }.joined()
    }

    @Test func escapesWhatWouldEndOrReReadAField() {
        var buffer = ByteBuffer()
        Array("a\tb\nc\rd\\e 川".utf8).withUnsafeBytes { buffer.writeCopyEscaped($0) }
        #expect(String(buffer: buffer) == #"a\tb\nc\rd\\e 川"#)
    }

    @Test func oneLinePerBodyWithNullForAMissingSubject() throws {
        let body = #"{"id":"0190b7e2-0000-7000-8000-000000000001","occurredAt":"2026-12-01T00:00:00Z","receivedAt":"2026-12-01T00:00:01Z","site":"s","device":{"id":"d"},"kind":"door.opened","priority":"access","attributes":{"n":"a\\b"}}"#
        let chunks = try #require(PostgresCopyRows.chunks(of: [Data(body.utf8), Data(body.utf8)]))
        // The body in `jsonb`'s key order (shorter keys first), its backslash escaped for COPY.
        let sent = #"{"id":"0190b7e2-0000-7000-8000-000000000001","kind":"door.opened","site":"s","device":{"id":"d"},"priority":"access","attributes":{"n":"a\\\\b"},"occurredAt":"2026-12-01T00:00:00Z","receivedAt":"2026-12-01T00:00:01Z"}"#
        let line = "0190b7e2-0000-7000-8000-000000000001\t2026-12-01T00:00:00Z\t2026-12-01T00:00:01Z\ts\td\tdoor.opened\taccess\t\\N\t\\N\t"
            + sent + "\n"
        #expect(text(chunks) == line + line)
    }

    @Test func aBodyWithoutItsColumnsOrWithANulGoesByTheInsert() {
        #expect(PostgresCopyRows.chunks(of: [Data(#"{"id":"x"}"#.utf8)]) == nil)
        #expect(PostgresCopyRows.chunks(of: [Data("not json".utf8)]) == nil)
        let nul = #"{"id":"x","occurredAt":"t","receivedAt":"t","site":"a\u0000b","device":{"id":"d"},"kind":"k","priority":"p"}"#
        #expect(PostgresCopyRows.chunks(of: [Data(nul.utf8)]) == nil)
    }

    @Test func largeBatchesAreCutAtLineEnds() throws {
        let body = #"{"id":"i","occurredAt":"t","receivedAt":"t","site":"s","device":{"id":"d"},"kind":"k","priority":"p","pad":""#
            + String(repeating: "x", count: 1000) + #""}"#
        let chunks = try #require(PostgresCopyRows.chunks(of: Array(repeating: Data(body.utf8), count: 600)))
        #expect(chunks.count > 1)
        for chunk in chunks { #expect(chunk.getInteger(at: chunk.writerIndex - 1, as: UInt8.self) == UInt8(ascii: "\n")) }
        #expect(text(chunks).split(separator: "\n").count == 600)
    }
}

/// The body as COPY sends it: the same JSON value, each object's keys in `jsonb`'s order.
@Suite struct PostgresJsonbOrderTests {
    func reordered(_ body: String) -> String {
        var buffer = ByteBuffer()
        var order = PostgresJsonbOrder()
        Array(body.utf8).withUnsafeBytes { order.write($0, into: &buffer) }
        return String(buffer: buffer)
    }

    func value(_ json: String) throws -> NSObject {
        try #require(try JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed) as? NSObject)
    }

    @Test func ordersEveryObjectsKeysByLengthThenBytes() {
        #expect(reordered(#"{"bb":1,"a":{"zz":[{"yy":0,"x":0}],"c":null},"ab":"v","ccc":true}"#)
            == #"{"a":{"c":null,"zz":[{"x":0,"yy":0}]},"ab":"v","bb":1,"ccc":true}"#)
        // Whitespace between members and elements goes; within a member (which jsonb skips) and
        // inside strings it stays.
        #expect(reordered(" {\n\t\"kind\" : \"a b\" , \"id\" : [ 1 , { } , [ ] ] }\n") == #"{"id" : [1,{},[]],"kind" : "a b"}"#)
        // Length in bytes (门 is three), then bytewise: upper case before lower.
        #expect(reordered(#"{"门":1,"b":2,"B":3}"#) == #"{"B":3,"b":2,"门":1}"#)
    }

    @Test func keepsWhatJsonbWouldKeep() {
        // Of a repeated key jsonb keeps the last: it stays last.
        #expect(reordered(#"{"site":"first","id":"i","site":"last"}"#) == #"{"id":"i","site":"first","site":"last"}"#)
        // An escaped key is compared unescaped by jsonb: that object keeps its order, its values are still ordered.
        #expect(reordered(#"{"s\u0069te":{"b":1,"a":2},"id":"i"}"#) == #"{"s\\u0069te":{"a":2,"b":1},"id":"i"}"#)
        // Escapes in values, backslashes doubled for COPY.
        #expect(reordered(#"{"note":"tab\there \"q\"","id":"\\"}"#) == #"{"id":"\\\\","note":"tab\\there \\"q\\""}"#)
    }

    @Test func writesWhatItCannotWalkAsItIs() {
        for body in [#"{"id":"i""#, "not json", #"{"id":"i"} trailing"#, "", "[1,]", #"{"a":1,}"#] {
            var escaped = ByteBuffer()
            Array(body.utf8).withUnsafeBytes { escaped.writeCopyEscaped($0) }
            #expect(reordered(body) == String(buffer: escaped), "\(body)")
        }
    }

    @Test func everyStoredEventKeepsItsValue() throws {
        let now = Timestamp.now
        let event = Event(
            id: EventIDGenerator().next(), kind: .doorForced, occurredAt: now, receivedAt: now, site: "小区",
            device: DeviceRef(id: "door-1", vendor: "acme", model: "X{1}", type: .doorController), point: "p",
            subject: Subject(type: .plate, value: "川F1***5"),
            attributes: ["nested": .object(["id": .string("x"), "list": .array([.number(1.5), .null, .bool(true), .object(["zz": .string("a\"b"), "y": .null])])]),
                         "b": .string("tab\t"), "aa": .array([])],
            source: Source(driver: "test"))
        let body = try #require(String(data: try EventCoding.encode(event), encoding: .utf8))
        // COPY's escapes undone: what the server reads.
        let sent = reordered(body).replacingOccurrences(of: "\\\\", with: "\\")
        #expect(sent != body)
        #expect(try value(sent) == value(body))
    }
}

/// The byte walk that reads the columns for COPY must read exactly what `JSONDecoder` reads, or
/// leave the body to it.
@Suite struct PostgresColumnScanTests {
    /// The scan's fields as strings, or nil when it leaves the body to the decoder.
    func scanned(_ body: String) -> [String?]? {
        Array(body.utf8).withUnsafeBytes { bytes in
            guard let scan = PostgresColumnScan(bytes) else { return nil }
            return (0..<PostgresColumnScan.fieldCount).map { index in
                scan.range(index).map { String(decoding: bytes[$0], as: UTF8.self) }
            }
        }
    }

    func decoded(_ body: String) -> [String?]? {
        (try? JSONDecoder().decode(PostgresCopyRows.Columns.self, from: Data(body.utf8)))?.fields
    }

    @Test func readsWhatTheDecoderReadsFromEveryStoredEvent() throws {
        let now = Timestamp.now
        let subjects: [Subject?] = [nil, Subject(type: .card, value: "hmac-sha256:ab"), Subject(type: .plate, value: nil),
                                    Subject(type: .plate, value: "川F1***5")]
        for (index, subject) in subjects.enumerated() {
            let event = Event(
                id: EventIDGenerator().next(), kind: .doorForced, occurredAt: now, receivedAt: now, site: "小区-\(index)",
                device: DeviceRef(id: "door-\(index)", vendor: "acme", model: "X{1}", type: .doorController), point: "p",
                subject: subject,
                attributes: ["nested": .object(["id": .string("not the device"), "list": .array([.number(1), .null, .bool(true)])]),
                             "site": .string("an attribute named site")],
                source: Source(driver: "test"))
            let body = try #require(String(data: try EventCoding.encode(event), encoding: .utf8))
            let fields = try #require(scanned(body), "\(body)")
            #expect(fields == decoded(body))
        }
    }

    @Test func agreesWithTheDecoderOnHandWrittenBodies() {
        let base = #""id":"i","occurredAt":"o","receivedAt":"r","site":"s","kind":"k","priority":"p""#
        let bodies = [
            "{\(base),\"device\":{\"vendor\":\"v\",\"id\":\"d\"}}",
            " {\n\t\(base) , \"device\" : { \"id\" : \"d\" } , \"subject\" : null } \n",
            "{\(base),\"device\":{\"id\":\"d\"},\"subject\":{\"type\":null,\"value\":\"v\"}}",
            "{\(base),\"device\":{\"id\":\"d\"},\"subject\":{\"type\":\"card\"}}",
            "{\(base),\"device\":{\"id\":\"d\"},\"a\":[{\"device\":{\"id\":\"x\"}},\"]}\\\"\",-1.5e3,false],\"b\":{}}",
            "{\(base),\"device\":{\"id\":\"d\"},\"subject\":{}}",
        ]
        for body in bodies {
            #expect(scanned(body) != nil, "\(body)")
            #expect(scanned(body) == decoded(body), "\(body)")
        }
    }

    @Test func leavesToTheDecoderWhatItCannotReadPlainly() {
        let base = #""id":"i","occurredAt":"o","receivedAt":"r","kind":"k","priority":"p","device":{"id":"d"}"#
        for body in [
            "{\(base),\"site\":\"a\\\"b\"}",          // an escape in a column
            "{\(base),\"s\\u0069te\":\"s\"}",          // an escaped key that spells a column
            "{\(base),\"site\":5}",                    // a column that is not a string
            "{\(base)}",                               // a missing column
            "{\(base),\"site\":\"s\"",                 // cut short
            "{\(base),\"site\":\"s\"} trailing",
            "{\(base),\"site\":\"s\",\"subject\":{\"type\":7}}",
            "{\(base),\"site\":\"s\",\"subject\":\"card\"}",
            "{\(base),\"site\":\"s\",\"site\":\"t\"}",  // a repeated column: the decoder keeps the first
            "{\(base),\"site\":\"s\",\"device\":{\"id\":\"e\"}}",
            "{\(base),\"site\":\"a\u{0}b\"}",          // a raw NUL
            "[1]", "", "not json",
        ] {
            #expect(scanned(body) == nil, "\(body)")
        }
    }
}
