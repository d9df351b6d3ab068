import ArgumentParser
import Foundation
import GRDB

/// `gatehouse-bench sqlite-ceiling`: how fast plain SQLite commits rows shaped like the queue's,
/// with the same durability settings, on this disk. The gateway cannot beat this figure; the
/// ratio between the two is what its HTTP, decoding and group-commit machinery costs.
struct SQLiteCeilingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sqlite-ceiling",
        abstract: "Plain SQLite (WAL, synchronous=FULL) insert ceiling for queue-shaped rows."
    )

    @Option(help: "Directory for the scratch database (ceiling.sqlite); created if missing.")
    var dir: String

    @Option(help: "Rows to insert.")
    var events = 200_000

    @Option(help: "Rows per transaction (one commit, one WAL fsync each).")
    var batch = 500

    @Option(help: "Bytes in each row's body.")
    var rowBytes = 600

    @Flag(help: "Keep the database files afterwards.")
    var keep = false

    @Option(help: "Also write the figures as JSON to this file.")
    var json: String?

    func validate() throws {
        guard events >= 1 else { throw ValidationError("--events \(events) (expected 1 or more)") }
        guard batch >= 1 else { throw ValidationError("--batch \(batch) (expected 1 or more)") }
        guard rowBytes >= 0 else { throw ValidationError("--row-bytes \(rowBytes) (expected 0 or more)") }
    }

    func run() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = URL(fileURLWithPath: dir).appendingPathComponent("ceiling.sqlite").path
        let files = [path, path + "-wal", path + "-shm"]
        for file in files { try? FileManager.default.removeItem(atPath: file) }
        defer {
            if !keep { for file in files { try? FileManager.default.removeItem(atPath: file) } }
        }

        let pool = try DatabasePool(path: path)  // a pool opens in WAL mode
        // Set after opening: the pool's WAL set-up runs after `prepareDatabase` and resets the
        // writer to synchronous=NORMAL. The report reads the setting back to prove it held.
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        let settings = try pool.write { db in
            try db.execute(sql: """
                CREATE TABLE events (
                    seq INTEGER PRIMARY KEY,
                    priority INTEGER NOT NULL,
                    device_id TEXT NOT NULL,
                    received_ms INTEGER NOT NULL,
                    body BLOB NOT NULL
                );
                CREATE INDEX events_priority_seq ON events(priority, seq);
                """)
            return (
                journal: try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "?",
                synchronous: try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1
            )
        }
        let body = Data((0..<rowBytes).map { UInt8(ascii: "a") &+ UInt8($0 % 26) })
        let devices = (0..<50).map { "sim-\($0)" }

        let bytesBefore = try ProcFS.writeBytes(pid: "self")
        let clock = ContinuousClock()
        let started = clock.now
        var inserted = 0
        var commits = 0
        while inserted < events {
            let count = min(batch, events - inserted)
            let first = inserted
            try pool.write { db in
                let insert = try db.cachedStatement(
                    sql: "INSERT INTO events (priority, device_id, received_ms, body) VALUES (?, ?, ?, ?)")
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                for row in first..<first + count {
                    // 1 % alarms, as the http load sends.
                    try insert.execute(arguments: [row % 100 == 0 ? 2 : 1, devices[row % devices.count], now, body])
                }
            }
            inserted += count
            commits += 1
        }
        let seconds = (clock.now - started).seconds
        let bytesAfterInserts = try ProcFS.writeBytes(pid: "self")
        // Move everything into the main file so the byte count covers the row's whole journey.
        _ = try pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
        let bytesAfterCheckpoint = try ProcFS.writeBytes(pid: "self")
        let fileBytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0

        let report = SQLiteCeilingReport(
            path: path, journalMode: settings.journal, synchronous: settings.synchronous,
            rows: inserted, batch: batch, rowBytes: rowBytes, seconds: seconds, commits: commits,
            bytesDuringInserts: bytesAfterInserts - bytesBefore,
            bytesWithCheckpoint: bytesAfterCheckpoint - bytesBefore, databaseFileBytes: fileBytes
        )
        print(report.table())
        if let json { try JSONReport.write(report, to: json) }
    }
}

/// The figures of one `sqlite-ceiling` run, as printed and as written with `--json`.
struct SQLiteCeilingReport: Codable {
    var path: String
    var journalMode: String
    /// SQLite's code: 2 is FULL.
    var synchronous: Int
    var rows: Int
    var batch: Int
    var rowBytes: Int
    var seconds: Double
    var commits: Int
    var rowsPerSecond: Double
    var commitsPerSecond: Double
    /// `write_bytes` growth while inserting (WAL appends and automatic checkpoints).
    var bytesDuringInserts: Int64
    /// The same plus a final TRUNCATE checkpoint, so every row has reached the main file.
    var bytesWithCheckpoint: Int64
    var writeBytesPerRow: Double
    var writeBytesPerRowWithCheckpoint: Double
    var databaseFileBytes: Int

    init(
        path: String, journalMode: String, synchronous: Int, rows: Int, batch: Int, rowBytes: Int,
        seconds: Double, commits: Int, bytesDuringInserts: Int64, bytesWithCheckpoint: Int64, databaseFileBytes: Int
    ) {
        self.path = path
        self.journalMode = journalMode
        self.synchronous = synchronous
        self.rows = rows
        self.batch = batch
        self.rowBytes = rowBytes
        self.seconds = seconds
        self.commits = commits
        self.rowsPerSecond = Double(rows) / max(seconds, 1e-9)
        self.commitsPerSecond = Double(commits) / max(seconds, 1e-9)
        self.bytesDuringInserts = bytesDuringInserts
        self.bytesWithCheckpoint = bytesWithCheckpoint
        self.writeBytesPerRow = Double(bytesDuringInserts) / Double(max(rows, 1))
        self.writeBytesPerRowWithCheckpoint = Double(bytesWithCheckpoint) / Double(max(rows, 1))
        self.databaseFileBytes = databaseFileBytes
    }

    func table() -> String {
        var table = TextTable("gatehouse-bench sqlite-ceiling  \(path)")
        table.add("settings", "journal_mode=\(journalMode) synchronous=\(synchronous == 2 ? "FULL" : String(synchronous))")
        table.add("rows", "\(rows) × \(rowBytes) B body, \(batch) per transaction")
        table.add("time", "\(Format.fixed(seconds, 2)) s")
        table.add("rows/s", Format.fixed(rowsPerSecond, 0))
        table.add("commits/s", Format.fixed(commitsPerSecond, 1))
        table.add("disk writes/row", "\(Format.fixed(writeBytesPerRow, 0)) B (\(Format.fixed(writeBytesPerRowWithCheckpoint, 0)) B with final checkpoint)")
        table.add("database file", Format.megabytes(Double(databaseFileBytes)))
        return table.render()
    }
}

extension Duration {
    /// The duration in seconds as a Double.
    var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}
