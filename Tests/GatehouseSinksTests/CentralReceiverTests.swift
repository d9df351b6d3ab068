import AsyncHTTPClient
import Foundation
import GatehouseTesting
import NIOCore
import Testing

@testable import GatehouseSimulation

/// The receiver's own reading of bodies, which every sink test relies on.
@Suite struct CentralReceiverTests {
    private func scan(_ text: String) throws -> [(id: String?, text: String)] {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBytes { buffer in
            try CentralReceiver.scanObjects(buffer).map { ($0.id, String(decoding: bytes[$0.range], as: UTF8.self)) }
        }
    }

    @Test func findsTopLevelIDsNotNestedOnes() throws {
        let first = #"{"attributes":{"id":"x","note":"} { \"id\":"},"device":{"id":"door-1"},"id":"e1","kind":"door.opened"}"#
        let second = #"{"device":{"id":"door-2"},"id" : "e2"}"#
        let ndjson = try scan(first + "\n" + second + "\n")
        #expect(ndjson.map(\.id) == ["e1", "e2"])
        #expect(ndjson.map(\.text) == [first, second])
        let array = try scan("[" + first + " ,\n " + second + "]")
        #expect(array.map(\.id) == ["e1", "e2"])
        #expect(array.map(\.text) == [first, second])
    }

    /// The benchmark counts what Fluent Bit forwards by the generator's own top-level `dedupKey`.
    @Test func anotherTopLevelKeyCanIdentifyEvents() throws {
        let text = #"[{"attributes":{"dedupKey":"n"},"date":1.5,"dedupKey":"k1","id":"x"},{"dedupKeys":"no","dedupKey":"k2"},{"id":"y"}]"#
        let bytes = Array(text.utf8)
        let ids = try bytes.withUnsafeBytes { try CentralReceiver.scanObjects($0, idKey: "dedupKey").map(\.id) }
        #expect(ids == ["k1", "k2", nil])
    }

    @Test func malformedBodiesAreErrors() {
        #expect(throws: CentralReceiver.ScanError.self) { try scan(#"{"id":"e1""#) }
        #expect(throws: CentralReceiver.ScanError.self) { try scan(#"{"id":"e1}"#) }
        #expect(throws: CentralReceiver.ScanError.self) { try scan("]") }
    }

    @Test func answersBadRequestsAndCountsNothing() async throws {
        let receiver = CentralReceiver(expectedBearer: "t", logger: testLogger())
        try await withReceiver(receiver) { port in
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
            func post(_ body: String, bearer: String?) async throws -> Int {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/anything")
                request.method = .POST
                if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
                request.body = .bytes(ByteBuffer(string: body))
                let response = try await client.execute(request, timeout: .seconds(60))
                _ = try await response.body.collect(upTo: 1 << 16)
                return Int(response.status.code)
            }
            // A client dropped without shutdown() stops the whole test process: shut down on failure too.
            let statuses: [Int]
            do {
                statuses = [
                    try await post(#"{"id":"e1"}"#, bearer: "wrong"),
                    try await post(#"{"kind":"x"}"#, bearer: "t"),
                    try await post(#"{"id":"e1"}"#, bearer: "t"),
                ]
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
            #expect(statuses == [401, 400, 200])
        }
        #expect(receiver.snapshot.uniqueIDs == ["e1"])
        #expect(receiver.snapshot.requests == 3)
        #expect(receiver.snapshot.unauthorizedRequests == 1)
    }

    /// The camera benchmark measures delivery delay from the first arrival of each id; a repeat
    /// must not move it.
    @Test func keepsEachIDsFirstArrival() async throws {
        let receiver = CentralReceiver(logger: testLogger())
        var marks: [Date] = []
        try await withReceiver(receiver) { port in
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
            func post(_ body: String) async throws {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/events")
                request.method = .POST
                request.body = .bytes(ByteBuffer(string: body))
                let response = try await client.execute(request, timeout: .seconds(60))
                _ = try await response.body.collect(upTo: 1 << 16)
                #expect(response.status.code == 200)
            }
            do {
                marks.append(Date())
                try await post(#"{"id":"e1"}"#)
                marks.append(Date())
                try await post(#"{"id":"e1"}"# + "\n" + #"{"id":"e2"}"#)
                marks.append(Date())
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
        let arrivals = receiver.snapshot.firstArrivedAt
        let first = try #require(arrivals["e1"]), second = try #require(arrivals["e2"])
        #expect(marks[0] <= first && first <= marks[1])
        #expect(marks[1] <= second && second <= marks[2])
        #expect(receiver.snapshot.counts["e1"] == 2)
    }
}
