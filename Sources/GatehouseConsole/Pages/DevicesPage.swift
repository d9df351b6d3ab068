import GatehouseCore
import GatehouseIngest
import GatehouseQueue

extension WebConsole {
    /// Every device with driver, state (and why, since when), last event, event count, rate and
    /// clock offset. The page's own heading names it, so the table has none.
    func devices(_ visitor: Visitor, status: ConsoleStatus) -> PageBody {
        let rows = status.devices.map { device in
            Row(cells: [
                Cell(device.id, href: "/console/devices/\(device.id.consolePathEscaped)"), Cell(device.driver),
                Cell(device.state.rawValue, cls: "state-\(device.state.rawValue)"), Cell(device.since.rfc3339), Cell(device.reason ?? ""),
                Cell(Format.time(device.lastSeen, never: visitor.t("never"))), Cell("\(device.events)"),
                Cell(Self.rate(status.eventsPerMinute[device.id])), Cell(Self.offset(status.clockOffsets[device.id])),
            ])
        }
        return PageBody(
            title: visitor.t("devices"),
            tables: [
                Table(
                    id: "devices", title: "",
                    headers: ["device", "driver", "state", "since", "reason", "lastSeen", "eventCount", "rate", "clockOffset"].map(visitor.t),
                    rows: rows)
            ],
            live: "/console/api/devices")
    }

    /// One device: its health, what its driver adds, its recent events and quarantined payloads.
    func device(_ visitor: Visitor, id: String) async throws -> PageBody? {
        let status = try await statusCache.status()
        guard let health = status.devices.first(where: { $0.id == id }) else { return nil }
        var fields = [
            Field(id: "driver", label: visitor.t("driver"), value: health.driver),
            Field(id: "state", label: visitor.t("state"), value: health.state.rawValue),
            Field(id: "since", label: visitor.t("since"), value: health.since.rfc3339),
            Field(id: "reason", label: visitor.t("reason"), value: health.reason ?? ""),
            Field(id: "last-seen", label: visitor.t("lastSeen"), value: Format.time(health.lastSeen, never: visitor.t("never"))),
            Field(id: "events", label: visitor.t("eventCount"), value: "\(health.events)"),
            Field(id: "rate", label: visitor.t("rate"), value: Self.rate(status.eventsPerMinute[id])),
            Field(id: "clock-offset", label: visitor.t("clockOffset"), value: Self.offset(status.clockOffsets[id])),
        ]
        for (key, value) in (health.detail ?? [:]).sorted(by: { $0.key < $1.key }) {
            fields.append(Field(id: "detail-\(key)", label: key, value: value))
        }
        let recent = try await backend.queue.browse(EventFilter(deviceID: id, limit: 20))
        let quarantined = try await backend.queue.quarantineEntries(limit: 20, deviceID: id)
        let payload = backend.lastPayload(id)
        // The text itself only to a logged-in user, like a quarantined payload's decoded body: the
        // policy covers the values the mapping read, not every field a device may add, and an
        // unmapped payload's short plain words (a PIN, a name in Latin letters) are not hidden.
        let shown = payload.map { visitor.session == nil ? visitor.t("payloadLoginNeeded") : $0.text } ?? visitor.t("noPayload")
        let text = Field(id: "last-payload", label: visitor.t("lastPayload"), value: shown)
        let note = Field(id: "last-payload-note", label: "", value: payload?.mapped == false && visitor.session != nil ? visitor.t("payloadUnmapped") : "")
        return PageBody(
            title: "\(visitor.t("device")) \(id)", cards: [Card(title: id, fields: fields), lastPayloadCard(visitor, payload)],
            tables: [
                eventTable(visitor, id: "device-events", title: visitor.t("recentEvents"), events: recent),
                quarantineTable(visitor, id: "device-quarantine", title: visitor.t("quarantineOfDevice"), entries: quarantined),
            ],
            live: "/console/api/devices/\(id.consolePathEscaped)",
            after: templates.render("last-payload", ["t": visitor.words, "text": text.value, "note": note.value] as [String: Any]),
            liveFields: [text, note])
    }

    /// When the last payload came, its type and size (the text itself is below the tables).
    func lastPayloadCard(_ visitor: Visitor, _ payload: LastPayload.Shown?) -> Card {
        let size: String
        if let payload {
            size = payload.shownBytes < payload.byteCount
                ? "\(payload.byteCount) \(visitor.t("bytes")) (\(visitor.t("payloadShown")): \(payload.shownBytes))" : "\(payload.byteCount) \(visitor.t("bytes"))"
        } else {
            size = "-"
        }
        return Card(
            title: visitor.t("lastPayload"),
            fields: [
                Field(id: "last-payload-at", label: visitor.t("receivedAt"), value: Format.time(payload?.receivedAt, never: visitor.t("never"))),
                Field(id: "last-payload-type", label: visitor.t("contentType"), value: payload?.contentType ?? "-"),
                Field(id: "last-payload-size", label: visitor.t("payloadSize"), value: size),
            ])
    }

    /// Events per minute, one decimal; "-" for a device that sent nothing in the window.
    static func rate(_ perMinute: Double?) -> String {
        guard let perMinute, perMinute > 0 else { return "-" }
        return String(format: "%.1f", perMinute)
    }

    /// Gateway minus device clock in whole seconds, signed (positive: the device runs behind).
    static func offset(_ seconds: Double?) -> String {
        guard let seconds else { return "-" }
        return String(format: "%+.0f s", seconds)
    }
}
