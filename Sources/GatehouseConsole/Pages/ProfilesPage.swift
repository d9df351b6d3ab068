import Foundation
import GatehouseCore
import GatehouseProfiles
import GatehouseQueue
import Hummingbird

extension WebConsole {
    /// Every profile under the adapters directory, and each one that does not load with its
    /// diagnostics (file, line, key), read fresh so a profile just edited shows as it is now.
    func profiles(_ visitor: Visitor) -> PageBody {
        let set = ProfileSet.load(directory: backend.adaptersDirectory())
        let loaded = set.profiles.values.sorted { $0.name < $1.name }.map { profile in
            Row(cells: [
                Cell(profile.name, href: "/console/profiles/\(profile.name)"), Cell(profile.vendor), Cell("\(VectorCase.all(in: profile.directory).count)"), Cell(profile.summary ?? ""),
            ])
        }
        let failures = set.failures.sorted { $0.key < $1.key }.flatMap { name, failure in
            failure.diagnostics.map { diagnostic in
                Row(cells: [
                    Cell(name, href: Self.isProfileName(name) ? "/console/profiles/\(name)" : nil, cls: "state-down"), Cell("\(diagnostic.file):\(diagnostic.line)"), Cell(diagnostic.key), Cell(diagnostic.message),
                ])
            }
        }
        return PageBody(
            title: visitor.t("profiles"),
            tables: [
                Table(id: "profiles", title: visitor.t("profiles"), headers: ["name", "vendor", "samples", "summary"].map(visitor.t), rows: loaded),
                Table(id: "profile-errors", title: visitor.t("profileErrors"), headers: ["name", "file", "key", "reason"].map(visitor.t), rows: failures),
            ],
            before: templates.render("note", ["text": "\(visitor.t("adaptersDirectory")): \(set.directory)"])
                + "<p><a id=\"profile-tester\" href=\"/console/profiles/test\">\(visitor.t("profileTester"))</a></p>")
    }

    /// The tester: a payload (pasted, or a quarantined one for a logged-in user) through a
    /// profile, showing the events and the reply the device would get. Nothing is stored.
    func profileTester(_ visitor: Visitor, form: [String: String]) async throws -> PageBody {
        let set = ProfileSet.load(directory: backend.adaptersDirectory())
        var payload = form["payload"] ?? ""
        var contentType = form["content_type"].flatMap { $0.isEmpty ? nil : $0 } ?? "application/json"
        var notes: [String] = []
        if let text = form["quarantine"], let id = Int64(text) {
            // A quarantined payload may hold personal data in clear: only for a logged-in user.
            if visitor.session == nil {
                notes.append(visitor.t("payloadHidden"))
            } else if let entry = try await backend.queue.quarantineEntry(id: id), entry.unreadable == nil {
                payload = String(data: entry.payload, encoding: .utf8) ?? ""
                contentType = entry.contentType ?? contentType
            }
        }
        let chosen = form["profile"] ?? ""
        let zoneName = form["time_zone"].flatMap { $0.isEmpty ? nil : $0 } ?? "Asia/Shanghai"
        var result: String?
        var resultIsError = false
        if !payload.isEmpty, let profile = set.profiles[chosen] {
            if let zone = TimeZone(identifier: zoneName) {
                let request = ProfileRequest(body: Array(payload.utf8), contentType: contentType, headers: ["content-type": contentType])
                let device = ProfileDevice(id: "console-test", serial: form["serial"].flatMap { $0.isEmpty ? nil : $0 }, timeZone: zone)
                let outcome = profile.process(request, device: device)
                switch outcome.events {
                case .success(let events):
                    result = VectorRunner.actual(outcome, events: events).prettyText
                case .failure(let error):
                    result = VectorRunner.quarantined(outcome, reason: error.reason).prettyText
                    resultIsError = true
                }
            } else {
                notes.append("\(visitor.t("timeZone")): \(zoneName)?")
            }
        } else if !payload.isEmpty {
            notes.append("\(visitor.t("profile")): \(chosen)?")
        }
        let formHTML = templates.render(
            "profile-tester",
            [
                "t": visitor.words, "payload": payload, "contentType": contentType, "timeZone": zoneName, "serial": form["serial"] ?? "",
                "profiles": set.profiles.keys.sorted().map { Choice(name: $0, selected: $0 == chosen) },
            ] as [String: Any])
        var output: [String: Any] = ["title": visitor.t(resultIsError ? "testQuarantined" : "testResult")]
        if let result { output["text"] = result }
        return PageBody(
            title: visitor.t("profileTester"),
            before: formHTML + notes.map { templates.render("note", ["text": $0]) }.joined(),
            after: result == nil ? "" : templates.render("payload", output).replacingOccurrences(of: "id=\"payload\"", with: "id=\"test-result\""))
    }
}

extension WebConsole {
    /// A draft profile folder from a device's captured (quarantined) payloads, as
    /// `gatehouse adapters scaffold --from-quarantine` writes it: samples with personal values
    /// replaced by stand-ins, a README inventory and a profile.yaml with its guesses marked.
    func scaffold(_ visitor: Visitor, device: String, name: String, user: String) async throws -> (PageBody, Flash) {
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            return (profiles(visitor), Flash(text: "\(visitor.t("profile")) '\(name)': \(visitor.t("profileNameRule"))", isError: true))
        }
        let entries = try await backend.queue.quarantineEntries(limit: 50, pendingOnly: true, deviceID: device)
            .filter { !$0.driver.hasPrefix("sink:") && $0.unreadable == nil }.reversed()
        guard !entries.isEmpty else {
            return (profiles(visitor), Flash(text: "\(device): \(visitor.t("noCaptured"))", isError: true))
        }
        let payloads = entries.map {
            CapturedPayload(body: Array($0.payload), contentType: $0.contentType, route: $0.route, receivedAt: $0.receivedAt.rfc3339, quarantineID: $0.id)
        }
        let draft = ProfileScaffold(name: name, deviceID: device, timeZone: backend.deviceTimeZone(device), payloads: payloads)
        let folder = (backend.adaptersDirectory() as NSString).appendingPathComponent(name)
        do {
            try draft.write(to: folder)
        } catch {
            logger.warning("console: \(user) could not scaffold profile \(name): \(error)", metadata: ["console.user": "\(user)", "console.action": "scaffold"])
            return (profiles(visitor), Flash(text: "\(error)", isError: true))
        }
        logger.notice(
            "console: \(user) scaffolded profile \(name) from \(payloads.count) payload(s) of device \(device) into \(folder)",
            metadata: ["console.user": "\(user)", "console.action": "scaffold"])
        var body = profiles(visitor)
        let profileText = (try? String(contentsOfFile: (folder as NSString).appendingPathComponent(ProfileLoader.fileName), encoding: .utf8)) ?? ""
        body.after += templates.render("payload", ["title": "\(folder)/\(ProfileLoader.fileName)", "text": profileText])
            .replacingOccurrences(of: "id=\"payload\"", with: "id=\"scaffolded\"")
        body.after += "<p><a id=\"edit-scaffolded\" href=\"/console/profiles/\(name)\">\(visitor.t("editProfile")) \(name)</a></p>"
        return (body, Flash(text: "\(visitor.t("scaffolded")): \(folder) (\(payloads.count), \(draft.redactions) \(visitor.t("redacted")))", isError: false))
    }
}
