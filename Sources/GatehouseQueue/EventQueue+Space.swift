import GRDB
import Logging
import Synchronization

/// How the queue file gives space back.
///
/// Queues are kept with `auto_vacuum = NONE`. INCREMENTAL (queues before 0.10) keeps pointer-map
/// pages that change with every page a commit allocates or frees, and deleting delivered events
/// between inserts did both in most commits: about one page in ten the queue wrote. Without it, pages
/// freed by deliveries go to the free list and new events reuse them, so the file stays near the
/// size of the largest backlog it held (the disk budget counts the events and quarantine kept, not
/// the file, and the budget bounds that backlog). The file is rewritten smaller (`VACUUM`) when many
/// pages are free and little is kept, which is when a rewrite is short: after a backlog has drained.
/// A queue still in INCREMENTAL is converted by the same rewrite, at open or later once it is small
/// enough; until then it keeps returning pages incrementally as before.
extension EventQueue {
    struct CompactionLimits {
        /// Free pages worth a rewrite.
        var freeBytes: Int64 = 64 << 20
        /// The most kept content a rewrite may copy (it holds the writer meanwhile).
        var keptBytes: Int64 = 32 << 20
    }

    /// Rewrites the file when `limits` allow it (see above), converting an INCREMENTAL queue; on the
    /// writer, outside a transaction. Returns what it did, for the log.
    func compactIfWorthIt(_ db: Database) throws -> String? {
        let limits = compactionLimits.withLock { $0 }
        let autoVacuum = try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") ?? 0
        let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
        let free = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
        let pageSize = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
        let kept = (pages - free) * pageSize
        guard kept <= limits.keptBytes else {
            if autoVacuum == 2 { try db.execute(sql: "PRAGMA incremental_vacuum(2048)") }
            return nil
        }
        guard autoVacuum != 0 || free * pageSize >= limits.freeBytes else { return nil }
        try db.execute(sql: "PRAGMA auto_vacuum = NONE")
        try db.execute(sql: "VACUUM")
        return "queue file rewritten (\(kept) bytes kept, \(free * pageSize) free bytes returned\(autoVacuum != 0 ? ", auto_vacuum turned off" : ""))"
    }

    /// `compactIfWorthIt` at open: a failure (no room for the rewrite) is logged, not fatal.
    func compactAtOpen() {
        do {
            if let done = try pool.writeWithoutTransaction({ db in try compactIfWorthIt(db) }) { logger.notice("\(done)") }
        } catch {
            logger.warning("could not rewrite the queue file at open; it keeps working as it is", metadata: ["error": "\(error)"])
        }
    }
}
