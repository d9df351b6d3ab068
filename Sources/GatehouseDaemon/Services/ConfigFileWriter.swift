import Foundation
import GatehouseCore

/// Writes a change the console asked for into the config file the daemon runs from: the text
/// is edited minimally (`DeviceOptionEdit`), the whole result is checked with the daemon's own
/// loader from a temporary file beside the original, the original is kept as `<file>.bak`, and
/// the new file replaces it by rename, so a reader never sees half a file.
struct ConfigFileWriter: Sendable {
    let path: String

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Why the daemon could not write the file now; nil when it can.
    var problem: String? {
        let directory = (path as NSString).deletingLastPathComponent
        let manager = FileManager.default
        if !manager.isWritableFile(atPath: path) { return "the config file \(path) is not writable by the daemon" }
        if !manager.isWritableFile(atPath: directory.isEmpty ? "." : directory) {
            return "the config file's folder \(directory) is not writable by the daemon (the new file is written beside it, then renamed)"
        }
        return nil
    }

    /// Sets `options.profile` of `device`; returns the backup's path. Nothing is written when
    /// the result would not load: the thrown message then lists the loader's findings.
    func activate(profile: String, device: String) throws -> String {
        if let problem { throw Failure(description: problem) }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw Failure(description: "cannot read the config file \(path)")
        }
        let edited = try DeviceOptionEdit.activate(profile: profile, device: device, in: text)
        let directory = (path as NSString).deletingLastPathComponent
        let candidate = (directory as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).console-\(UUID().uuidString.prefix(8))")
        let manager = FileManager.default
        var attributes: [FileAttributeKey: Any] = [:]
        if let permissions = try? manager.attributesOfItem(atPath: path)[.posixPermissions] { attributes[.posixPermissions] = permissions }
        guard manager.createFile(atPath: candidate, contents: Data(edited.utf8), attributes: attributes) else {
            throw Failure(description: "cannot write \(candidate)")
        }
        do {
            _ = try GatehouseDaemon.loadConfig(path: candidate)
        } catch {
            try? manager.removeItem(atPath: candidate)
            let findings = error.diagnostics.map { $0.description.replacingOccurrences(of: candidate, with: path) }
            throw Failure(description: "the config would not load with this change, so nothing was written:\n" + findings.joined(separator: "\n"))
        }
        let backup = path + ".bak"
        do {
            try data.write(to: URL(fileURLWithPath: backup), options: .atomic)
        } catch {
            try? manager.removeItem(atPath: candidate)
            throw Failure(description: "cannot keep a backup at \(backup): \(error)")
        }
        guard rename(candidate, path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? manager.removeItem(atPath: candidate)
            throw Failure(description: "cannot replace \(path): \(reason)")
        }
        return backup
    }
}
