import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseDaemon
import GatehouseQueue
import Logging

/// `gatehouse quarantine list|show|replay|discard`: what could not be mapped, and turning it into
/// events once the mapping is fixed. Works on the queue file; the daemon may keep running.
struct QuarantineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quarantine", abstract: "Inspect, replay and discard quarantined input.",
        subcommands: [List.self, Show.self, Replay.self, Discard.self])

    struct Options: ParsableArguments {
        @Option(name: .shortAndLong, help: "The config file (for the state directory and devices).")
        var config: String = defaultConfigPath

        func open() throws -> (GatehouseConfig, EventQueue) { try openQueue(configPath: config) }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List quarantined payloads, newest first.")
        @OptionGroup var options: Options
        @Flag(help: "Include entries already replayed or discarded.") var all = false
        @Option(help: "Only this device.") var device: String?
        @Option(help: "At most this many.") var limit = 50
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let (_, queue) = try options.open()
            let entries = try await queue.quarantineEntries(limit: limit, pendingOnly: !all, deviceID: device)
            if json {
                let summaries = entries.map { QuarantineSummary($0) }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(summaries), as: UTF8.self))
                return
            }
            if entries.isEmpty { print("quarantine is empty") }
            for e in entries {
                let replayed = e.replayedAt.map { " replayed \($0.rfc3339)" }
                    ?? e.discarded.map { " discarded \($0.at.rfc3339) by \($0.by): \($0.reason)" } ?? ""
                print("\(e.id)\t\(e.receivedAt.rfc3339)\t\(e.deviceID ?? "-")\t\(e.driver)\t\(e.payloadBytes) B\t\(e.redactedReason ?? e.reason)\(replayed)")
            }
        }
    }

    /// Opens the sealed payload with the quarantine key: the clear values go to this terminal only.
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one entry with its payload, opened with the quarantine key (clear values: do not paste it into tickets).")
        @OptionGroup var options: Options
        @Argument(help: "The entry id.") var id: Int64
        @Flag(help: "Write only the raw payload bytes to standard output.") var raw = false

        func run() async throws {
            let (_, queue) = try options.open()
            guard let e = try await queue.quarantineEntry(id: id) else { throw ValidationError("no quarantine entry \(id)") }
            if let unreadable = e.unreadable {
                FileHandle.standardError.write(Data("entry \(id): \(unreadable)\n".utf8))
                if raw { throw ExitCode(1) }
            }
            if raw {
                FileHandle.standardOutput.write(e.payload)
                return
            }
            print("id:           \(e.id)")
            print("received:     \(e.receivedAt.rfc3339)")
            print("device:       \(e.deviceID ?? "-")")
            print("driver:       \(e.driver)")
            print("route:        \(e.route ?? "-")")
            print("content type: \(e.contentType ?? "-")")
            print("from:         \(e.remote ?? "-")")
            print("sealed with:  \(e.keyID.map { "quarantine key \($0)" } ?? "not sealed")")
            print("reason:       \(e.reason)")
            print("size:         \(e.payloadBytes) bytes\(e.truncated ? " (kept \(e.payload.count))" : "")")
            if let at = e.replayedAt { print("replayed:     \(at.rfc3339) → \(e.replayedEvents?.joined(separator: ", ") ?? "")") }
            if let d = e.discarded {
                print("discarded:    \(d.at.rfc3339) by \(d.by): \(d.reason)")
                print("sha256:       \(e.payloadSHA256 ?? "- (sealed under another key)")")
                print("payload:      erased when discarded")
                return
            }
            print("payload:")
            if let text = String(data: e.payload, encoding: .utf8) {
                print(text)
            } else {
                print(e.payload.prefix(4096).map { String(format: "%02x", $0) }.joined(separator: " "))
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Map quarantined payloads again with the current config; those that map become events.")
        @OptionGroup var options: Options
        @Argument(help: "Entry ids; none means every entry not yet replayed.") var ids: [Int64] = []

        func run() async throws {
            let (config, queue) = try options.open()
            let entries: [QuarantineEntry]
            if ids.isEmpty {
                entries = try await queue.quarantineEntries(limit: 100_000, pendingOnly: true).reversed()
            } else {
                entries = try await ids.asyncCompactMap { try await queue.quarantineEntry(id: $0) }
            }
            let replayer = QuarantineReplayer(config: config, queue: queue)
            var replayed = 0
            var failed = 0
            for entry in entries {
                switch await replayer.replay(entry) {
                case .success(let eventIDs):
                    replayed += 1
                    print("\(entry.id): replayed as \(eventIDs.map(\.description).joined(separator: ", "))")
                case .failure(let error):
                    failed += 1
                    print("\(entry.id): still does not map: \(error)")
                }
            }
            print("\(replayed) replayed, \(failed) still quarantined")
            if failed > 0 { throw ExitCode(3) }
        }
    }
}

extension QuarantineCommand {
    /// Gives up on a waiting entry: the payload is erased, who/when/why and its SHA-256 stay.
    struct Discard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Discard a waiting entry with a reason: its payload is erased; who, when, why, size and SHA-256 are kept.")
        @OptionGroup var options: Options
        @Argument(help: "The entry id.") var id: Int64
        @Option(help: "Why (recorded as written: no plates, cards or names).") var reason: String
        @Option(help: "Who discards it (default: the login name).") var by: String = ProcessInfo.processInfo.environment["USER"] ?? "cli"

        func run() async throws {
            let (_, queue) = try options.open()
            do {
                let entry = try await queue.discardQuarantine(id: id, by: by, reason: reason)
                print("\(id): discarded by \(by), payload erased (sha256 \(entry.payloadSHA256 ?? "-"), \(entry.payloadBytes) bytes)")
            } catch let refused as EventQueue.DiscardRefused {
                throw ValidationError(refused.description)
            }
        }
    }
}

/// A quarantine entry without its payload, for listings.
struct QuarantineSummary: Codable {
    var id: Int64
    var receivedAt: String
    var deviceID: String?
    var driver: String
    var reason: String
    var payloadBytes: Int
    var replayedAt: String?
    var discardedAt: String?
    var discardedBy: String?
    var discardReason: String?
    var payloadSHA256: String?

    init(_ e: QuarantineEntry) {
        id = e.id
        receivedAt = e.receivedAt.rfc3339
        deviceID = e.deviceID
        driver = e.driver
        reason = e.redactedReason ?? e.reason
        payloadBytes = e.payloadBytes
        replayedAt = e.replayedAt?.rfc3339
        discardedAt = e.discarded?.at.rfc3339
        discardedBy = e.discarded?.by
        discardReason = e.discarded?.reason
        payloadSHA256 = e.payloadSHA256
    }
}

extension Sequence {
    func asyncCompactMap<T>(_ transform: (Element) async throws -> T?) async rethrows -> [T] {
        var out: [T] = []
        for element in self { if let value = try await transform(element) { out.append(value) } }
        return out
    }
}

/// Loads the config and opens its queue file for the offline tools (quarantine, scaffold);
/// the daemon may keep running, SQLite's WAL lets both work on the file.
func openQueue(configPath: String) throws -> (GatehouseConfig, EventQueue) {
    let loaded: GatehouseConfig
    do {
        loaded = try GatehouseDaemon.loadConfig(path: configPath)
    } catch {
        FileHandle.standardError.write(Data("\(error)\n".utf8))
        throw ExitCode(2)
    }
    let path = (loaded.stateDirectory as NSString).appendingPathComponent(GatehouseDaemon.queueFileName)
    guard FileManager.default.fileExists(atPath: path) else {
        throw ValidationError("no queue at \(path) (has the daemon run with this config?)")
    }
    var logger = Logger(label: "gatehouse")
    logger.logLevel = .warning
    let sealer = try PayloadSealer.resolve(configured: loaded.privacy.quarantineKey, directory: loaded.stateDirectory)
    // The command's clock only stamps replays.
    let queue = try EventQueue(
        path: path, settings: loaded.queue, diskBudgetBytes: loaded.diskBudgetBytes, sealer: sealer, clock: MachineClock(), logger: logger)
    return (loaded, queue)
}
