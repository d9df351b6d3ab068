import Foundation
import GatehouseCore
import GatehouseQueue
import Hummingbird

/// How every push driver refuses what it cannot take, so a device gets the same status and
/// `Retry-After` for the same situation whatever its brand (docs/operations.md, "Refusals").
///
/// | situation | status | `error` | Retry-After |
/// | --- | --- | --- | --- |
/// | device not configured / configured for another driver | 404 (403 when known only by a serial in the body or query) | `unknown-device`, `wrong-driver` | — |
/// | source not in `allow_from` | 403 | `source-not-allowed` | — |
/// | credentials missing or wrong | 401 | `missing-credentials`, `bad-credentials` | — |
/// | body larger than `max_body_bytes` / slower than `request_timeout_seconds` / unreadable | 413 / 408 / 400 | `body-too-large`, `body-timeout`, `body-unreadable` | — |
/// | body cannot be mapped, kept in quarantine | 422 (or the driver's protocol reply) | `invalid-event` with `quarantineId` | — |
/// | disk budget full (events or quarantine refused) | 503 | `queue-full` | 30 s: space frees only as sinks deliver |
/// | file system holding the queue full | 503 | `disk-full` | 30 s: space frees as sinks deliver |
/// | more pushed requests unanswered, or appends waiting for the commit, than `queue.max_waiting_appends` | 503 | `overloaded` | 1 s: the line is short |
/// | the queue failed to commit | 503 | `not-stored` | 5 s: a transient fault |
///
/// Drivers whose protocol has its own reply format (ZKTeco's text, a profile's reply) keep their
/// body but take the status and Retry-After from here.
public enum PushRefusal {
    public static let queueFullRetryAfterSeconds = 30
    public static let notStoredRetryAfterSeconds = 5
    public static let overloadedRetryAfterSeconds = 1

    /// The disk budget refused what the device sent: it must keep it and send it again.
    public static func queueFull(_ message: String) -> Rejection {
        Rejection(.serviceUnavailable, "queue-full", message, retryAfterSeconds: queueFullRetryAfterSeconds)
    }

    /// The queue could not commit; nothing was acknowledged.
    public static func notStored(_ error: any Error) -> Rejection {
        Rejection(.serviceUnavailable, "not-stored", "could not queue it: \(error)", retryAfterSeconds: notStoredRetryAfterSeconds)
    }

    /// The body does not map; it is kept as quarantine entry `quarantineID`.
    public static func invalid(_ reason: String, quarantineID: Int64) -> Rejection {
        Rejection(.unprocessableContent, "invalid-event", reason, extra: ["quarantineId": String(quarantineID)])
    }

    /// The table's refusal for an error thrown while storing.
    public static func refusal(for error: any Error) -> Rejection {
        switch error {
        case let rejection as Rejection: rejection
        case let full as QueueFullError: queueFull(full.description)
        case let full as QueueDiskFullError:
            Rejection(.serviceUnavailable, "disk-full", full.description, retryAfterSeconds: queueFullRetryAfterSeconds)
        case let overloaded as QueueOverloadedError:
            Rejection(.serviceUnavailable, "overloaded", overloaded.description, retryAfterSeconds: overloadedRetryAfterSeconds)
        default: notStored(error)
        }
    }

    /// The table's refusal when the disk budget refused part of a commit; nil when all of it was accepted.
    public static func refusal(for outcomes: [AppendOutcome]) -> Rejection? {
        for outcome in outcomes {
            if case .refused(let reason) = outcome { return queueFull(reason) }
        }
        return nil
    }
}

/// One pushed request on the push path: authorize → read the body (limits) → decode or
/// quarantine → submit → reply. Each step throws the refusal of `PushRefusal`'s table.
public struct PushRequest: Sendable {
    public let request: Request
    public let requestContext: IngestRequestContext
    public let driver: String
    let context: DriverContext

    public var route: String { request.uri.path }
    public var contentType: String? { request.headers[.contentType] }
    public var remoteIP: String? { requestContext.remoteIP }
    /// A path parameter of the route, e.g. `device`.
    public func parameter(_ name: String) -> String? { requestContext.parameters.get(name) }

    /// The configured device `id`, if this request may speak for it (allow-list and credentials);
    /// with `ofThisDriver`, refused unless it is configured for this driver.
    public func authorize(deviceID id: String, ofThisDriver: Bool = true) throws(Rejection) -> DeviceContext {
        let device = try context.requests.authorize(deviceID: id, request: request, context: requestContext)
        guard !ofThisDriver || device.driver == driver else {
            throw Rejection(.notFound, "wrong-driver", "device '\(id)' is configured for driver '\(device.driver)', not \(driver)")
        }
        return context.device(device)
    }

    /// The whole body, within `max_body_bytes` and `request_timeout_seconds`.
    public func body() async throws(Rejection) -> [UInt8] {
        Array(try await context.requests.body(of: request).readableBytesView)
    }

    /// Keeps a body that could not be mapped (for `device`, or without one when the device is
    /// not known yet); returns its quarantine id, or throws the table's refusal when it cannot be kept.
    public func quarantine(_ body: [UInt8], reason: String, device: DeviceConfig?) async throws(Rejection) -> Int64 {
        let record = QuarantineRecord(
            deviceID: device?.id, driver: driver, route: route, contentType: contentType, remote: remoteIP, reason: reason,
            payload: Data(body))
        do {
            return try await context.quarantine(record)
        } catch let full as QueueFullError {
            throw PushRefusal.queueFull("\(reason); and the disk budget is full, so it was not kept (\(full))")
        } catch {
            throw PushRefusal.refusal(for: error)
        }
    }

    /// Decodes a body, or keeps it in quarantine and throws the table's 422 with its id.
    public func decode<Value>(
        _ body: [UInt8], device: DeviceConfig, _ decode: () throws(PayloadError) -> Value
    ) async throws(Rejection) -> Value {
        let decoded = Result(catching: decode)
        // The console's device page shows it; the drafts say which values are personal.
        context.keepLastPayload(body, contentType: contentType, of: device, mapped: (try? decoded.get()) as? [EventDraft])
        switch decoded {
        case .success(let value):
            return value
        case .failure(let error):
            let id = try await quarantine(body, reason: error.reason, device: device)
            throw PushRefusal.invalid(error.reason, quarantineID: id)
        }
    }

    /// Commits for `device`; returns the outcomes (a refused one included: see `commit`), or
    /// throws the table's refusal when the queue fails.
    public func submit(
        _ drafts: [EventDraft], device: DeviceContext, quarantine: [QuarantineRecord] = [], cursor: String? = nil
    ) async throws(Rejection) -> [AppendOutcome] {
        do {
            return try await device.submit(drafts, quarantine: quarantine, cursor: cursor)
        } catch {
            throw PushRefusal.refusal(for: error)
        }
    }

    /// Commits for `device` and throws the table's refusal unless all of it was accepted: the
    /// device must not get its success reply for something that was not stored.
    public func commit(
        _ drafts: [EventDraft], device: DeviceContext, quarantine: [QuarantineRecord] = [], cursor: String? = nil
    ) async throws(Rejection) {
        let outcomes = try await submit(drafts, device: device, quarantine: quarantine, cursor: cursor)
        if let refusal = PushRefusal.refusal(for: outcomes) { throw refusal }
    }
}

extension DriverContext {
    /// Answers one pushed request with `handle`; anything it throws becomes the refusal of
    /// `PushRefusal`'s table (a `Rejection` as it is, a queue error as 503).
    public func push(
        _ request: Request, _ requestContext: IngestRequestContext, driver: String,
        _ handle: (PushRequest) async throws -> Response
    ) async -> Response {
        do {
            // Admission first: under overload the refusal costs no body read, decode or commit.
            return try await admitting {
                try await handle(PushRequest(request: request, requestContext: requestContext, driver: driver, context: self))
            }
        } catch {
            return PushRefusal.refusal(for: error).response
        }
    }
}
