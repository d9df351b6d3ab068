import Foundation
import GatehouseCore
import GatehouseQueue

extension WebConsole {
    func quarantineList(_ visitor: Visitor) async throws -> PageBody {
        let entries = try await backend.queue.quarantineEntries(limit: 200)
        return PageBody(
            title: visitor.t("quarantine"),
            tables: [quarantineTable(visitor, id: "quarantine", title: visitor.t("quarantine"), entries: entries)],
            before: actionForm(visitor, action: "/console/quarantine/replay-all", label: visitor.t("replayAll"), buttonID: "replay-all")
                + (visitor.session == nil ? templates.render("note", ["text": visitor.t("loginNeeded")]) : ""))
    }

    /// Listings show the redacted reason: the full one may quote personal values.
    func quarantineTable(_ visitor: Visitor, id: String, title: String, entries: [QuarantineEntry]) -> Table {
        let rows = entries.map { entry in
            Row(cells: [
                Cell("\(entry.id)", href: "/console/quarantine/\(entry.id)"), Cell(entry.receivedAt.rfc3339), Cell(entry.deviceID ?? "-"),
                Cell(entry.driver), Cell(entry.redactedReason ?? entry.reason),
                state(visitor, entry),
            ])
        }
        return Table(id: id, title: title, headers: ["id", "receivedAt", "device", "driver", "reason", "state"].map(visitor.t), rows: rows)
    }

    /// Waiting, replayed, or discarded with by whom and why (the discard reason is the operator's
    /// own words, shown as written).
    func state(_ visitor: Visitor, _ entry: QuarantineEntry) -> Cell {
        if let discarded = entry.discarded {
            return Cell("\(visitor.t("discarded")) \(discarded.at.rfc3339) (\(discarded.by)): \(discarded.reason)", cls: "state-down")
        }
        if let replayedAt = entry.replayedAt { return Cell("\(visitor.t("replayed")) \(replayedAt.rfc3339)", cls: "state-up") }
        return Cell(visitor.t("waiting"), cls: "state-waiting")
    }

    /// One entry. The decoded payload and the full reason are shown only to a logged-in user:
    /// they are kept sealed on disk because they may hold plates, cards or names in clear.
    func quarantineEntry(_ visitor: Visitor, entry: QuarantineEntry) -> PageBody {
        let loggedIn = visitor.session != nil
        var fields = [
            Field(id: "received", label: visitor.t("receivedAt"), value: entry.receivedAt.rfc3339),
            Field(id: "device", label: visitor.t("device"), value: entry.deviceID ?? "-"),
            Field(id: "driver", label: visitor.t("driver"), value: entry.driver),
            Field(id: "route", label: visitor.t("route"), value: entry.route ?? "-"),
            Field(id: "remote", label: visitor.t("remote"), value: entry.remote ?? "-"),
            Field(id: "reason", label: visitor.t("reason"), value: loggedIn ? entry.reason : (entry.redactedReason ?? entry.reason)),
            Field(id: "bytes", label: visitor.t("bytes"), value: "\(entry.payloadBytes)"),
            Field(
                id: "state", label: visitor.t("state"),
                value: entry.replayedAt.map { "\(visitor.t("replayed")) \($0.rfc3339): \((entry.replayedEvents ?? []).joined(separator: ", "))" }
                    ?? state(visitor, entry).text),
        ]
        if let digest = entry.payloadSHA256 { fields.append(Field(id: "sha256", label: visitor.t("sha256"), value: digest)) }
        if let keyID = entry.keyID { fields.append(Field(id: "key", label: visitor.t("sealedUnder"), value: keyID)) }
        var payload: [String: Any] = ["title": visitor.t("payload")]
        if entry.discarded != nil {
            payload["hidden"] = visitor.t("payloadErased")
        } else if !loggedIn {
            payload["hidden"] = visitor.t("payloadHidden")
        } else if let unreadable = entry.unreadable {
            payload["hidden"] = unreadable
        } else {
            payload["text"] = String(data: entry.payload, encoding: .utf8) ?? entry.payload.base64EncodedString()
        }
        var actions = ""
        if entry.isWaiting {
            actions = actionForm(visitor, action: "/console/quarantine/\(entry.id)/replay", label: visitor.t("replay"), buttonID: "replay")
                + templates.render("discard-form", ["t": visitor.words, "id": entry.id, "csrf": visitor.session?.csrfToken ?? ""] as [String: Any])
        }
        var tester = loggedIn && entry.discarded == nil ? "<p><a id=\"test-with-profile\" href=\"/console/profiles/test?quarantine=\(entry.id)\">\(visitor.t("testWithProfile"))</a></p>" : ""
        if let device = entry.deviceID, !entry.driver.hasPrefix("sink:"), entry.discarded == nil {
            tester += templates.render(
                "scaffold-form", ["t": visitor.words, "device": device, "csrf": visitor.session?.csrfToken ?? ""] as [String: Any])
        }
        return PageBody(
            title: "\(visitor.t("quarantine")) #\(entry.id)", cards: [Card(title: "#\(entry.id)", fields: fields)],
            before: actions + tester, after: templates.render("payload", payload))
    }
}
