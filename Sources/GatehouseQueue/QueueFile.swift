import Foundation
import GRDB
import GatehouseCore

/// What the queue checks before it writes to a file: that it is a SQLite database, that the
/// database is a Gatehouse queue, and that no newer version wrote it. A file that fails is
/// refused before any byte of it changes (it is only opened read-only), and every refusal names
/// the path and what to do.
enum QueueFile {
    /// `PRAGMA application_id` of queues created since 0.9 ("GHQ1"); older queues have 0 and are
    /// recognised by their tables.
    static let applicationID: Int32 = 0x4748_5131
    static let sqliteHeader = Array("SQLite format 3\0".utf8)

    /// Throws a `QueueOpenError` for anything at `path` the queue must not write to. A missing
    /// or empty file passes: the queue creates it.
    static func inspect(path: String, knownMigrations: [String]) throws {
        let moveAway = "move it away (the daemon then starts an empty queue) or set state_directory to another directory"
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return }
        if isDirectory.boolValue { throw QueueOpenError(description: "queue \(path) is a directory, not a file; \(moveAway)") }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw QueueOpenError(
                description: "cannot read queue \(path): \(String(cString: strerror(errno))); run gatehouse as the user that owns it "
                    + "(e.g. sudo -u gatehouse) or give that user read and write access")
        }
        let header = (try? handle.read(upToCount: sqliteHeader.count)) ?? nil
        try? handle.close()
        guard let header, !header.isEmpty else { return }
        guard Array(header) == sqliteHeader else {
            throw QueueOpenError(description: "queue \(path) is not a SQLite database; \(moveAway)")
        }
        let headerApplicationID = try applicationIDInHeader(path)
        var configuration = Configuration()
        configuration.readonly = true
        let found: (applicationID: Int32, tables: Set<String>, migrations: [String])
        do {
            let reader = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? reader.close() }
            found = try reader.read { db in
                let id = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
                let tables = Set(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"))
                let migrations = tables.contains("grdb_migrations") ? try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") : []
                return (id, tables, migrations)
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_READONLY && headerApplicationID == applicationID {
            // A hot journal or a WAL to recover (a power cut): only a writer can bring the file back,
            // and the header already says it is a queue. The schema version is checked again before migrating.
            return
        } catch {
            throw openError(path: path, error)
        }
        if found.tables.isEmpty { return }
        let ours = found.applicationID == applicationID
            || (found.applicationID == 0 && found.tables.isSuperset(of: ["events", "counters", "grdb_migrations"]))
        guard ours else {
            let listed = found.tables.sorted().prefix(5).joined(separator: ", ")
            throw QueueOpenError(
                description: "\(path) is a SQLite database but not a Gatehouse queue (application_id \(found.applicationID), "
                    + "tables \(listed)); it was left unchanged: \(moveAway)")
        }
        try refuseNewer(path: path, applied: found.migrations, known: knownMigrations)
    }

    /// Creates an empty queue file marked as ours, atomically: it is prepared under a temporary
    /// name, synced and renamed into place, so a power cut leaves either no queue or a marked one.
    static func create(path: String) throws {
        let creating = path + ".creating"
        for leftover in [creating, creating + "-journal"] { try? FileManager.default.removeItem(atPath: leftover) }
        let queue = try DatabaseQueue(path: creating)
        // auto_vacuum stays NONE: its pointer-map pages were written in most commits (EventQueue+Space).
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA application_id = \(applicationID)")
        }
        try queue.close()
        guard rename(creating, path) == 0 else {
            throw QueueOpenError(description: "cannot create queue \(path): rename failed: \(String(cString: strerror(errno)))")
        }
        // SQLite syncs the directory when it creates a WAL or journal, not for the database file itself.
        try DurableDirectory.sync((path as NSString).deletingLastPathComponent)
    }

    /// The application id in bytes 68-71 of the database header (big-endian).
    static func applicationIDInHeader(_ path: String) throws -> Int32 {
        guard let handle = FileHandle(forReadingAtPath: path) else { return 0 }
        defer { try? handle.close() }
        let bytes = Array((try? handle.read(upToCount: 72)) ?? Data())
        guard bytes.count == 72 else { return 0 }
        return bytes[68..<72].reduce(Int32(0)) { ($0 << 8) | Int32($1) }
    }

    /// Refuses a queue whose schema has migrations this version does not know (a newer version wrote it).
    static func refuseNewer(path: String, applied: [String], known: [String]) throws {
        let unknown = applied.filter { !known.contains($0) }
        guard unknown.isEmpty else {
            throw QueueOpenError(
                description: "queue \(path) was written by a newer Gatehouse (schema version \(unknown.joined(separator: ", ")); "
                    + "this is \(GatehouseVersion.current), which knows up to \(known.last ?? "none")); it was left unchanged: "
                    + "run the newer version, or move it away (the daemon then starts an empty queue; its events would then not be forwarded)")
        }
    }

    /// A `QueueOpenError` naming `path` and the remedy for an error SQLite or the file system gave.
    static func openError(path: String, _ error: any Error) -> QueueOpenError {
        if let error = error as? QueueOpenError { return error }
        if let error = error as? DurableDirectory.Failure { return QueueOpenError(description: "queue \(path): \(error.description)") }
        let directory = (path as NSString).deletingLastPathComponent
        let access = "give the user running gatehouse read and write access to \(directory) and the files in it "
            + "(the systemd unit's StateDirectory= does this), or run gatehouse as the user that owns them"
        guard let database = error as? DatabaseError else {
            return QueueOpenError(description: "cannot open queue \(path): \(error)")
        }
        let message = database.message ?? "\(database.resultCode)"
        switch database.resultCode {
        case .SQLITE_READONLY:
            return QueueOpenError(description: "queue \(path) is read-only (\(message)); \(access)")
        case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_AUTH:
            return QueueOpenError(description: "cannot open queue \(path) (\(message)); \(access)")
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return QueueOpenError(
                description: "queue \(path) is damaged or not a database (\(message)); move it away (the daemon then starts an empty queue) "
                    + "and keep the copy for inspection")
        case .SQLITE_FULL:
            return QueueOpenError(description: "cannot open queue \(path): the file system is full (\(message)); free space in \(directory)")
        default:
            return QueueOpenError(description: "cannot open queue \(path): \(message)")
        }
    }
}
