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
        var first = true
        func key(_ name: StaticString) {
            out += first ? "{\"" : ",\""
            first = false
            out += name.description
            out += "\":"
        }
        func string(_ name: StaticString, _ value: String?) {
            guard let value else { return }
            key(name)
            JSONValue.writeString(value, to: &out)
        }
        if let alarm {
            key("alarm")
            alarm.jsonValue.write(to: &out)
        }
        if let attributes {
            key("attributes")
            JSONValue.object(attributes).write(to: &out)
        }
        key("device")
        out += "{\"id\":"
        JSONValue.writeString(device.id, to: &out)
        if let model = device.model {
            out += ",\"model\":"
            JSONValue.writeString(model, to: &out)
        }
        out += ",\"type\":"
        JSONValue.writeString(device.type.rawValue, to: &out)
        out += ",\"vendor\":"
        JSONValue.writeString(device.vendor, to: &out)
        out += "}"
        string("direction", direction?.rawValue)
        string("id", id.description)
        string("kind", kind.rawValue)
        string("occurredAt", occurredAt.rfc3339)
        string("point", point)
        string("priority", priority.rawValue)
        string("receivedAt", receivedAt.rfc3339)
        string("result", result?.rawValue)
        string("schema", schema)
        string("site", site)
        key("source")
        var sourceFirst = true
        func sourceField(_ name: StaticString, _ value: String?) {
            guard let value else { return }
            out += sourceFirst ? "{\"" : ",\""
            sourceFirst = false
            out += name.description
            out += "\":"
            JSONValue.writeString(value, to: &out)
        }
        sourceField("dedupKey", source.dedupKey)
        sourceField("deviceTime", source.deviceTime)
        sourceField("driver", source.driver)
        sourceField("fingerprint", source.fingerprint)
        sourceField("profile", source.profile)
        out += "}"
        string("state", state?.rawValue)
        if let subject {
            key("subject")
            var subjectFirst = true
            func subjectField(_ name: StaticString, _ value: String?) {
                guard let value else { return }
                out += subjectFirst ? "{\"" : ",\""
                subjectFirst = false
                out += name.description
                out += "\":"
                JSONValue.writeString(value, to: &out)
            }
            subjectField("color", subject.color)
            subjectField("treatment", subject.treatment?.rawValue)
            subjectField("type", subject.type.rawValue)
            subjectField("value", subject.value)
            out += "}"
        }
        string("timeReason", timeReason)
        string("timeSource", timeSource?.rawValue)
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
