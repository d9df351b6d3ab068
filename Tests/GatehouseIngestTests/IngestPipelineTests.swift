import Foundation
import GatehouseQueue
import Logging
import Testing

@testable import GatehouseCore
import GatehouseSinks
@testable import GatehouseIngest

/// What the pipeline decides for every driver: whose clock an event carries, and its content fingerprint.
@Suite("ingest pipeline")
struct IngestPipelineTests {
    static let settings = ClockSkewSettings(thresholdSeconds: 30, reportIntervalSeconds: 3600, maxAheadSeconds: 3600, earliestYear: 2015)
    static let received = Timestamp(milliseconds: 1_764_489_600_000)  // 2025-11-30T08:00:00Z

    static func judge(_ draft: EventDraft) -> DeviceTimeTrust.Verdict {
        DeviceTimeTrust.judge(draft, receivedAt: received, settings: settings)
    }

    @Test("a device time that can be trusted is the event's time")
    func trusted() {
        for offset in [-30 * 86_400.0, -1, 0, 1800] {  // a month-old backlog, now, half an hour ahead
            let at = Self.received.adding(seconds: offset)
            let verdict = Self.judge(EventDraft(kind: .doorOpened, occurredAt: at, deviceTime: "text"))
            #expect(verdict == .init(occurredAt: at, source: .device, reason: nil, deviceTime: "text"), "\(offset)")
        }
    }

    @Test("the fingerprint's bytes are fixed: a stored one must still match after an upgrade")
    func fingerprintIsStable() {
        // SHA-256 over big-endian length-prefixed fields (UInt32.max for an absent one), first 16 bytes.
        let value = EventFingerprint.of(
            kind: .vehicleEntry, subject: Subject(type: .plate, value: "川F12345"), deviceTime: "2025-03-14 08:12:09",
            point: nil, result: .granted)
        #expect(value == "439d9bc97d6d8a64550acf3c2822d61b")
    }

    @Test("the earliest trusted instant is 1 January of clock_skew.earliest_year, 00:00 UTC")
    func earliestInstant() {
        for year in [1971, 2000, 2015, 2024, 2100] {
            let start = ClockSkewSettings(thresholdSeconds: 30, reportIntervalSeconds: 3600, earliestYear: year).earliestMilliseconds
            #expect(Timestamp(milliseconds: start).rfc3339 == "\(year)-01-01T00:00:00.000Z")
            #expect(Timestamp(milliseconds: start - 1).rfc3339.hasPrefix("\(year - 1)-12-31T23:59:59"))
        }
    }

    @Test("no time, an unreadable time, far ahead, a reset clock: the gateway's clock, the reason, the device's text")
    func untrusted() {
        let none = Self.judge(EventDraft(kind: .doorOpened))
        #expect(none == .init(occurredAt: Self.received, source: .gateway, reason: "no device time", deviceTime: nil))

        let unreadable = Self.judge(EventDraft(kind: .doorOpened, deviceTime: "2025-02-30 10:00:00", timeIssue: "not a date"))
        #expect(unreadable.source == .gateway && unreadable.occurredAt == Self.received)
        #expect(unreadable.deviceTime == "2025-02-30 10:00:00" && unreadable.reason == "device time unreadable: not a date")

        let ahead = Self.judge(EventDraft(kind: .doorOpened, occurredAt: Self.received.adding(seconds: 7200)))
        #expect(ahead.source == .gateway && ahead.occurredAt == Self.received)
        #expect(ahead.reason?.contains("7200 s ahead") == true && ahead.deviceTime == "2025-11-30T10:00:00.000Z", "\(ahead)")

        let reset = Self.judge(EventDraft(kind: .doorOpened, occurredAt: Timestamp(milliseconds: 946_684_800_000), deviceTime: "2000-01-01 00:00:00"))
        #expect(reset.source == .gateway && reset.occurredAt == Self.received && reset.deviceTime == "2000-01-01 00:00:00")
        #expect(reset.reason?.contains("before 2015") == true, "\(reset)")
    }

    @Test("the fingerprint covers what the device said happened, not receive-side fields or extras")
    func fingerprint() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-pipeline-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "a-long-random-site-secret-for-tests".write(toFile: directory + "/hash.key", atomically: true, encoding: .utf8)
        let config = try ConfigLoader.parse(
            """
            site: test
            state_directory: \(directory)
            privacy: {plate: hash, hash_secret: {file: \(directory)/hash.key}}
            devices:
              - {id: cam-1, driver: generic-json, type: lpr-camera, direction: in, auth: {token: "t"}}
            sinks:
              - {name: out, type: file, path: \(directory)/out.ndjson}
            """, file: "test.yaml", knownDrivers: DriverRegistry.names, driverOptions: DriverRegistry.options, sinkTypes: SinkRegistry.readers)
        let logger = Logger(label: "pipeline-tests")
        let queue = try EventQueue(path: directory + "/queue.sqlite", settings: config.queue, diskBudgetBytes: 1 << 30, clock: MachineClock(), logger: logger)
        let pipeline = IngestPipeline(config: config, queue: queue, devices: DeviceDirectory(devices: config.devices, logger: logger, clock: MachineClock()), logger: logger)
        let device = try #require(config.device("cam-1"))
        let read = EventDraft(
            kind: .vehicleDetected, occurredAt: Self.received.adding(seconds: -5), deviceTime: "2025-11-30 15:59:55",
            subject: Subject(type: .plate, value: "川F12345"), result: .unknown, attributes: ["image": .string("sha256:aa")], dedupKey: "7")
        func print(_ draft: EventDraft, at received: Timestamp = Self.received) -> String? {
            pipeline.makeEvent(draft, device: device, driver: "generic-json", receivedAt: received).source.fingerprint
        }
        let base = try #require(print(read))
        #expect(base.count == 32 && base.allSatisfy(\.isHexDigit))
        var otherPicture = read
        otherPicture.attributes = ["image": .string("sha256:bb")]
        #expect(print(otherPicture) == base, "pictures and extras are not content")
        #expect(print(read, at: Self.received.adding(seconds: 9)) == base, "receive time is not content")
        var otherPlate = read
        otherPlate.subject = Subject(type: .plate, value: "川F12346")
        var otherTime = read
        otherTime.deviceTime = "2025-11-30 15:59:56"
        var otherPoint = read
        otherPoint.point = "lane-2"
        for changed in [otherPlate, otherTime, otherPoint] { #expect(print(changed) != base) }
        // An alarm's start and stop at the same second differ, and both reach the event.
        var start = EventDraft(kind: .cameraIntrusion, occurredAt: Self.received, deviceTime: "t", point: "1")
        start.apply(AlarmTransition(
            state: .start, alarm: AlarmRef(id: "00000000000000aa", incident: "00000000000000aa"), kind: .cameraIntrusion,
            point: "1", code: "fielddetection", occurredAt: Self.received))
        var stop = start
        stop.apply(AlarmTransition(
            state: .stop, alarm: AlarmRef(id: "00000000000000aa", incident: "00000000000000aa", stopReason: .device),
            kind: .cameraIntrusion, point: "1", code: "fielddetection", occurredAt: Self.received))
        #expect(print(start) != print(stop))
        let stopEvent = pipeline.makeEvent(stop, device: device, driver: "generic-json", receivedAt: Self.received)
        #expect(stopEvent.state == .stop && stopEvent.alarm?.stopReason == .device)
        #expect(stopEvent.source.dedupKey == "alarm:00000000000000aa:stop")
        #expect(stopEvent.priority == .alarm)
        // The fingerprint is taken after the privacy policy: the clear plate is not what was digested.
        let event = pipeline.makeEvent(read, device: device, driver: "generic-json", receivedAt: Self.received)
        #expect(event.subject?.treatment == .hashed)
        #expect(base == EventFingerprint.of(kind: .vehicleEntry, subject: event.subject, deviceTime: read.deviceTime, point: nil, result: .unknown))
    }
}
