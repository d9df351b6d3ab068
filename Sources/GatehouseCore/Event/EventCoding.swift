import Foundation

/// The one JSON form of an event: what the queue stores, sinks send and tests compare.
public enum EventCoding {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return encoder
    }

    public static func decoder() -> JSONDecoder { JSONDecoder() }

    /// Sorted keys, no spaces, absent optionals left out: the same text `encoder()` writes,
    /// built directly because this runs for every event ingested.
    public static func encode(_ event: Event) throws -> Data { Data(event.jsonValue.jsonText.utf8) }
    public static func decode(_ data: Data) throws -> Event { try decoder().decode(Event.self, from: data) }
}

extension Event {
    /// The event as a JSON value tree, in the shape `Codable` gives it.
    public var jsonValue: JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(id.description), "schema": .string(schema), "kind": .string(kind.rawValue),
            "occurredAt": .string(occurredAt.rfc3339), "receivedAt": .string(receivedAt.rfc3339), "site": .string(site),
            "priority": .string(priority.rawValue),
        ]
        var deviceObject: [String: JSONValue] = [
            "id": .string(device.id), "vendor": .string(device.vendor), "type": .string(device.type.rawValue),
        ]
        if let model = device.model { deviceObject["model"] = .string(model) }
        object["device"] = .object(deviceObject)
        if let timeSource { object["timeSource"] = .string(timeSource.rawValue) }
        if let timeReason { object["timeReason"] = .string(timeReason) }
        if let point { object["point"] = .string(point) }
        if let direction { object["direction"] = .string(direction.rawValue) }
        if let subject {
            var subjectObject: [String: JSONValue] = ["type": .string(subject.type.rawValue)]
            if let value = subject.value { subjectObject["value"] = .string(value) }
            if let treatment = subject.treatment { subjectObject["treatment"] = .string(treatment.rawValue) }
            if let color = subject.color { subjectObject["color"] = .string(color) }
            object["subject"] = .object(subjectObject)
        }
        if let result { object["result"] = .string(result.rawValue) }
        if let state { object["state"] = .string(state.rawValue) }
        if let alarm { object["alarm"] = alarm.jsonValue }
        if let attributes { object["attributes"] = .object(attributes) }
        var sourceObject: [String: JSONValue] = ["driver": .string(source.driver)]
        if let profile = source.profile { sourceObject["profile"] = .string(profile) }
        if let dedupKey = source.dedupKey { sourceObject["dedupKey"] = .string(dedupKey) }
        if let deviceTime = source.deviceTime { sourceObject["deviceTime"] = .string(deviceTime) }
        if let fingerprint = source.fingerprint { sourceObject["fingerprint"] = .string(fingerprint) }
        object["source"] = .object(sourceObject)
        return .object(object)
    }
}
