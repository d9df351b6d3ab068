import Foundation
import GatehouseCore
import Synchronization

/// Writes a change the console asked for into the config file the daemon runs from: the text
/// is edited minimally (`DeviceOptionEdit`), the whole result is checked with the daemon's own
/// loader from a temporary file beside the original, the original is kept as `<file>.bak`, and
/// the new file replaces it by rename, so a reader never sees half a file. Both files are fsynced
/// before the rename and the folder after it: a power cut right after a change leaves the old
/// config or the new one, never an empty file the daemon cannot start from. Changes are made one
/// at a time, so two users activating at once cannot lose one of the edits.
final class ConfigFileWriter: Sendable {
    let path: String
    private let edits = Mutex(())

    init(path: String) {
        self.path = path
    }

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
        try edits.withLock { _ in try edit { try DeviceOptionEdit.activate(profile: profile, device: device, in: $0) } }
    }

    private func edit(_ change: (String) throws -> String) throws -> String {
        if let problem { throw Failure(description: problem) }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw Failure(description: "cannot read the config file \(path)")
        }
        let edited = try change(text)
        let directory = (path as NSString).deletingLastPathComponent
        let candidate = (directory as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).console-\(UUID().uuidString.prefix(8))")
        let manager = FileManager.default
        let permissions = ((try? manager.attributesOfItem(atPath: path)[.posixPermissions]) as? NSNumber).map { mode_t($0.uint16Value) } ?? 0o640
        do {
            try DurableFile.write(Array(edited.utf8), to: candidate, permissions: permissions)
        } catch {
            try? manager.removeItem(atPath: candidate)
            throw Failure(description: error.description)
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
            try DurableFile.replace(backup, with: data, permissions: permissions)
        } catch {
            try? manager.removeItem(atPath: candidate)
            throw Failure(description: "cannot keep a backup at \(backup): \(error)")
        }
        do {
            try DurableFile.rename(candidate, over: path)
        } catch {
            try? manager.removeItem(atPath: candidate)
            throw Failure(description: "cannot replace \(path): \(error)")
        }
        return backup
    }
}
