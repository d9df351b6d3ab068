import Foundation
import GatehouseCore
import Hummingbird

/// GB/T 28181 cameras and NVRs that register to the gateway as to their upper platform (SIP
/// over UDP and TCP): Digest registration, keepalives, alarms, catalog and device queries.
/// See Drivers/GB28181/README.md.
public struct GB28181Driver: Driver {
    public let name = "gb28181"
    public let runsPerDevice = true
    /// Messages refused or dropped on every port of this driver, by reason.
    public let counters: GB28181Counters
    let listeners: GB28181Listeners

    public init() {
        let counters = GB28181Counters()
        self.counters = counters
        listeners = GB28181Listeners(counters: counters)
    }

    public func mountRoutes(on router: RouterGroup<IngestRequestContext>, context: DriverContext) {}

    public var options: DriverOptionSet { DriverOptionSet(GB28181Settings.declarations) }

    public func validate(device: DeviceConfig) -> [String] {
        switch GB28181Settings.parse(device) {
        case .success: []
        case .failure(let error): error.problems
        }
    }

    /// Reads one kept Alarm body (quarantine replay).
    public func decode(_ payload: RawPayload, device: DeviceConfig) throws(PayloadError) -> [EventDraft] {
        let body: MANSCDPBody
        do {
            body = try MANSCDPBody.parse(payload.body)
        } catch {
            throw PayloadError(error.description)
        }
        guard body.root == "Notify", body.cmdType == "Alarm" else { return [] }
        let kinds = (try? GB28181Settings.parse(device).get())?.kinds ?? [:]
        return [GB28181AlarmKinds.draft(body, deviceID: device.serial ?? device.id, zone: device.timeZone, overrides: kinds, channelName: nil)]
    }

    /// Attaches the device to its port's registrar and watches its keepalives until cancelled.
    public func run(device: DeviceConfig, context: DriverContext) async throws {
        let settings = try GB28181Settings.parse(device).get()
        let deviceContext = context.device(device)
        let session = GB28181Session(settings: settings, context: deviceContext, counters: counters)
        // A registration from before a restart, still valid: taken back before the port opens, so
        // the device's next keepalive is accepted and nothing is announced twice.
        let saved = GB28181SavedRegistration.decode(try? await deviceContext.cursor())
        let restored = saved.map { session.restore($0, peer: nil, now: context.clock.now) } ?? false
        if let saved, restored, saved.online { deviceContext.resume() }
        let listener = try await listeners.acquire(session, host: settings.listenHost, port: settings.listenPort, clock: context.clock, logger: context.logger)
        if let saved, restored {
            // Over UDP the gateway can reach the device at once; over TCP only once it connects again.
            if saved.transport == SIPPeer.Transport.udp.rawValue, let host = saved.host, let port = saved.port, let peer = listener.udpPeer(host: host, port: port) {
                session.state.withLock { s in if s.peer == nil { s.peer = peer } }
            }
            session.publish()
            deviceContext.logger.notice("gb28181: device \(settings.deviceID) registration taken back from before the restart (until \(saved.expiresAt?.rfc3339 ?? "?"), \(saved.channels.count) channel(s))")
        }
        // Checks at least every 5 s, so an offline is seen within the timeout plus 5 s.
        let check = Duration.milliseconds(Int64(min(5, settings.keepaliveIntervalSeconds) * 1000))
        while !Task.isCancelled {
            do {
                try await context.clock.sleep(for: check)
            } catch {
                break
            }
            await session.sweep(now: context.clock.now)
        }
        await listeners.release(session, port: settings.listenPort)
    }

}
