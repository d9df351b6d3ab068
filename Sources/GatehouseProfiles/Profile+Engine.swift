import Foundation
import GatehouseCore

/// The outcome of running a profile on one request: events or the reason they could not be
/// made, and in both cases the reply that stops the device from re-sending.
public struct ProfileOutcome: Sendable {
    public var events: Result<[MappedEvent], MappingError>
    public var reply: ProfileReply
    /// The identity the profile's device rule found in the payload (serial, header, address).
    public var deviceKey: String?
}

extension Profile {
    public static let vehicleKinds: Set<EventKind> = [.vehicleEntry, .vehicleExit, .vehicleDetected]

    /// Decodes the body and checks that it is one this profile reads.
    public func decode(_ request: ProfileRequest) throws(MappingError) -> PayloadDocument {
        if !match.contentTypes.isEmpty, let type = request.contentType?.lowercased(),
            !match.contentTypes.contains(where: { type.contains($0.lowercased()) })
        {
            throw MappingError("Content-Type '\(type)' is not one profile \(name) reads (expected \(match.contentTypes.joined(separator: ", ")))")
        }
        let document = try BodyDecoder.decode(request.body, contentType: request.contentType, spec: body)
        for path in match.require where path.resolve(in: document.root) == nil {
            throw MappingError("not a \(name) payload: required field '\(path)' is missing")
        }
        return document
    }

    /// The device identity in this request per the profile's rule; nil when absent.
    public func deviceKey(document: PayloadDocument?, request: ProfileRequest) -> String? {
        switch identify {
        case .serial(let path): return document.flatMap { path.resolve(in: $0.root)?.mappingText }
        case .header(let name): return request.headers[name.lowercased()]
        case .sourceIP: return request.remoteIP
        case .path: return nil
        }
    }

    /// Maps a decoded document to events for `device`.
    public func map(_ document: PayloadDocument, request: ProfileRequest?, device: ProfileDevice) throws(MappingError) -> [MappedEvent] {
        var base = MappingContext(item: document.root, document: document, request: request, device: device)
        var items: [JSONValue] = [document.root]
        if let each = event.each {
            switch each.resolve(in: document.root) {
            case .array(let list)?: items = list
            case let single?: items = [single]
            case nil: throw MappingError("field '\(each)' is missing (expected the list of records)")
            }
        }
        var events: [MappedEvent] = []
        for (index, item) in items.enumerated() {
            base.item = item
            guard event.when.allSatisfy({ $0.holds(base, first: nil, failed: false) }) else { continue }
            do {
                if let mapped = try mapItem(base) { events.append(mapped) }
            } catch {
                throw items.count > 1 ? MappingError("record \(index): \(error.reason)") : error
            }
        }
        // The reply the device will get must not carry a number it cannot be given back exactly.
        let replyContext = MappingContext(item: document.root, document: document, request: request, device: device)
        if let chosen = replies.first(where: { spec in spec.when.allSatisfy { $0.holds(replyContext, first: events.first, failed: false) } }) {
            try Self.refuseBeyondRange(chosen.body.fieldPaths, replyContext, usedIn: "the reply")
        }
        return events
    }

    /// Refuses a field holding a number beyond the range of a double (e.g. `1e400`) where it
    /// would become part of a dedup key or a reply: as a double it is infinity, so two different
    /// reads would share the key `…:inf` and the reply would not be JSON. Attributes keep it as sent.
    static func refuseBeyondRange(_ paths: [FieldPath], _ context: MappingContext, usedIn use: String) throws(MappingError) {
        for path in paths {
            if let value = context.value(path), value.isBeyondDoubleRange {
                throw MappingError("field '\(path)' holds \(value.numberText ?? "a number") beyond the range of a double; it cannot be used in \(use) (expected a number within ±1.8e308)")
            }
        }
    }

    func mapItem(_ context: MappingContext) throws(MappingError) -> MappedEvent? {
        guard let kindText = event.kind.evaluate(context, tables: tables) else {
            let raw = event.kind.raw(context).map { "'\($0)'" } ?? "nothing"
            throw MappingError("no event kind for this record: \(describe(event.kind)) gave \(raw), which the profile does not map (add it to the table or a default)")
        }
        if kindText == "ignore" { return nil }
        guard var kind = EventKind(rawValue: kindText) else {
            throw MappingError("'\(kindText)' is not an event kind (see docs/event-schema.md)")
        }
        var mapped = MappedEvent(kind: kind)
        for spec in event.time {
            do {
                if let (time, text) = try spec.evaluate(context, zone: context.device?.timeZone ?? .gmt) {
                    mapped.occurredAt = time
                    mapped.deviceTime = text
                    mapped.timeIssue = nil
                    break
                }
            } catch {
                // A time that cannot be read does not lose the read: the event keeps the device's
                // text and the reason, and gets the gateway's clock (docs/event-schema.md, Time).
                if mapped.deviceTime == nil {
                    mapped.deviceTime = context.text(spec.path)
                    mapped.timeIssue = error.reason
                }
            }
        }
        if let plateSpec = event.plate, Self.vehicleKinds.contains(kind) {
            let plate = plateSpec.evaluate(context, tables: tables).map(PlateNumber.normalize) ?? ""
            let markers = Set(event.noPlate.map { PlateNumber.normalize($0).uppercased() })
            let unplated = plate.isEmpty || markers.contains(plate.uppercased())
                || (!event.unplatedWhen.isEmpty && event.unplatedWhen.allSatisfy { $0.holds(context, first: nil, failed: false) })
            if unplated {
                kind = .vehicleUnplated
                mapped.kind = kind
            } else {
                mapped.subject = Subject(type: .plate, value: plate, color: event.plateColor?.evaluate(context, tables: tables))
            }
        }
        mapped.point = event.point?.evaluate(context, tables: tables)
        if let spec = event.direction, let text = spec.evaluate(context, tables: tables) {
            guard let direction = Direction(rawValue: text) else {
                throw MappingError("direction '\(text)' from \(describe(spec)) is not valid (expected in or out; map vendor codes with a table)")
            }
            mapped.direction = direction
        }
        if let spec = event.result, let text = spec.evaluate(context, tables: tables) {
            guard let result = AccessResult(rawValue: text) else {
                throw MappingError("result '\(text)' from \(describe(spec)) is not valid (expected granted, denied or unknown; map vendor codes with a table)")
            }
            mapped.result = result
        }
        var attributes: [String: JSONValue] = [:]
        for (name, spec) in event.attributes {
            if spec.transforms.isEmpty, spec.lookup == nil, case .paths(let paths) = spec.source,
                let value = paths.lazy.compactMap({ context.value($0) }).first(where: { $0 != .null })
            {
                // A plain field keeps its JSON type: a confidence stays a number.
                attributes[name] = value
            } else if let text = spec.evaluate(context, tables: tables) {
                attributes[name] = .string(text)
            }
        }
        mapped.attributes = attributes.isEmpty ? nil : attributes
        if let spec = event.dedup { try Self.refuseBeyondRange(spec.fieldPaths, context, usedIn: "the dedup key") }
        if let spec = event.dedup, let key = spec.evaluate(context, tables: tables), !key.isEmpty {
            guard key.utf8.count <= 200 else { throw MappingError("dedup key of \(key.utf8.count) bytes is too long (at most 200)") }
            mapped.dedupKey = key
        }
        return mapped
    }

    func describe(_ spec: ValueSpec) -> String {
        switch spec.source {
        case .paths(let paths): "field '\(paths.map(\.text).joined(separator: "' or '"))'"
        case .constant(let text): "constant '\(text)'"
        case .template(let template): "template '\(template.source)'"
        }
    }

    /// The reply for this request; `document` is nil when the body could not be read.
    public func reply(document: PayloadDocument?, request: ProfileRequest?, device: ProfileDevice?, events: [MappedEvent], failed: Bool) -> ProfileReply {
        let context = MappingContext(item: document?.root ?? .null, document: document, request: request, device: device)
        let chosen = replies.first { spec in spec.when.allSatisfy { $0.holds(context, first: events.first, failed: failed) } }
        guard let chosen else { return ProfileReply(status: 200, contentType: "text/plain", body: "OK") }
        let json = chosen.contentType.lowercased().contains("json")
        let body = chosen.body.renderLenient(context) { value in json ? Self.jsonEscaped(value) : value }
        return ProfileReply(status: chosen.status, contentType: chosen.contentType, body: body)
    }

    /// Everything at once, as `gatehouse adapters test` and replay use it.
    public func process(_ request: ProfileRequest, device: ProfileDevice) -> ProfileOutcome {
        var document: PayloadDocument?
        do {
            let decoded = try decode(request)
            document = decoded
            let events = try map(decoded, request: request, device: device)
            return ProfileOutcome(
                events: .success(events), reply: reply(document: decoded, request: request, device: device, events: events, failed: false),
                deviceKey: deviceKey(document: decoded, request: request))
        } catch {
            return ProfileOutcome(
                events: .failure(error), reply: reply(document: document, request: request, device: device, events: [], failed: true),
                deviceKey: deviceKey(document: document, request: request))
        }
    }

    static func jsonEscaped(_ text: String) -> String {
        let quoted = JSONValue.string(text).jsonText
        return String(quoted.dropFirst().dropLast())
    }
}
