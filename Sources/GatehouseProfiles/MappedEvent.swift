import GatehouseCore

/// What a profile makes of one vendor record: the driver turns it into an `EventDraft`, and
/// the pipeline adds id, site, device, lane direction and the privacy policy.
public struct MappedEvent: Sendable, Equatable {
    public var kind: EventKind
    public var occurredAt: Timestamp?
    /// The device's own time text, verbatim.
    public var deviceTime: String?
    /// Why `deviceTime` could not be read as a time; the event then gets the gateway's clock.
    public var timeIssue: String?
    public var point: String?
    public var direction: Direction?
    public var subject: Subject?
    public var result: AccessResult?
    public var attributes: [String: JSONValue]?
    public var dedupKey: String?

    public init(kind: EventKind) { self.kind = kind }

    /// The test-vector form (`expected/<case>.json`): absent fields are left out.
    public var json: JSONValue {
        var object: [String: JSONValue] = ["kind": .string(kind.rawValue)]
        if let occurredAt { object["occurredAt"] = .string(occurredAt.rfc3339) }
        if let deviceTime { object["deviceTime"] = .string(deviceTime) }
        if let timeIssue { object["timeIssue"] = .string(timeIssue) }
        if let point { object["point"] = .string(point) }
        if let direction { object["direction"] = .string(direction.rawValue) }
        if let subject {
            var s: [String: JSONValue] = ["type": .string(subject.type.rawValue)]
            if let value = subject.value { s["value"] = .string(value) }
            if let color = subject.color { s["color"] = .string(color) }
            object["subject"] = .object(s)
        }
        if let result { object["result"] = .string(result.rawValue) }
        if let attributes, !attributes.isEmpty { object["attributes"] = .object(attributes) }
        if let dedupKey { object["dedupKey"] = .string(dedupKey) }
        return .object(object)
    }
}
