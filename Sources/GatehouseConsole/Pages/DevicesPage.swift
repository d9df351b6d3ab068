import GatehouseCore
import GatehouseIngest
import GatehouseQueue

extension WebConsole {
    /// Every device with driver, state (and why, since when), last event and event count.
    func devices(_ visitor: Visitor, status: ConsoleStatus) -> PageBody {
        let rows = status.devices.map { device in
            Row(cells: [
                Cell(device.id, href: "/console/devices/\(device.id.consolePathEscaped)"), Cell(device.driver),
                Cell(device.state.rawValue, cls: "state-\(device.state.rawValue)"), Cell(device.since.rfc3339), Cell(device.reason ?? ""),
                Cell(Format.time(device.lastSeen, never: visitor.t("never"))), Cell("\(device.events)"),
            ])
        }
        return PageBody(
            title: visitor.t("devices"),
            tables: [
                Table(
                    id: "devices", title: visitor.t("devices"),
                    headers: ["device", "driver", "state", "since", "reason", "lastSeen", "eventCount"].map(visitor.t), rows: rows)
            ],
            live: "/console/api/devices")
    }

    /// One device: its health, what its driver adds, its recent events and quarantined payloads.
    func device(_ visitor: Visitor, id: String) async throws -> PageBody? {
        guard let health = try await statusCache.status().devices.first(where: { $0.id == id }) else { return nil }
        var fields = [
            Field(id: "driver", label: visitor.t("driver"), value: health.driver),
            Field(id: "state", label: visitor.t("state"), value: health.state.rawValue),
            Field(id: "since", label: visitor.t("since"), value: health.since.rfc3339),
            Field(id: "reason", label: visitor.t("reason"), value: health.reason ?? ""),
            Field(id: "last-seen", label: visitor.t("lastSeen"), value: Format.time(health.lastSeen, never: visitor.t("never"))),
            Field(id: "events", label: visitor.t("eventCount"), value: "\(health.events)"),
        ]
        for (key, value) in (health.detail ?? [:]).sorted(by: { $0.key < $1.key }) {
            fields.append(Field(id: "detail-\(key)", label: key, value: value))
        }
        let recent = try await backend.queue.browse(EventFilter(deviceID: id, limit: 20))
        let quarantined = try await backend.queue.quarantineEntries(limit: 20, deviceID: id)
        return PageBody(
            title: "\(visitor.t("device")) \(id)", cards: [Card(title: id, fields: fields)],
            tables: [
                eventTable(visitor, id: "device-events", title: visitor.t("recentEvents"), events: recent),
                quarantineTable(visitor, id: "device-quarantine", title: visitor.t("quarantineOfDevice"), entries: quarantined),
            ],
            live: "/console/api/devices/\(id.consolePathEscaped)")
    }
}
