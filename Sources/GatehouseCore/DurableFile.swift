import Foundation

/// Files that survive a power cut whole: written and fsynced before they are renamed into place,
/// and the folder fsynced after, so a reader finds the old file or the new one, never an empty or
/// half-written one (Foundation's `atomically:` renames without either fsync).
public enum DurableFile {
    /// Creates (or truncates) `path` with `bytes` and fsyncs it.
    public static func write(_ bytes: some ContiguousBytes, to path: String, permissions: mode_t = 0o640) throws(DurableDirectory.Failure) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, permissions)
        guard fd >= 0 else { throw failure("cannot create", path) }
        defer { close(fd) }
        let complete = bytes.withUnsafeBytes { buffer -> Bool in
            var written = 0
            while written < buffer.count {
                let n = Foundation.write(fd, buffer.baseAddress.map { $0 + written }, buffer.count - written)
                if n < 0, errno == EINTR { continue }
                if n <= 0 { return false }
                written += n
            }
            return true
        }
        guard complete else { throw failure("cannot write", path) }
        guard fsync(fd) == 0 else { throw failure("cannot sync", path) }
    }

    /// Replaces `path` by `bytes`: a temporary file beside it, fsynced, renamed over it, and the
    /// folder fsynced.
    public static func replace(_ path: String, with bytes: some ContiguousBytes, permissions: mode_t = 0o640) throws(DurableDirectory.Failure) {
        let temporary = path + ".tmp-\(UUID().uuidString.prefix(8))"
        do {
            try write(bytes, to: temporary, permissions: permissions)
            try rename(temporary, over: path)
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// Renames `source` over `path` and fsyncs the folder that lists it.
    public static func rename(_ source: String, over path: String) throws(DurableDirectory.Failure) {
        guard Foundation.rename(source, path) == 0 else { throw failure("cannot rename \(source) to", path) }
        try DurableDirectory.sync((path as NSString).deletingLastPathComponent)
    }

    private static func failure(_ what: String, _ path: String) -> DurableDirectory.Failure {
        DurableDirectory.Failure(description: "\(what) \(path): \(String(cString: strerror(errno)))")
    }
}
