import Foundation

/// Directory entries made durable: a new file or directory survives a power cut only once the
/// directory that lists it is fsynced, which neither `FileManager` nor SQLite (for the main
/// database file) does.
public enum DurableDirectory {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Creates `path` and any missing parents, fsyncing the parent of each directory it created.
    public static func create(_ path: String) throws(Failure) {
        var missing: [String] = []
        var current = (path as NSString).standardizingPath
        var isDirectory: ObjCBool = false
        while !current.isEmpty, current != "/", !FileManager.default.fileExists(atPath: current, isDirectory: &isDirectory) {
            missing.append(current)
            current = (current as NSString).deletingLastPathComponent
        }
        guard !missing.isEmpty else { return }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            let parent = (missing.last.map { ($0 as NSString).deletingLastPathComponent }) ?? path
            throw Failure(
                description: "cannot create directory \(path): \(error.localizedDescription); create it owned by the user running gatehouse "
                    + "(the systemd unit's StateDirectory= does this) or make \(parent) writable for that user")
        }
        for created in missing.reversed() { try sync((created as NSString).deletingLastPathComponent) }
    }

    /// fsyncs the directory at `path`, so that entries created or renamed in it are on disk.
    public static func sync(_ path: String) throws(Failure) {
        let fd = open(path.isEmpty ? "." : path, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { throw Failure(description: "cannot open directory \(path) to sync it: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw Failure(description: "cannot sync directory \(path): \(String(cString: strerror(errno)))") }
    }
}
