import Foundation
import GatehouseCore
import GatehouseProfiles
import Logging

/// Editing a profile's profile.yaml and activating a profile for a device, from the pages. A
/// profile is written only when the profile loader takes it; the config only through the
/// daemon's writer, which checks the whole file with the daemon's loader first.
extension WebConsole {
    /// The folder of profile `name` under the adapters directory; nil for a name that could
    /// leave it or a profile that is not there.
    func profileFolder(_ name: String) -> String? {
        guard Self.isProfileName(name) else { return nil }
        let folder = (backend.adaptersDirectory() as NSString).appendingPathComponent(name)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else { return nil }
        return folder
    }

    static func isProfileName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    /// One profile: its profile.yaml in an editor (saving needs a login), the loader's findings,
    /// and the form that activates it for a device.
    func profileEditor(_ visitor: Visitor, name: String, text: String? = nil, findings: [ConfigDiagnostic] = []) async throws -> PageBody? {
        guard let folder = profileFolder(name) else { return nil }
        let file = (folder as NSString).appendingPathComponent(ProfileLoader.fileName)
        let shown = text ?? (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        let devices = try await statusCache.status().devices.map(\.id)
        var context: [String: Any] = [
            "t": visitor.words, "name": name, "file": file, "text": shown, "csrf": visitor.session?.csrfToken ?? "",
            "devices": devices.map { Choice(name: $0, selected: false) },
        ]
        if let problem = backend.configFileProblem() { context["configProblem"] = problem }
        let rows = findings.map { diagnostic in
            Row(cells: [Cell("\(diagnostic.file):\(diagnostic.line)"), Cell(diagnostic.key), Cell(diagnostic.message, cls: "state-down")])
        }
        return PageBody(
            title: "\(visitor.t("profile")) \(name)",
            tables: findings.isEmpty ? [] : [Table(id: "profile-findings", title: visitor.t("profileErrors"), headers: ["file", "key", "reason"].map(visitor.t), rows: rows)],
            before: templates.render("profile-editor", context))
    }

    /// Writes profile.yaml when the loader takes the text; otherwise shows its findings (file,
    /// line, key) and writes nothing.
    func saveProfile(_ visitor: Visitor, name: String, text: String, user: String) async throws -> (PageBody, Flash, Bool)? {
        guard let folder = profileFolder(name) else { return nil }
        let file = (folder as NSString).appendingPathComponent(ProfileLoader.fileName)
        let metadata: Logger.Metadata = ["console.user": "\(user)", "console.action": "edit profile", "profile": "\(name)"]
        // Browsers send CR LF from a textarea; the file keeps the repository's LF.
        let text = text.replacingOccurrences(of: "\r\n", with: "\n")
        do {
            _ = try ProfileLoader.parse(text, file: file, directory: folder)
        } catch {
            logger.notice("console: \(user) edited profile \(name): not saved, \(error.diagnostics.count) finding(s)", metadata: metadata)
            let body = try await profileEditor(visitor, name: name, text: text, findings: error.diagnostics)
            return body.map { ($0, Flash(text: "\(visitor.t("notSaved")): \(error.diagnostics.count)", isError: true), false) }
        }
        do {
            // Durably: a power cut right after saving leaves the old profile or the new one.
            let permissions = ((try? FileManager.default.attributesOfItem(atPath: file)[.posixPermissions]) as? NSNumber).map { mode_t($0.uint16Value) }
            try DurableFile.replace(file, with: Array(text.utf8), permissions: permissions ?? 0o644)
        } catch {
            logger.warning("console: \(user) edited profile \(name): cannot write \(file): \(error)", metadata: metadata)
            let body = try await profileEditor(visitor, name: name, text: text)
            return body.map { ($0, Flash(text: "\(file): \(error)", isError: true), false) }
        }
        logger.notice("console: \(user) saved profile \(name) (\(text.utf8.count) bytes) to \(file)", metadata: metadata)
        let body = try await profileEditor(visitor, name: name)
        return body.map { ($0, Flash(text: "\(visitor.t("saved")): \(file)", isError: false), true) }
    }
}
