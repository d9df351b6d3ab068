import Foundation
@testable import GatehouseQueue
import GatehouseTesting
import Testing

@testable import GatehouseCore

@testable import GatehouseSinks

/// Pure rules: response mapping, Retry-After, backoff, idempotency keys.
@Suite struct DeliveryRulesTests {
    @Test(arguments: [
        (200, DeliveryResult.delivered), (204, .delivered),
        (503, .retryable(after: nil, reason: "HTTP 503 Service Unavailable")),
        (429, .retryable(after: nil, reason: "HTTP 429 Too Many Requests")),
        (408, .retryable(after: nil, reason: "HTTP 408 Request Timeout")),
        (400, .rejected(reason: "HTTP 400: bad event")), (422, .rejected(reason: "HTTP 422: bad event")),
    ])
    func responseMapping(status: Int, expected: DeliveryResult) {
        let phrase = ["503": "Service Unavailable", "429": "Too Many Requests", "408": "Request Timeout"]["\(status)"] ?? ""
        #expect(HTTPSink.result(status: status, reasonPhrase: phrase, retryAfter: nil, body: "bad event") == expected)
    }

    @Test(arguments: [401, 403, 404])
    func credentialAndAddressErrorsAreFatal(status: Int) {
        guard case .fatal = HTTPSink.result(status: status, reasonPhrase: "", retryAfter: nil, body: "") else {
            Issue.record("HTTP \(status) must be fatal, never split into per-event rejections")
            return
        }
    }

    @Test func retryAfterInSecondsAndAsHTTPDate() throws {
        #expect(RetryAfter.seconds("120") == 120)
        #expect(RetryAfter.seconds(" 3 ") == 3)
        let now = try #require(ISO8601DateFormatter().date(from: "2026-11-24T08:00:00Z"))
        #expect(RetryAfter.seconds("Tue, 24 Nov 2026 08:00:30 GMT", now: now) == 30)
        #expect(RetryAfter.seconds("Tue, 24 Nov 2026 07:00:00 GMT", now: now) == 0)
        #expect(RetryAfter.seconds("soon") == nil)
        let mapped = HTTPSink.result(status: 503, reasonPhrase: "", retryAfter: "Tue, 24 Nov 2026 08:00:30 GMT", body: "", now: now)
        #expect(mapped == .retryable(after: 30, reason: "HTTP 503"))
    }

    @Test func backoffDoublesToTheCapAndHonoursRetryAfter() {
        let delays = (1...8).map { SinkRunner.backoffDelay(failures: $0, initial: 0.5, cap: 10, after: nil, fatal: false) }
        #expect(delays[0] >= 0.5 && delays[0] <= 0.5)
        #expect(delays[2] >= 1.6 && delays[2] <= 2.0)
        #expect(delays.allSatisfy { $0 <= 10 })
        #expect(delays[7] >= 8)
        #expect(SinkRunner.backoffDelay(failures: 1, initial: 0.5, cap: 10, after: 42, fatal: false) == 42)
        #expect(SinkRunner.backoffDelay(failures: 1, initial: 0.5, cap: 10, after: 9999, fatal: false) == 300)
        #expect(SinkRunner.backoffDelay(failures: 1, initial: 0.5, cap: 10, after: nil, fatal: true) == 10)
        #expect(SinkRunner.backoffDelay(failures: 3, initial: 0.5, cap: 0, after: nil, fatal: true) == 10)
    }

    @Test func idempotencyKeyIsStableForTheSameEventsOnly() {
        let a = [1, 2, 3].map { StoredEvent(seq: $0, priority: .access, body: Data()) }
        let b = [1, 5, 3].map { StoredEvent(seq: $0, priority: .access, body: Data()) }
        #expect(SinkBatch(sink: "s", events: a).idempotencyKey == SinkBatch(sink: "s", events: a).idempotencyKey)
        #expect(SinkBatch(sink: "s", events: a).idempotencyKey != SinkBatch(sink: "s", events: b).idempotencyKey)
        #expect(SinkBatch(sink: "s", events: a).idempotencyKey.hasPrefix("s-1-3-"))
    }

    @Test func unreadableTLSFilesFailAtConstructionNamingTheFile() throws {
        var config = httpSinkConfig(port: 1)
        guard var http = config.settings as? HTTPSinkConfig else { return }
        http.caFile = "/nonexistent/central-ca.pem"
        config.settings = http
        let error = #expect(throws: HTTPSinkError.self) { try SinkRegistry.make(config, logger: testLogger()) }
        #expect(error?.description.contains("/nonexistent/central-ca.pem") == true)
    }
}
