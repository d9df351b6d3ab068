import Foundation
import GatehouseCore

/// Writes a draft profile folder from captured payloads (`gatehouse adapters scaffold`):
/// `profile.yaml` (loads with the engine; guesses marked `# GUESS:`), `README.md` (the field
/// inventory) and `samples/<n>.<ext>` with `<n>.meta.yaml`.
public struct ProfileScaffold: Sendable {
    public var name: String
    public var deviceID: String
    public var timeZone: String?
    public var payloads: [CapturedPayload]
    public var inventory: FieldInventory

    public init(name: String, deviceID: String, timeZone: String? = nil, payloads: [CapturedPayload]) {
        self.name = name
        self.deviceID = deviceID
        self.timeZone = timeZone
        // Guessed from the clear values, then everything written or printed is redacted.
        let clear = FieldInventory.build(payloads)
        let redactor = SampleRedactor(inventory: clear, allValues: clear.distinctValues)
        var inventory = clear
        inventory.distinctValues = [:]
        for index in inventory.fields.indices {
            inventory.fields[index].values = inventory.fields[index].values.map(redactor.redact)
            inventory.fields[index].why = inventory.fields[index].why.map(redactor.redact)
        }
        inventory.failures = inventory.failures.mapValues { ValueRedactor.redactText(redactor.redact($0)) }
        self.inventory = inventory
        self.payloads = payloads.map { payload in
            var redacted = payload
            redacted.body = redactor.redact(payload.body)
            return redacted
        }
        self.redactions = redactor.replacements.count
    }

    /// How many distinct personal values were replaced in the samples and texts.
    public var redactions = 0

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Writes the folder; refuses to overwrite an existing profile.yaml. Returns the files written.
    @discardableResult
    public func write(to directory: String) throws(Failure) -> [String] {
        let fm = FileManager.default
        let profilePath = (directory as NSString).appendingPathComponent(ProfileLoader.fileName)
        guard !fm.fileExists(atPath: profilePath) else {
            throw Failure(description: "\(profilePath) exists; scaffold writes only into a new or empty folder (choose another OUT_DIR)")
        }
        var written: [String] = []
        do {
            let samples = (directory as NSString).appendingPathComponent("samples")
            try fm.createDirectory(atPath: samples, withIntermediateDirectories: true)
            for (index, payload) in payloads.enumerated() {
                let base = (samples as NSString).appendingPathComponent(String(format: "%03d", index + 1))
                let file = base + "." + Self.fileExtension(payload)
                try Data(payload.body).write(to: URL(fileURLWithPath: file))
                try meta(payload).write(toFile: base + ".meta.yaml", atomically: true, encoding: .utf8)
                written += [file, base + ".meta.yaml"]
            }
            try profileYAML().write(toFile: profilePath, atomically: true, encoding: .utf8)
            let readme = (directory as NSString).appendingPathComponent("README.md")
            try readmeText().write(toFile: readme, atomically: true, encoding: .utf8)
            written += [profilePath, readme]
        } catch {
            throw Failure(description: "cannot write the draft under \(directory): \(error.localizedDescription)")
        }
        return written
    }

    static func fileExtension(_ payload: CapturedPayload) -> String {
        let format = BodyDecoder.resolve(.auto, contentType: payload.contentType, body: payload.body)
        switch format {
        case .json: return BodyDecoder.sniff(payload.body) == .json ? "json" : "bin"
        case .xml: return "xml"
        case .form: return "form"
        case .multipart, .auto: return "bin"
        }
    }

    static func quoted(_ text: String) -> String { JSONValue.string(text).jsonText }

    func meta(_ payload: CapturedPayload) -> String {
        var lines = ["# captured from device \(deviceID)\(payload.quarantineID.map { ", quarantine entry \($0)" } ?? "")"]
        if let type = payload.contentType { lines.append("content_type: \(Self.quoted(type))") }
        if let route = payload.route { lines.append("route: \(Self.quoted(route))") }
        if let at = payload.receivedAt { lines.append("received_at: \(Self.quoted(at))") }
        lines.append("device:")
        lines.append("  id: \(Self.quoted(deviceID))")
        if let timeZone { lines.append("  time_zone: \(Self.quoted(timeZone))") }
        return lines.joined(separator: "\n") + "\n"
    }

    func guessComment(_ field: InventoryField) -> String {
        "  # GUESS: \(field.role?.rawValue ?? "field") — \(field.why ?? "")"
    }

    public func profileYAML() -> String {
        let fields = inventory.fields
        let vendor = name.split(separator: "-").first.map(String.init) ?? name
        var y: [String] = [
            "# DRAFT written by `gatehouse adapters scaffold` from \(payloads.count) payload(s) captured from device \(deviceID).",
            "# Every line marked GUESS is a guess from field names and values: check it against README.md",
            "# and the samples, then run `gatehouse adapters test \(name) --write-missing`, review expected/,",
            "# and switch the device to `options: {profile: \(name)}` (docs/profiles.md).",
            "format: 1",
            "name: \(name)",
            "vendor: \(vendor)",
            "summary: \(Self.quoted("draft from payloads captured from \(deviceID)"))",
            "",
        ]
        let types = Set(payloads.compactMap { $0.contentType?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } })
        y.append("match:")
        if types.isEmpty {
            y.append("  content_types: []")
        } else {
            y.append("  content_types: [\(types.sorted().map(Self.quoted).joined(separator: ", "))]   # GUESS: the Content-Types captured")
        }
        // A top-level key present in every payload makes a good `require`.
        let tops = Set(fields.filter { $0.presentIn == payloads.count - inventory.failures.count }.compactMap {
            $0.path.split(separator: ".").first.map { String($0.split(separator: "[").first ?? $0) }
        })
        if inventory.format != .form, inventory.format != .multipart, tops.count == 1, let top = tops.first {
            y.append("  require: [\(Self.quoted(top))]   # GUESS: the top-level key every payload had")
        }
        y.append("")
        y.append("body:")
        y.append("  format: \(inventory.format.rawValue)")
        y.append("  charset: \(inventory.charset.rawValue)")
        y.append("")
        if let serial = inventory.first(.deviceSerial) {
            y.append("device:")
            y.append("  by: serial   # GUESS: \(serial.why ?? ""); set the device's serial: to it")
            y.append("  field: \(Self.quoted(serial.path))")
        } else {
            y.append("device:")
            y.append("  by: path   # no serial found: push to /v1/push/\(name)/<device id>")
        }
        y.append("")
        var tables: [String] = []
        y.append("event:")
        y.append("  kind: {const: vehicle.detected}   # GUESS: every payload is a plate read; use a table on an event-type field if not")
        if let plate = inventory.first(.plate) {
            y.append("  plate: \(Self.quoted(plate.path))")
            y.append(guessComment(plate))
        }
        let times = fields.filter { $0.role == .time }
        if !times.isEmpty {
            y.append("  time:")
            for time in times.prefix(2) {
                y.append("    - {path: \(Self.quoted(time.path)), format: \(time.timeFormat ?? "local")}")
                y.append("  " + guessComment(time))
            }
        }
        if let lane = inventory.first(.lane) {
            y.append("  point: \(Self.quoted(lane.path))")
            y.append(guessComment(lane))
        }
        var attributes: [String] = []
        if let direction = inventory.first(.direction) {
            let known = direction.values.compactMap { value -> String? in
                switch value.lowercased() {
                case "in", "entry", "enter", "进", "入", "进场": "    \(Self.quoted(value)): in"
                case "out", "exit", "leave", "出", "出场": "    \(Self.quoted(value)): out"
                default: nil
                }
            }
            if known.count == direction.values.count, !known.isEmpty {
                tables.append("  direction:")
                tables += known
                y.append("  direction: {path: \(Self.quoted(direction.path)), lookup: direction}")
                y.append(guessComment(direction))
            } else {
                // Codes whose meaning is unknown stay an attribute until a person maps them.
                attributes.append("    directionCode: \(Self.quoted(direction.path))")
                attributes.append("  " + guessComment(direction) + "; map the codes (\(direction.values.joined(separator: ", "))) to in/out with a table and move to event.direction")
            }
        }
        let record = inventory.first(.recordID)
        if let record {
            attributes.append("    recordId: \(Self.quoted(record.path))")
            attributes.append("  " + guessComment(record))
        }
        if inventory.format == .multipart {
            attributes.append("    images: $images.count")
        }
        if !attributes.isEmpty {
            y.append("  attributes:")
            y += attributes
        }
        if let record {
            let serial = inventory.first(.deviceSerial).map { "${\($0.path)}:" } ?? "${$device.id}:"
            y.append("  dedup: {template: \(Self.quoted(serial + "${\(record.path)}"))}   # GUESS: a retried payload repeats its record id")
        }
        if !tables.isEmpty {
            y.append("")
            y.append("tables:")
            y += tables
        }
        y.append("")
        y.append("replies:")
        y.append("  # GUESS: the generic success the capture route sent; replace with what the device's manual asks for.")
        y.append("  - body: '{\"result\":\"ok\"}'")
        return y.joined(separator: "\n") + "\n"
    }

    public func readmeText() -> String {
        var r: [String] = [
            "# \(name) (draft)",
            "",
            "Scaffolded by `gatehouse adapters scaffold --from-quarantine \(deviceID)` from \(payloads.count) captured payload(s)",
            "(format \(inventory.format.rawValue), charset \(inventory.charset.rawValue)). Nothing here is verified: the roles",
            "are guesses from field names and values. Finish `profile.yaml`, then run",
            "`gatehouse adapters test \(name) --write-missing`, review `expected/`, and replay the captured payloads",
            "with `gatehouse quarantine replay` once the device has `options: {profile: \(name)}`.",
            "",
            "Personal values (\(redactions): plates, card and phone numbers, names, id numbers) were replaced in the samples",
            "and below by stand-ins of the same shape (a plate keeps its province character); the clear payloads stay",
            "sealed in quarantine, and the replay maps those.",
            "",
            "## Field inventory",
            "",
            "| field | guessed role | present in | distinct values (up to \(FieldInventory.valuesKept)) |",
            "| --- | --- | --- | --- |",
        ]
        for field in inventory.fields {
            let values = field.values.map { "`\($0.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ").prefix(60))`" }
            let more = field.distinctCount > field.values.count ? " … (\(field.distinctCount) distinct)" : ""
            let role = field.role.map { "**\($0.rawValue)** (guess: \(field.why ?? ""))" } ?? ""
            r.append("| `\(field.path)` | \(role) | \(field.presentIn)/\(payloads.count) | \(values.joined(separator: ", "))\(more) |")
        }
        if !inventory.failures.isEmpty {
            r.append("")
            r.append("## Payloads that did not decode")
            r.append("")
            for (index, reason) in inventory.failures.sorted(by: { $0.key < $1.key }) {
                r.append("- sample \(String(format: "%03d", index + 1)): \(reason)")
            }
        }
        return r.joined(separator: "\n") + "\n"
    }
}
