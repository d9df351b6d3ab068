import Foundation
import GatehouseCore
import GatehouseQueue
import Logging

/// A real queue in a unique temporary directory; call `remove()` at the end of the test.
public struct QueueFixture: Sendable {
    public let directory: URL
    public let settings: QueueSettings
    public let budget: Int64
    public var queue: EventQueue

    public var path: String { directory.appendingPathComponent("queue.sqlite").path }

    public init(
        budget: Int64 = 1 << 30, commitMaxEvents: Int = 2000, quarantineMaxPayloadBytes: Int = 64 << 10,
        dedupWindowHours: Double = 72, logger: Logger = testLogger("gatehouse.queue.tests")
    ) throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("gatehouse-queue-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        settings = QueueSettings(
            commitMaxEvents: commitMaxEvents, quarantineMaxPayloadBytes: quarantineMaxPayloadBytes,
            dedupWindowHours: dedupWindowHours)
        self.budget = budget
        queue = try EventQueue(
            path: directory.appendingPathComponent("queue.sqlite").path, settings: settings,
            diskBudgetBytes: budget, clock: MachineClock(), logger: logger)
    }

    /// A second queue object on the same file, as after a restart.
    public func reopen() throws -> EventQueue {
        try EventQueue(path: path, settings: settings, diskBudgetBytes: budget, clock: MachineClock(), logger: testLogger("gatehouse.queue.tests"))
    }

    public func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// Silent unless GATEHOUSE_TEST_LOG is set (then to stderr); never bootstraps logging.
public func testLogger(_ label: String = "test") -> Logger {
    if ProcessInfo.processInfo.environment["GATEHOUSE_TEST_LOG"] != nil {
        var logger = Logger(label: label, factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = .debug
        return logger
    }
    return Logger(label: label, factory: { _ in SwiftLogNoOpLogHandler() })
}
