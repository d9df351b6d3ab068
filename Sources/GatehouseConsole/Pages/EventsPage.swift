import Foundation
import GatehouseCore
import GatehouseQueue
import Hummingbird

extension WebConsole {
    /// Search by kind, device and receive-time range over what is still in the queue; without a
    /// time range the table is a live feed of the newest events.
    func events(_ visitor: Visitor, query: Parameters) async throws -> PageBody {
        func value(_ name: String) -> String? {
            guard let text = query.get(name)?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        var problems: [String] = []
        var filter = EventFilter(kind: value("kind"), deviceID: value("device"), limit: 100)
        if let text = value("from") {
            filter.from = DeviceTimeParser.parseRFC3339(text)
            if filter.from == nil { problems.append("\(visitor.t("from")): \(text)? \(visitor.t("timesHint"))") }
        }
        if let text = value("until") {
            filter.until = DeviceTimeParser.parseRFC3339(text)
            if filter.until == nil { problems.append("\(visitor.t("until")): \(text)? \(visitor.t("timesHint"))") }
        }
        if let kind = filter.kind, EventKind(rawValue: kind) == nil { problems.append("\(visitor.t("kind")): \(kind)?") }
        let found: [StoredEvent]
        if !problems.isEmpty {
            found = []
        } else if filter.from == nil && filter.until == nil {
            // A live feed: every open Events page polls it, so one read a second serves them all.
            found = try await feedCache.value("\(filter.kind ?? "")|\(filter.deviceID ?? "")") { try await backend.queue.browse(filter) }
        } else {
            found = try await backend.queue.browse(filter)
        }
        let devices = try await statusCache.status().devices.map(\.id)
        let search = templates.render(
            "event-search",
            [
                "t": visitor.words, "from": value("from") ?? "", "until": value("until") ?? "",
                "kinds": EventKind.allCases.map { Choice(name: $0.rawValue, selected: $0.rawValue == filter.kind) },
                "devices": devices.map { Choice(name: $0, selected: $0 == filter.deviceID) },
            ] as [String: Any])
        let notes = problems.map { templates.render("note", ["text": $0]) }.joined()
        // The live address repeats the search, so the feed keeps its filter.
        var live: String?
        if filter.from == nil && filter.until == nil && problems.isEmpty {
            var components = URLComponents()
            components.path = "/console/api/events"
            components.queryItems = [("kind", filter.kind), ("device", filter.deviceID)].compactMap { name, value in value.map { URLQueryItem(name: name, value: $0) } }
            live = components.string
        }
        return PageBody(
            title: visitor.t("events"),
            tables: [eventTable(visitor, id: "events", title: live == nil ? visitor.t("events") : visitor.t("liveFeed"), events: found)],
            live: live, before: search + notes)
    }

    /// Events as stored: subjects appear as the privacy policy wrote them (masked, hashed or dropped).
    func eventTable(_ visitor: Visitor, id: String, title: String, events: [StoredEvent]) -> Table {
        let rows = events.map { stored -> Row in
            guard let event = try? EventCoding.decode(stored.body) else {
                return Row(cells: [Cell("#\(stored.seq)"), Cell("(unreadable)"), Cell(""), Cell(""), Cell(""), Cell(""), Cell(""), Cell("")])
            }
            let subject = event.subject.map { subject in
                [subject.type.rawValue, subject.value ?? "", subject.treatment.map { "(\($0.rawValue))" } ?? ""].filter { !$0.isEmpty }.joined(separator: " ")
            }
            return Row(cells: [
                Cell(event.id.description), Cell(event.receivedAt.rfc3339), Cell(event.occurredAt.rfc3339), Cell(event.kind.rawValue),
                Cell(event.device.id, href: "/console/devices/\(event.device.id.consolePathEscaped)"), Cell(event.point ?? ""),
                Cell(subject ?? ""), Cell(event.result?.rawValue ?? ""),
            ])
        }
        return Table(
            id: id, title: title,
            headers: ["id", "receivedAt", "occurredAt", "kind", "device", "point", "subject", "result"].map(visitor.t), rows: rows)
    }
}
