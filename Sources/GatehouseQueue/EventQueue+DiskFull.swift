import Foundation
import GRDB
import GatehouseCore

/// A full file system is a state of the queue, not a failure (docs/operations.md, "Disk full").
///
/// When SQLite reports SQLITE_FULL, the queue removes its reserve file (space set aside while
/// there was room) so that sinks can still record deliveries and delete what they delivered,
/// and refuses appends at once — without touching the database — until there is room again:
/// the reserve can be set aside with as much again left free, or deliveries freed at least as much inside the database file
/// (the reserve is then set aside again once the file system has room). Nothing acknowledged is
/// lost: a commit that failed was never acknowledged.
extension EventQueue {
    /// Space kept aside beside the queue file (`<queue>.reserve`), given back when the file
    /// system fills so that deletes and cursor updates, which also write, can still commit.
    public static let reserveBytes: Int64 = 1 << 20

    struct DiskState {
        /// Set from the first SQLITE_FULL until the reserve could be set aside again.
        var fullSince: Timestamp?
        /// A delete ran while full: the next one also truncates the WAL, giving its space back.
        var compactPending = false
        /// The reserve file is not there (given back, or no room for it yet).
        var reserveMissing = true
        /// When setting the reserve aside was last tried while appends were accepted.
        var reserveTried: Timestamp?
    }

    var reservePath: String { path + ".reserve" }
    var directory: String {
        let directory = (path as NSString).deletingLastPathComponent
        return directory.isEmpty ? "." : directory
    }

    /// `disk full since …` while appends are refused for lack of space; nil otherwise.
    public var diskFullReason: String? {
        diskState.withLock { $0.fullSince }.map { "disk full since \($0.rfc3339): the file system holding \(directory) has no room; appends get 503" }
    }

    /// Whether `error` is SQLite's "database or disk is full".
    static func isDiskFull(_ error: any Error) -> Bool {
        if let error = error as? DatabaseError { return error.resultCode == .SQLITE_FULL }
        return error is QueueDiskFullError
    }

    /// Enters the disk-full state (once) and gives back the reserve; returns the error callers see.
    func noteDiskFull(_ error: any Error) -> QueueDiskFullError {
        let first = diskState.withLock { state -> Bool in
            defer { state.fullSince = state.fullSince ?? clock.now }
            state.compactPending = true
            return state.fullSince == nil
        }
        if first {
            try? FileManager.default.removeItem(atPath: reservePath)
            diskState.withLock { $0.reserveMissing = true }
            logger.error(
                "disk full: the file system holding the queue has no room; appends get 503 until space returns, deliveries continue",
                metadata: ["gatehouse.directory": "\(directory)", "error": "\(error)"])
        }
        return QueueDiskFullError(directory: directory)
    }

    /// Before an append: while full, throws without touching the database unless there is room
    /// again; while the reserve is missing, tries (at most every 10 s) to set it aside.
    func ensureSpace() async throws {
        let now = clock.now
        let (full, retryReserve) = diskState.withLock { state -> (Bool, Bool) in
            let due = state.reserveMissing && state.fullSince == nil && (state.reserveTried.map { now.seconds - $0.seconds >= 10 } ?? true)
            if due { state.reserveTried = now }
            return (state.fullSince != nil, due)
        }
        if retryReserve, setReserveAside() { diskState.withLock { $0.reserveMissing = false } }
        guard full else { return }
        // The reserve given back on entering the state is free space now, so its fitting again
        // proves nothing: room means the reserve fits with as much left over for appends.
        if (freeBytes() ?? 0) >= 2 * Self.reserveBytes, setReserveAside() {
            diskState.withLock { $0.reserveMissing = false }
        } else {
            // Deliveries deleted events: their pages are free inside the file, where appends go first.
            let freeInside = try? await pool.read { db -> Int64 in
                let pages = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
                return pages * (try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096)
            }
            guard let freeInside, freeInside >= Self.reserveBytes else { throw QueueDiskFullError(directory: directory) }
        }
        diskState.withLock { $0.fullSince = nil }
        logger.notice("disk space returned: the queue accepts appends again", metadata: ["gatehouse.directory": "\(directory)"])
    }

    /// Allocates the reserve file (really allocated, not sparse); false when there is no room.
    @discardableResult
    func setReserveAside() -> Bool {
        if let size = (try? FileManager.default.attributesOfItem(atPath: reservePath))?[.size] as? Int64, size >= Self.reserveBytes {
            return true
        }
        let fd = Glibc.open(reservePath, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        defer { _ = Glibc.close(fd) }
        guard posix_fallocate(fd, 0, off_t(Self.reserveBytes)) == 0, fsync(fd) == 0 else {
            _ = unlink(reservePath)
            return false
        }
        return true
    }

    /// After deletes while the file system was full: checkpoints and truncates the WAL, whose
    /// file otherwise keeps its largest size, so that the file system gets that space back
    /// (freed pages inside the database are reused by appends, or returned by `maintain()`: EventQueue+Space).
    func compactAfterDiskFull() async {
        guard diskState.withLock({ state in defer { state.compactPending = false }; return state.compactPending }) else { return }
        do {
            try await pool.writeWithoutTransaction { db in
                _ = try Row.fetchAll(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            }
        } catch {
            diskState.withLock { $0.compactPending = true }
            logger.warning("could not compact the queue after a full disk; will retry", metadata: ["error": "\(error)"])
        }
    }

    /// A warning when the disk budget is larger than what the file system can still give the
    /// queue (its free space plus what the queue already uses): the budget would never be
    /// reached, and the disk would fill first. Nil when the budget fits.
    public func budgetWarning(usedBytes: Int64) -> String? {
        guard let free = freeBytes() else { return nil }
        let budget = settingsSnapshot().budget
        guard budget > usedBytes + free else { return nil }
        return "disk_budget_bytes (\(budget) bytes) exceeds what the file system holding \(directory) can give the queue "
            + "(\(free) bytes free + \(usedBytes) used): the disk will fill before the budget evicts; lower the budget or free space"
    }

    /// What the file system holding the queue can still give an unprivileged writer.
    func freeBytes() -> Int64? {
        var fs = statvfs()
        guard statvfs(directory, &fs) == 0 else { return nil }
        return Int64(fs.f_bavail) * Int64(fs.f_frsize)
    }
}
