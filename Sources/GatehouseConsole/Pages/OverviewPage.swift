import GatehouseCore

extension WebConsole {
    /// Site, version, uptime, queue, disk, sinks, evictions and quarantine: the status log's figures.
    func overview(_ visitor: Visitor, status: ConsoleStatus) -> PageBody {
        let queue = status.queue
        let up = status.devices.filter { $0.state == .up }.count
        let down = status.devices.filter { $0.state == .down }
        let oldest = queue.oldestReceivedAt.map { Format.duration(status.generatedAt.seconds - $0.seconds) } ?? "-"
        let site = Card(
            title: visitor.t("site"),
            fields: [
                Field(id: "site", label: visitor.t("site"), value: status.site),
                Field(id: "version", label: visitor.t("version"), value: GatehouseVersion.current),
                Field(id: "uptime", label: visitor.t("uptime"), value: Format.duration(status.generatedAt.seconds - status.startedAt.seconds)),
                Field(id: "devices-up", label: visitor.t("devicesUp"), value: "\(up)/\(status.devices.count)"),
            ])
        let queueCard = Card(
            title: visitor.t("queue"),
            fields: [
                Field(id: "depth", label: visitor.t("depth"), value: "\(queue.depth)"),
                Field(id: "oldest", label: visitor.t("oldest"), value: oldest),
                Field(id: "disk", label: visitor.t("disk"), value: "\(Format.bytes(queue.usedBytes)) / \(Format.bytes(queue.budgetBytes))"),
                Field(id: "evicted", label: visitor.t("evicted"), value: "\(queue.evicted.values.reduce(0, +))"),
                Field(id: "quarantined", label: visitor.t("quarantined"), value: "\(queue.quarantined) (\(queue.quarantineWaiting))"),
                Field(id: "duplicates", label: visitor.t("duplicates"), value: "\(queue.duplicates)"),
            ])
        var sinkRows = status.sinks.map { line in
            Row(cells: [
                Cell(line.status.name), Cell(line.status.type), Cell(line.status.state, cls: line.status.lastError == nil ? "state-up" : "state-down"),
                Cell("\(Int(line.status.eventsPerMinute.rounded()))"), Cell("\(line.lag)"), Cell(line.status.lastError ?? ""),
            ])
        }
        sinkRows += status.failedSinks.sorted { $0.key < $1.key }.map { name, reason in
            Row(cells: [Cell(name), Cell("-"), Cell("failed", cls: "state-down"), Cell("0"), Cell("-"), Cell(reason)])
        }
        let downRows = down.map { device in
            Row(cells: [
                Cell(device.id, href: "/console/devices/\(device.id.consolePathEscaped)"), Cell(device.reason ?? "", cls: "state-down"),
                Cell(device.since.rfc3339),
            ])
        }
        return PageBody(
            title: visitor.t("overview"), cards: [site, queueCard],
            tables: [
                Table(
                    id: "sinks", title: visitor.t("sinks"),
                    headers: ["name", "type", "state", "rate", "lag", "lastError"].map(visitor.t), rows: sinkRows),
                Table(id: "down", title: visitor.t("devicesDown"), headers: ["device", "reason", "since"].map(visitor.t), rows: downRows),
            ],
            live: "/console/api/overview",
            after: actionForm(visitor, action: "/console/reload", label: visitor.t("reload"), buttonID: "reload"))
    }
}

extension String {
    /// A device id or other name as one URL path segment.
    var consolePathEscaped: String {
        addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? self
    }
}
