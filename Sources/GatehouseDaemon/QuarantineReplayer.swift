import Foundation
import GatehouseCore
import GatehouseIngest
import GatehouseQueue
import Logging

/// Maps a quarantined payload again with the current config and drivers; what maps is
/// committed as events (with the original receive time) and the entry is marked replayed.
public struct QuarantineReplayer: Sendable {
    let config: GatehouseConfig
    let queue: EventQueue
    /// This replay's own driver instances, as a daemon run would make them.
    let drivers: [any Driver]

    public init(config: GatehouseConfig, queue: EventQueue, drivers: [any Driver] = DriverRegistry.makeAll()) {
        self.config = config
        self.queue = queue
        self.drivers = drivers
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public func replay(_ entry: QuarantineEntry) async -> Result<[EventID], Failure> {
        do {
            let events = try events(for: entry)
            // An event a sink rejected was accepted once: re-queue it as it is, past dedup.
            let outcomes = try await queue.appendNow(events, deduplicate: !entry.driver.hasPrefix("sink:"))
            var ids: [EventID] = []
            for outcome in outcomes {
                switch outcome {
                case .stored(let id), .duplicate(let id): ids.append(id)
                case .refused(let reason): return .failure(Failure(description: reason))
                }
            }
            try await queue.markReplayed(id: entry.id, eventIDs: ids)
            return .success(ids)
        } catch let failure as Failure {
            return .failure(failure)
        } catch let error as PayloadError {
            return .failure(Failure(description: error.reason))
        } catch {
            return .failure(Failure(description: "\(error)"))
        }
    }

    func events(for entry: QuarantineEntry) throws -> [Event] {
        if let discarded = entry.discarded {
            throw Failure(description: "discarded by \(discarded.by) at \(discarded.at.rfc3339): its payload was erased")
        }
        if let unreadable = entry.unreadable { throw Failure(description: unreadable) }
        guard !entry.truncated else {
            throw Failure(description: "payload was cut to \(entry.payload.count) of \(entry.payloadBytes) bytes when kept; it cannot be replayed")
        }
        // An event a sink's target rejected is already normalized: it goes back as it was, same id.
        if entry.driver.hasPrefix("sink:") {
            return [try EventCoding.decode(entry.payload)]
        }
        guard let driver = drivers.named(entry.driver) else {
            throw Failure(description: "driver '\(entry.driver)' is not in this build")
        }
        let payload = RawPayload(body: Array(entry.payload), contentType: entry.contentType, route: entry.route)
        let device: DeviceConfig
        if let deviceID = entry.deviceID {
            guard let configured = config.device(deviceID) else {
                throw Failure(description: "device '\(deviceID)' is not in the config (add it, or remove the entry)")
            }
            device = configured
        } else if let resolved = driver.resolveDevice(for: payload, remote: entry.remote, in: config.devices) {
            // Kept before its serial or address was configured: matched now, as the live route would.
            device = resolved
        } else {
            throw Failure(
                description: "no configured device matches this payload (route \(entry.route ?? "-"), from \(entry.remote ?? "-")); add the device with the serial or address it sends, reload, and replay again")
        }
        let drafts = try driver.decode(payload, device: device)
        var logger = Logger(label: "gatehouse.replay")
        logger.logLevel = .warning
        let pipeline = IngestPipeline(config: config, queue: queue, devices: DeviceDirectory(devices: [], logger: logger, clock: queue.clock), logger: logger)
        return drafts.map { pipeline.makeEvent($0, device: device, driver: driver.name, receivedAt: entry.receivedAt) }
    }
}
