import Foundation
import GatehouseCore
import Synchronization

/// Commands waiting for ZKTeco devices (the DeviceCommandQueue API): queued with `enqueue`,
/// handed out as `C:<id>:<command>` lines on `getrequest`, finished by the device's `devicecmd` report.
///
/// In memory only: a restart forgets queued commands and their results (a durable table in the
/// queue file and an admin route to add commands are still to come; see the driver README).
/// Ids start from the clock so that ids from before a restart are unlikely to be reused.
public final class ZKTecoCommandQueue: Sendable {
    /// One command and what became of it.
    public struct Command: Sendable, Equatable {
        public enum State: String, Sendable { case queued, sent, done, expired }
        public var id: Int
        public var text: String
        public var state: State
        public var queuedAt: Timestamp
        public var sentAt: Timestamp?
        /// How often it was handed to the device.
        public var deliveries: Int
        public var result: Result?

        /// The line a `getrequest` reply carries.
        public var line: String { "C:\(id):\(text)" }
    }

    /// A `devicecmd` report: `ID=<id>&Return=<code>&CMD=<command>`; 0 is success, negative an error.
    public struct Result: Sendable, Equatable {
        public var id: Int
        public var returnCode: Int
        public var command: String?
        public var at: Timestamp

        public var succeeded: Bool { returnCode == 0 }
    }

    /// Limits that keep one device's backlog bounded.
    public struct Settings: Sendable {
        /// Commands handed out per `getrequest` reply.
        public var perRequest = 10
        /// Commands waiting per device before `enqueue` refuses.
        public var maxPending = 100
        /// Finished commands remembered per device.
        public var history = 100
        /// A sent command with no report after this long is handed out again (same id)…
        public var redeliverAfterSeconds: Double = 120
        /// …at most this many times in all, then it is `expired`.
        public var maxDeliveries = 3

        public init() {}
    }

    private let settings: Settings
    private let state: Mutex<(nextID: Int, commands: [String: [Command]])>

    public init(settings: Settings = Settings(), firstID: Int? = nil) {
        self.settings = settings
        // Seconds since 2024 grow faster than a site queues commands, so ids stay unique across restarts in practice.
        let seed = firstID ?? max(1, Int(Date().timeIntervalSince1970) - 1_704_067_200)
        state = Mutex((seed, [:]))
    }

    /// Queues `command` for the device with config id `deviceID`; returns the command id.
    @discardableResult
    public func enqueue(_ command: String, for deviceID: String, now: Timestamp = .now) throws(ZKTecoCommandError) -> Int {
        let text = command.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty, !text.contains(where: { $0 == "\n" || $0 == "\r" }), text.utf8.count <= 2048 else {
            throw ZKTecoCommandError("command '\(command.prefix(80))' is not valid (expected one line of 1…2048 bytes, e.g. CONTROL DEVICE 01010105)")
        }
        return try state.withLock { s throws(ZKTecoCommandError) -> Int in
            let waiting = s.commands[deviceID, default: []].filter { $0.state == .queued || $0.state == .sent }.count
            guard waiting < settings.maxPending else {
                throw ZKTecoCommandError("device '\(deviceID)' already has \(waiting) commands waiting (at most \(settings.maxPending))")
            }
            let id = s.nextID
            s.nextID += 1
            s.commands[deviceID, default: []].append(
                Command(id: id, text: text, state: .queued, queuedAt: now, sentAt: nil, deliveries: 0, result: nil))
            return id
        }
    }

    /// The commands to hand out on this `getrequest`, marked as sent: queued ones, and sent
    /// ones whose report is overdue.
    public func take(for deviceID: String, now: Timestamp = .now) -> [Command] {
        state.withLock { s in
            guard var list = s.commands[deviceID] else { return [] }
            var taken: [Command] = []
            for index in list.indices where taken.count < settings.perRequest {
                var command = list[index]
                switch command.state {
                case .queued:
                    break
                case .sent:
                    guard let sentAt = command.sentAt, now.seconds - sentAt.seconds >= settings.redeliverAfterSeconds else { continue }
                    if command.deliveries >= settings.maxDeliveries {
                        list[index].state = .expired
                        continue
                    }
                case .done, .expired:
                    continue
                }
                command.state = .sent
                command.sentAt = now
                command.deliveries += 1
                list[index] = command
                taken.append(command)
            }
            s.commands[deviceID] = trimmed(list)
            return taken
        }
    }

    /// Records the device's reports; returns those that matched a command it was given.
    @discardableResult
    public func record(_ results: [Result], from deviceID: String) -> [Result] {
        state.withLock { s in
            guard var list = s.commands[deviceID] else { return [] }
            var matched: [Result] = []
            for result in results {
                guard let index = list.firstIndex(where: { $0.id == result.id }) else { continue }
                list[index].state = .done
                list[index].result = result
                matched.append(result)
            }
            s.commands[deviceID] = trimmed(list)
            return matched
        }
    }

    /// Every command known for a device, oldest first.
    public func commands(for deviceID: String) -> [Command] {
        state.withLock { $0.commands[deviceID] ?? [] }
    }

    /// Keeps every unfinished command and the latest `history` finished ones.
    private func trimmed(_ list: [Command]) -> [Command] {
        let finished = list.filter { $0.state == .done || $0.state == .expired }
        guard finished.count > settings.history else { return list }
        let drop = Set(finished.prefix(finished.count - settings.history).map(\.id))
        return list.filter { !drop.contains($0.id) }
    }

    /// Reads a `devicecmd` body: one `ID=…&Return=…&CMD=…` report per line; lines without a
    /// numeric ID and Return are returned as errors.
    public static func parseResults(_ text: String, at now: Timestamp = .now) -> (results: [Result], errors: [String]) {
        var results: [Result] = []
        var errors: [String] = []
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) where !line.allSatisfy(\.isWhitespace) {
            var fields: [String: String] = [:]
            for part in line.split(separator: "&") {
                let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                fields[pair[0].trimmingCharacters(in: .whitespaces).uppercased()] = pair.count > 1 ? String(pair[1]) : ""
            }
            guard let id = fields["ID"].flatMap({ Int($0) }), let code = fields["RETURN"].flatMap({ Int($0) }) else {
                errors.append("devicecmd report '\(line.prefix(120))' lacks a numeric ID or Return (expected ID=<id>&Return=<code>&CMD=<command>)")
                continue
            }
            results.append(Result(id: id, returnCode: code, command: fields["CMD"], at: now))
        }
        return (results, errors)
    }
}

/// A command that cannot be queued, with the value and what would be valid.
public struct ZKTecoCommandError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
