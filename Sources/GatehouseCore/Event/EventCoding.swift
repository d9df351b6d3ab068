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
    /// written straight out in key order because this runs for every event ingested (building
    /// the `jsonValue` tree and sorting its keys was a twentieth of the ingest path's CPU).
    public static func encode(_ event: Event) throws -> Data {
        var out = ""
        out.reserveCapacity(640)
        event.writeJSON(to: &out)
        return Data(out.utf8)
    }
    public static func decode(_ data: Data) throws -> Event { try decoder().decode(Event.self, from: data) }
}

extension Event {
    /// Writes `jsonValue`'s text (keys sorted, optionals left out) without building the tree.
    /// Every literal key below is in sorted order; `EventSchemaTests` compares the two forms.
    func writeJSON(to out: inout String) {
        /// A member's key, after `{` when it is the object's first (`first`), else after `,`.
        func key(_ name: StaticString, _ first: inout Bool) {
            out += first ? "{\"" : ",\""
            first = false
            out += name.description
            out += "\":"
        }
        func string(_ name: StaticString, _ value: String?, _ first: inout Bool) {
            guard let value else { return }
            key(name, &first)
            JSONValue.writeString(value, to: &out)
        }
        var top = true
        if let alarm {
            key("alarm", &top)
            alarm.jsonValue.write(to: &out)
        }
        if let attributes {
            key("attributes", &top)
            JSONValue.object(attributes).write(to: &out)
        }
        key("device", &top)
        var inner = true
        string("id", device.id, &inner)
        string("model", device.model, &inner)
        string("type", device.type.rawValue, &inner)
        string("vendor", device.vendor, &inner)
        out += "}"
        string("direction", direction?.rawValue, &top)
        string("id", id.description, &top)
        string("kind", kind.rawValue, &top)
        string("occurredAt", occurredAt.rfc3339, &top)
        string("point", point, &top)
        string("priority", priority.rawValue, &top)
        string("receivedAt", receivedAt.rfc3339, &top)
        string("result", result?.rawValue, &top)
        string("schema", schema, &top)
        string("site", site, &top)
        key("source", &top)
        inner = true
        string("dedupKey", source.dedupKey, &inner)
        string("deviceTime", source.deviceTime, &inner)
        string("driver", source.driver, &inner)
        string("fingerprint", source.fingerprint, &inner)
        string("profile", source.profile, &inner)
        out += "}"
        string("state", state?.rawValue, &top)
        if let subject {
            key("subject", &top)
            inner = true
            string("color", subject.color, &inner)
            string("treatment", subject.treatment?.rawValue, &inner)
            string("type", subject.type.rawValue, &inner)
            string("value", subject.value, &inner)
            out += "}"
        }
        string("timeReason", timeReason, &top)
        string("timeSource", timeSource?.rawValue, &top)
        out += "}"
    }

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
