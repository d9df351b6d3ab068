import Foundation
@testable import GatehouseCore
import GatehouseSinks
import GatehouseQueue
import Logging
import Testing

@testable import GatehouseIngest

/// A real queue in a temporary directory with its group committer running, the configured
/// devices, and the `DriverContext` drivers get in the daemon.
final class IngestFixture: Sendable {
    let directory: String
    let config: GatehouseConfig
    let queue: EventQueue
    let context: DriverContext
    let requests: DeviceRequests
    let pipeline: IngestPipeline
    /// The clock the queue, the device directory and the drivers share; a test passes a `ManualClock` to move time.
    let clock: any DriverClock
    private let committer: Task<Void, Never>

    /// `devices` is the YAML list under `devices:`; `budget` the disk budget in bytes.
    init(
        devices: String, extra: String = "", budget: Int64 = 1 << 30, clock: any DriverClock = SystemClock(),
        logger: Logger = Logger(label: "ingest-tests"), reopening: String? = nil
    ) throws {
        self.clock = clock
        directory = reopening ?? FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-ingest-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let yaml = """
            site: test
            state_directory: \(directory)
            \(extra)
            devices:
            \(devices)
            sinks:
              - {name: out, type: file, path: \(directory)/out.ndjson}
            """
        config = try ConfigLoader.parse(yaml, file: "test.yaml", knownDrivers: DriverRegistry.names, driverOptions: DriverRegistry.options, sinkTypes: SinkRegistry.readers)
        queue = try EventQueue(path: directory + "/queue.sqlite", settings: config.queue, diskBudgetBytes: budget, clock: clock, logger: logger)
        let directory = DeviceDirectory(devices: config.devices, logger: logger, clock: clock)
        requests = DeviceRequests(config: config.ingest, devices: directory)
        pipeline = IngestPipeline(config: config, queue: queue, devices: directory, logger: logger)
        context = DriverContext(pipeline: pipeline, requests: requests, clock: clock)
        let queue = queue
        committer = Task { await queue.run() }
    }

    func device(_ id: String) throws -> DeviceContext {
        context.device(try #require(context.device(id: id)))
    }

    /// Every stored event, oldest first.
    func events() async throws -> [Event] {
        try await queue.registerSinks(["test"])
        return try queue.nextBatch(sink: "test", maxEvents: 1000).sorted { $0.seq < $1.seq }.map { try EventCoding.decode($0.body) }
    }

    /// Closes the queue and deletes the directory, unless it is `keeping` it for a restart (`reopening:`).
    func finish(keeping: Bool = false) async {
        queue.close()
        await committer.value
        if !keeping { try? FileManager.default.removeItem(atPath: directory) }
    }
}
