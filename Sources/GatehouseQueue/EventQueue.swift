import Foundation
import GRDB
import GatehouseCore
import Logging
import Synchronization

/// The durable queue on the box: SQLite in WAL mode, the only hand-off between ingest and sinks.
///
/// Appends from many connections are committed together (group commit) by `run()`; a caller's
/// `append` returns only after its transaction is durable, so a device is acknowledged only
/// for what survives `kill -9` or a power cut.
public final class EventQueue: Sendable {
    /// Bytes counted per event row besides its body (rowid, columns, index entry).
    static let rowOverhead = 48

    public let path: String
    let pool: DatabasePool
    /// Seals quarantined payloads; every writer of the quarantine goes through it.
    let sealer: PayloadSealer
    let logger: Logger
    private let settings: Mutex<Settings>
    let pending = Mutex<PendingState>(PendingState())
    /// Requests inside `admitting`: counted from a pushed request's arrival, not from its append.
    private let requestsInFlight = Atomic<Int>(0)
    /// Wakes the group committer when an append is waiting or the queue is closed.
    private let committerWake = WakeUpSignal()
    private let subscribers = Mutex<[Int: WakeUpSignal]>([:])
    private let sinkCursors = Mutex<[String: [Int: Int64]]>([:])
    private let processStats = Mutex<(commits: Int64, events: Int64)>((0, 0))
    private let collisions = DedupCollisionLog()
    let recentDedup = RecentDedupKeys()
    private let evictionLog = IntervalSummary<Int>()
    let diskState = Mutex(DiskState())
    /// Running totals and the sequence (EventQueue+Totals).
    let totals = Mutex(Totals())
    /// When the file is rewritten smaller (EventQueue+Space); tests lower them.
    let compactionLimits = Mutex(CompactionLimits())
    /// Test hook: awaited before each group commit, so a test can hold the committer.
    let beforeCommit = Mutex<(@Sendable () async -> Void)?>(nil)
    /// Stamps receive times not given by the caller, cursor updates, replays and the dedup window.
    public let clock: any TimerClock

    struct Settings {
        var budgetBytes: Int64
        var commitMaxEvents: Int
        var quarantineMaxPayloadBytes: Int
        var dedupWindowHours: Double
        var maxWaitingAppends: Int
    }

    struct EncodedEvent {
        let id: EventID
        let rank: Int
        let deviceID: String
        let dedupKey: String?
        let fingerprint: String
        let receivedMs: Int64
        let body: Data
    }

    struct PendingAppend {
        let rows: [EncodedEvent]
        var quarantine: [SealedQuarantine] = []
        var receivedAt: Timestamp
        let cursor: DeviceCursorUpdate?
        let continuation: CheckedContinuation<[AppendOutcome], any Error>
    }

    /// Acknowledged deliveries not yet on disk: their cursors (in memory already) and the deletes
    /// of what every sink delivered, written together once `deliveryRecordEvents` are owed, on the
    /// next group commit, or after `deliveryRecordSeconds` (EventQueue+Sinks, "Delivery records").
    struct OwedDeliveries {
        var sinks: Set<String> = []
        var ranks: Set<Int> = []
        var events = 0
        var since: Double?

        var isEmpty: Bool { sinks.isEmpty }

        mutating func merge(_ other: OwedDeliveries) {
            sinks.formUnion(other.sinks)
            ranks.formUnion(other.ranks)
            events += other.events
            since = [since, other.since].compactMap { $0 }.min()
        }
    }

    struct PendingState {
        var items: [PendingAppend] = []
        var owed = OwedDeliveries()
        var closed = false
        /// `run()` is taking work.
        var running = false
    }

    /// Opens (creating or migrating) the queue at `path`. Does no background work: call `run()`.
    /// `sealer` seals quarantined payloads; without one, the key generated beside the queue
    /// file is used (`PayloadSealer.resolve`).
    public init(
        path: String, settings: QueueSettings, diskBudgetBytes: Int64, sealer: PayloadSealer? = nil, clock: any TimerClock, logger: Logger
    ) throws {
        self.clock = clock
        self.path = path
        self.logger = logger
        self.sealer = try sealer ?? PayloadSealer.resolve(configured: nil, directory: (path as NSString).deletingLastPathComponent)
        self.settings = Mutex(
            Settings(
                budgetBytes: diskBudgetBytes, commitMaxEvents: settings.commitMaxEvents,
                quarantineMaxPayloadBytes: settings.quarantineMaxPayloadBytes,
                dedupWindowHours: settings.dedupWindowHours, maxWaitingAppends: settings.maxWaitingAppends))
        var config = Configuration()
        config.busyMode = .timeout(10)
        // Deleted or rewritten rows are overwritten in their pages, so that a clear value that
        // once was in the file (a payload from before sealing) does not linger in free space.
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA secure_delete = FAST") }
        let directory = (path as NSString).deletingLastPathComponent
        do {
            if !directory.isEmpty { try DurableDirectory.create(directory) }
            // Refuses a file that is not ours, or is from a newer version, before writing a byte.
            try QueueFile.inspect(path: path, knownMigrations: QueueSchema.migrator.migrations)
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? nil
            if (size ?? 0) == 0 { try QueueFile.create(path: path) }
            pool = try DatabasePool(path: path, configuration: config)
            // FULL: a WAL commit is fsynced before `append` returns; group commit pays for it.
            // Set on the writer after opening, because GRDB switches WAL pools to NORMAL while
            // opening them, and read back so that a library change cannot weaken it unnoticed.
            let synchronous = try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
                return try Int.fetchOne(db, sql: "PRAGMA synchronous")
            }
            guard synchronous == 2 else {
                throw QueueOpenError(description: "SQLite refused synchronous=FULL (got \(synchronous ?? -1)); commits would not be durable")
            }
            let applied = try pool.read { db in
                try db.tableExists("grdb_migrations") ? String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") : []
            }
            try QueueFile.refuseNewer(path: path, applied: applied, known: QueueSchema.migrator.migrations)
            try QueueSchema.migrator.migrate(pool)
            // The first transaction reads the totals and the recent dedup keys (`ledger`).
            _ = try pool.write { db in try self.ledger(db) }
        } catch {
            throw QueueFile.openError(path: path, error)
        }
        try sealLegacyQuarantine()
        compactAtOpen()
    }

    // MARK: - Settings that can change on reload

    public func update(settings: QueueSettings, diskBudgetBytes: Int64) {
        self.settings.withLock {
            $0.budgetBytes = diskBudgetBytes
            $0.commitMaxEvents = settings.commitMaxEvents
            $0.quarantineMaxPayloadBytes = settings.quarantineMaxPayloadBytes
            $0.dedupWindowHours = settings.dedupWindowHours
            $0.maxWaitingAppends = settings.maxWaitingAppends
        }
    }

    // MARK: - Appending

    /// Hands events to the group committer and waits until their transaction is durable.
    /// With `cursor`, a polled device's read position is stored in the same transaction,
    /// unless an event was refused (then the device is read again from where it was).
    ///
    /// `quarantine` keeps records a polled device produced that could not be decoded, in the same
    /// transaction, so the cursor moves past them exactly when they are kept; one outcome
    /// `.refused` is added after the events' outcomes for each record the disk budget refused.
    public func append(
        _ events: [Event], quarantine: [QuarantineRecord] = [], cursor: DeviceCursorUpdate? = nil, receivedAt: Timestamp? = nil
    ) async throws -> [AppendOutcome] {
        try await ensureSpace()
        let receivedAt = receivedAt ?? clock.now
        let rows = try encode(events)
        let sealed = try quarantine.map(seal)
        let maxWaiting = settings.withLock { $0.maxWaitingAppends }
        return try await withCheckedThrowingContinuation { continuation in
            // Admission: a bounded line in front of the committer, so that under overload a
            // request is refused at once rather than answered after a long wait (or a timeout).
            let refusal = pending.withLock { state -> (any Error)? in
                guard !state.closed else { return CancellationError() }
                guard state.items.count < maxWaiting else { return QueueOverloadedError(waiting: state.items.count) }
                state.items.append(
                    PendingAppend(rows: rows, quarantine: sealed, receivedAt: receivedAt, cursor: cursor, continuation: continuation))
                return nil
            }
            if let refusal {
                continuation.resume(throwing: refusal)
            } else {
                committerWake.signal()
            }
        }
    }

    /// Appends waiting for the group commit now.
    public var waitingAppends: Int { pending.withLock { $0.items.count } }

    /// Runs a request that will append (a device's push) unless `queue.max_waiting_appends`
    /// requests are already between their arrival and their reply; then throws
    /// `QueueOverloadedError` at once, before the body is read.
    ///
    /// The line in front of the committer alone does not see overload when the CPU, not the
    /// commit, is what is short: requests then wait for their turn to be read, decoded and
    /// built, and reach the committer one by one, late, with the line nearly empty.
    public func admitting<T>(_ request: () async throws -> T) async throws -> T {
        let maxWaiting = settings.withLock { $0.maxWaitingAppends }
        let inFlight = requestsInFlight.wrappingAdd(1, ordering: .relaxed).newValue
        defer { requestsInFlight.wrappingSubtract(1, ordering: .relaxed) }
        guard inFlight <= maxWaiting else { throw QueueOverloadedError(waiting: inFlight - 1) }
        return try await request()
    }

    /// Requests inside `admitting` now.
    public var admittedRequests: Int { requestsInFlight.load(ordering: .relaxed) }

    /// Commits in a transaction of its own, without the group committer (CLI tools, replay).
    /// `deduplicate: false` re-queues events that were accepted before (an event a sink's target
    /// rejected): their dedup key is already recorded and must not turn them into duplicates.
    public func appendNow(_ events: [Event], cursor: DeviceCursorUpdate? = nil, deduplicate: Bool = true) async throws -> [AppendOutcome] {
        try await ensureSpace()
        let rows = try encode(events, deduplicate: deduplicate)
        let (outcomes, evictions) = try await mappingDiskFull { try await self.pool.write { db in
            var ledger = try self.ledger(db)
            var kept: [(SealedQuarantine, Int64)] = []
            let outcomes = try self.commit(rows: rows, quarantine: [], receivedAt: self.clock.now, cursor: cursor, db: db, ledger: &ledger, kept: &kept)
            self.recentDedup.apply(afterCommitOf: db, added: ledger.newDedup, folded: false)
            try ledger.save(db, to: self)
            return (outcomes, ledger.evictions)
        } }
        report(evictions)
        notifySubscribers()
        return outcomes
    }

    private func encode(_ events: [Event], deduplicate: Bool = true) throws -> [EncodedEvent] {
        try events.map {
            EncodedEvent(
                id: $0.id, rank: $0.priority.rank, deviceID: $0.device.id, dedupKey: deduplicate ? $0.source.dedupKey : nil,
                fingerprint: $0.source.fingerprint ?? "", receivedMs: $0.receivedAt.milliseconds, body: try EventCoding.encode($0))
        }
    }

    /// The group committer: takes everything waiting (up to `commit_max_events`), commits it in
    /// one transaction and answers every caller. Returns after `close()` once nothing is waiting.
    public func run() async {
        // Room for deletes and cursor updates on a full file system (EventQueue+DiskFull).
        if setReserveAside() {
            diskState.withLock { $0.reserveMissing = false }
        } else {
            logger.warning("could not set aside the queue's disk reserve; deliveries may stall if the disk fills", metadata: ["gatehouse.directory": "\(directory)"])
        }
        pending.withLock { $0.running = true }
        // On a thread of its own, where the commit runs synchronously (`ThreadExecutor`).
        await withTaskExecutorPreference(ThreadExecutor.committer) {
            while !Task.isCancelled, !pending.withLock({ $0.closed }) {
                if pending.withLock({ $0.owed.isEmpty }) {
                    await committerWake.wait()
                } else {
                    // Owed delivery records are written at the latest after `deliveryRecordSeconds`.
                    await committerWake.wait(timeout: .milliseconds(Int(Self.deliveryRecordSeconds * 1000)), clock: clock)
                }
                await drainPending()
            }
            await drainPending()
        }
        // Owed delivery records not written by the last drain (it failed) go back to the callers' path.
        pending.withLock { $0.running = false }
        await recordOwedDeliveries()
        do {
            try await storeTotals()
        } catch {
            logger.warning("could not store the queue's counters at shutdown; the next start counts them again", metadata: ["error": "\(error)"])
        }
    }

    /// Leaves a sink's delivery record (its cursor, and deleting what every sink delivered) to the
    /// group committer, which writes it with a later commit (EventQueue+Sinks, "Delivery records").
    /// False when the committer is not running or the disk is full (the caller records it at once).
    func owe(sink: String, ranks: [Int], events: Int) -> Bool {
        guard diskState.withLock({ $0.fullSince == nil }) else { return false }
        let now = clock.now.seconds
        let (owed, wake) = pending.withLock { state -> (Bool, Bool) in
            guard state.running, !state.closed else { return (false, false) }
            let first = state.owed.isEmpty
            state.owed.merge(OwedDeliveries(sinks: [sink], ranks: Set(ranks), events: events, since: now))
            // The first owed record starts the committer's timer; a full one is written at once.
            return (true, first || state.owed.events >= Self.deliveryRecordEvents)
        }
        if wake { committerWake.signal() }
        return owed
    }

    /// Stops accepting appends; `run()` finishes what is waiting and returns.
    public func close() {
        pending.withLock { $0.closed = true }
        committerWake.signal()
    }

    private func drainPending() async {
        while true {
            let limit = settings.withLock { $0.commitMaxEvents }
            let now = clock.now.seconds
            let (batch, deliveries) = pending.withLock { state -> ([PendingAppend], OwedDeliveries) in
                var taken = 0
                var count = 0
                for item in state.items {
                    if count > 0, taken + item.rows.count > limit { break }
                    taken += item.rows.count
                    count += 1
                }
                let batch = Array(state.items.prefix(count))
                state.items.removeFirst(count)
                var deliveries = OwedDeliveries()
                if Self.deliveryRecordDue(state.owed, now: now, closing: state.closed) {
                    deliveries = state.owed
                    state.owed = OwedDeliveries()
                }
                return (batch, deliveries)
            }
            if batch.isEmpty, deliveries.isEmpty { return }
            if let hold = beforeCommit.withLock({ $0 }) { await hold() }
            do {
                let (results, evictions, kept) = try write(batch, deliveries: deliveries)
                for (sealed, id) in kept { logQuarantined(sealed, id: id) }
                if !deliveries.isEmpty { await compactAfterDiskFull() }
                guard !batch.isEmpty else { continue }
                processStats.withLock {
                    $0.commits += 1
                    // Stored ones only: a duplicate or a refusal adds no event.
                    $0.events += Int64(results.reduce(0) { $0 + $1.count(where: \.isStored) })
                }
                for (item, outcomes) in zip(batch, results) { item.continuation.resume(returning: outcomes) }
                report(evictions)
                notifySubscribers()
            } catch {
                let error: any Error = Self.isDiskFull(error) ? noteDiskFull(error) : error
                if !(error is QueueDiskFullError) {
                    logger.error("queue commit failed", metadata: ["error": "\(error)", "gatehouse.batch": "\(batch.count)"])
                }
                for item in batch { item.continuation.resume(throwing: error) }
                // Still owed: the cursors are in memory, the next commit (or shutdown) writes them.
                if !deliveries.isEmpty { pending.withLock { $0.owed.merge(deliveries) } }
                if Self.isDiskFull(error) { await recordOwedDeliveries() }
                // A record alone that failed is tried again after `deliveryRecordSeconds`, not at once.
                if batch.isEmpty { return }
            }
        }
    }

    /// One group commit's transaction. Synchronous, so that it runs on the committer's own thread
    /// (`run()`), with no hand-off to GRDB's writer thread and back.
    private func write(
        _ batch: [PendingAppend], deliveries: OwedDeliveries
    ) throws -> (results: [[AppendOutcome]], evictions: [Int: (count: Int64, bytes: Int64)], kept: [(SealedQuarantine, Int64)]) {
        try pool.write { db in
            var ledger = try self.ledger(db)
            var kept: [(SealedQuarantine, Int64)] = []
            // Rides on a commit that happens anyway; the map is emptied once it is durable.
            let fold = self.recentDedup.count >= RecentDedupKeys.foldThreshold
            if fold { try self.recentDedup.fold(db) }
            // Deliveries first: taken out of `owed`, they would not make room for the batch (`makeRoom`).
            if !deliveries.isEmpty {
                try self.recordDeliveries(sinks: deliveries.sinks, ranks: deliveries.ranks, db: db, ledger: &ledger)
            }
            let results = try batch.map {
                try self.commit(
                    rows: $0.rows, quarantine: $0.quarantine, receivedAt: $0.receivedAt, cursor: $0.cursor, db: db,
                    ledger: &ledger, kept: &kept)
            }
            self.recentDedup.apply(afterCommitOf: db, added: ledger.newDedup, folded: fold)
            try ledger.save(db, to: self)
            return (results, ledger.evictions, kept)
        }
    }

    private func commit(
        rows: [EncodedEvent], quarantine: [SealedQuarantine], receivedAt: Timestamp, cursor: DeviceCursorUpdate?,
        db: Database, ledger: inout Ledger, kept: inout [(SealedQuarantine, Int64)]
    ) throws -> [AppendOutcome] {
        let budget = settings.withLock { $0.budgetBytes }
        let insertDedup = try db.cachedStatement(
            sql: "INSERT INTO dedup_log(device_id, key, fingerprint, event_id, seen_ms) VALUES (?, ?, ?, ?, ?)")
        let insertEvent = try db.cachedStatement(
            sql: "INSERT INTO events(seq, priority, device_id, received_ms, body) VALUES (?, ?, ?, ?, ?)")
        var outcomes: [AppendOutcome] = []
        outcomes.reserveCapacity(rows.count)
        let findDedup = try db.cachedStatement(sql: "SELECT fingerprint, event_id FROM dedup WHERE device_id = ? AND key = ?")
        for row in rows {
            var collision = false
            // A re-sent event is answered as a duplicate before the budget is considered: it needs no room.
            if let key = row.dedupKey {
                let recentKey = RecentDedupKeys.Key(device: row.deviceID, key: key)
                let seen = recentDedup.lookup(recentKey) + (ledger.newDedup[recentKey] ?? [])
                    + (try Row.fetchAll(findDedup, arguments: [row.deviceID, key]).map { RecentDedupKeys.Entry(fingerprint: $0[0], eventID: $0[1]) })
                if let same = seen.first(where: { $0.fingerprint == row.fingerprint }) {
                    ledger.duplicates += 1
                    outcomes.append(.duplicate(of: EventID(same.eventID) ?? row.id))
                    continue
                }
                // The key repeats but the content does not: a different event under a reused key.
                collision = !seen.isEmpty
            }
            let size = Int64(row.body.count + Self.rowOverhead)
            guard try makeRoom(size, forRank: row.rank, budget: budget, db: db, ledger: &ledger) else {
                let name = Priority(rank: row.rank)?.rawValue ?? "\(row.rank)"
                outcomes.append(.refused("disk budget of \(budget) bytes is full with events of priority \(name) or higher; retry later"))
                continue
            }
            if let key = row.dedupKey {
                try insertDedup.execute(arguments: [row.deviceID, key, row.fingerprint, row.id.description, row.receivedMs])
                ledger.newDedup[RecentDedupKeys.Key(device: row.deviceID, key: key), default: []].append(
                    RecentDedupKeys.Entry(fingerprint: row.fingerprint, eventID: row.id.description))
            }
            try insertEvent.execute(arguments: [ledger.nextSeq(), row.rank, row.deviceID, row.receivedMs, row.body])
            ledger.queuedEvents += 1
            ledger.queuedByRank[row.rank, default: 0] += 1
            ledger.queuedBytes += size
            if collision {
                ledger.collisions += 1
                collisions.note(device: row.deviceID, key: row.dedupKey ?? "", logger: logger, now: clock.now)
            }
            outcomes.append(.stored(row.id))
        }
        for sealed in quarantine {
            if let id = try insertQuarantine(sealed, receivedAt: receivedAt, budget: budget, db: db, ledger: &ledger) {
                kept.append((sealed, id))
            } else {
                outcomes.append(.refused("disk budget of \(budget) bytes is full; a quarantine entry was refused; retry later"))
            }
        }
        if let cursor, outcomes.allSatisfy(\.isAccepted) {
            try db.execute(
                sql: """
                    INSERT INTO device_cursors(device_id, cursor, updated_ms) VALUES (?, ?, ?)
                    ON CONFLICT(device_id) DO UPDATE SET cursor = excluded.cursor, updated_ms = excluded.updated_ms
                    """,
                arguments: [cursor.deviceID, cursor.cursor, clock.now.milliseconds])
        }
        return outcomes
    }

    /// Evicts what may be evicted for an item of `size` bytes and `rank` (-1: quarantine), inside a
    /// savepoint: when the item still would not fit, the evictions are rolled back with the
    /// ledger, so a refused item costs nothing. Returns whether the item fits now.
    func makeRoom(_ size: Int64, forRank rank: Int, budget: Int64, db: Database, ledger: inout Ledger) throws -> Bool {
        guard ledger.usedBytes + size > budget else { return true }
        // Delivered events whose record is still owed (EventQueue+Sinks) make room before anything is evicted.
        if pending.withLock({ !$0.owed.isEmpty }) {
            try recordDeliveries(sinks: Set(sinkCursorsSnapshot().keys), ranks: Set(Priority.allCases.map(\.rank)), db: db, ledger: &ledger)
            if ledger.usedBytes + size <= budget { return true }
        }
        let before = ledger
        var fits = false
        try db.inSavepoint {
            if rank < 0 {
                try evictQuarantine(db: db, bytesNeeded: ledger.usedBytes + size - budget, ledger: &ledger)
            } else {
                try evict(db: db, belowRank: rank, bytesNeeded: ledger.usedBytes + size - budget, ledger: &ledger)
            }
            fits = ledger.usedBytes + size <= budget
            return fits ? .commit : .rollback
        }
        if !fits { ledger = before }
        return fits
    }

    /// Deletes the oldest events of ranks below `belowRank`, lowest rank first (quarantined
    /// input before telemetry), until `bytesNeeded` are freed or nothing lower is left.
    private func evict(db: Database, belowRank: Int, bytesNeeded: Int64, ledger: inout Ledger) throws {
        var freed = try evictQuarantine(db: db, bytesNeeded: bytesNeeded, ledger: &ledger)
        for rank in 0..<max(0, belowRank) where freed < bytesNeeded {
            while freed < bytesNeeded {
                let rows = try Row.fetchAll(
                    db, sql: "SELECT seq, length(body) FROM events WHERE priority = ? ORDER BY seq LIMIT 256",
                    arguments: [rank])
                guard !rows.isEmpty else { break }
                var lastSeq: Int64 = 0
                var count: Int64 = 0
                var bytes: Int64 = 0
                for row in rows where freed + bytes < bytesNeeded {
                    lastSeq = row[0]
                    bytes += (row[1] as Int64) + Int64(Self.rowOverhead)
                    count += 1
                }
                try db.execute(sql: "DELETE FROM events WHERE priority = ? AND seq <= ?", arguments: [rank, lastSeq])
                freed += bytes
                ledger.queuedBytes -= bytes
                ledger.queuedEvents -= count
                ledger.queuedByRank[rank, default: 0] -= count
                ledger.evictions[rank, default: (0, 0)].count += count
                ledger.evictions[rank, default: (0, 0)].bytes += bytes
            }
        }
    }

    /// Deletes the oldest quarantine entries until `bytesNeeded` are freed; returns what was freed.
    /// Quarantined input never pushes out events, only older quarantine.
    @discardableResult
    func evictQuarantine(db: Database, bytesNeeded: Int64, ledger: inout Ledger) throws -> Int64 {
        var freed: Int64 = 0
        while freed < bytesNeeded {
            let rows = try Row.fetchAll(db, sql: "SELECT id, length(payload) FROM quarantine ORDER BY id LIMIT 64")
            guard !rows.isEmpty else { break }
            var lastID: Int64 = 0
            var count: Int64 = 0
            var bytes: Int64 = 0
            for row in rows where freed + bytes < bytesNeeded {
                lastID = row[0]
                bytes += row[1] as Int64
                count += 1
            }
            try db.execute(sql: "DELETE FROM quarantine WHERE id <= ?", arguments: [lastID])
            freed += bytes
            ledger.quarantineBytes -= bytes
            ledger.evictions[-1, default: (0, 0)].count += count
            ledger.evictions[-1, default: (0, 0)].bytes += bytes
        }
        return freed
    }

    /// Runs a write, turning SQLITE_FULL into the disk-full state and `QueueDiskFullError`.
    func mappingDiskFull<T>(_ write: () async throws -> T) async throws -> T {
        do {
            return try await write()
        } catch where Self.isDiskFull(error) {
            throw noteDiskFull(error)
        }
    }

    func processCounters() -> (commits: Int64, events: Int64) { processStats.withLock { $0 } }
    func dedupWindowHours() -> Double { settings.withLock { $0.dedupWindowHours } }

    func settingsSnapshot() -> (budget: Int64, maxPayload: Int) {
        settings.withLock { ($0.budgetBytes, $0.quarantineMaxPayloadBytes) }
    }

    /// One warning per class (priority, or quarantine) and minute, with what was evicted since
    /// the class's last line: a full budget evicts on every commit.
    func report(_ evictions: [Int: (count: Int64, bytes: Int64)]) {
        let now = clock.now
        for (rank, eviction) in evictions.sorted(by: { $0.key < $1.key }) {
            guard let (count, bytes) = evictionLog.note(rank, count: eviction.count, bytes: eviction.bytes, now: now) else { continue }
            let what = rank < 0 ? "quarantine entries" : "\(Priority(rank: rank)?.rawValue ?? "\(rank)") events"
            logger.warning(
                "disk budget reached: evicted \(count) oldest \(what) (\(bytes) bytes) since the last such line",
                metadata: ["gatehouse.evicted": "\(count)"])
        }
    }

    // MARK: - Sink cursor cache (the database is the source of truth)

    func sinkCursor(_ sink: String) -> [Int: Int64] { sinkCursors.withLock { $0[sink] ?? [:] } }
    func sinkCursorsSnapshot() -> [String: [Int: Int64]] { sinkCursors.withLock { $0 } }
    func sinkCursorsReplace(_ cursors: [String: [Int: Int64]]) { sinkCursors.withLock { $0 = cursors } }
    func sinkCursorsAdvance(sink: String, to highest: [Int: Int64]) {
        sinkCursors.withLock { all in
            for (rank, seq) in highest { all[sink, default: [:]][rank] = max(all[sink]?[rank] ?? 0, seq) }
        }
    }

    // MARK: - New-event signal for sinks

    /// Signals `signal` after every commit that stored events (and once now, so the subscriber
    /// looks at the queue first); hand the result to `stopSignallingCommits`.
    public func signalCommits(to signal: WakeUpSignal) -> Int {
        let key = subscribers.withLock { subs -> Int in
            let key = (subs.keys.max() ?? 0) + 1
            subs[key] = signal
            return key
        }
        signal.signal()
        return key
    }

    public func stopSignallingCommits(_ key: Int) {
        _ = subscribers.withLock { $0.removeValue(forKey: key) }
    }

    private func notifySubscribers() {
        for signal in subscribers.withLock({ Array($0.values) }) { signal.signal() }
    }
}
