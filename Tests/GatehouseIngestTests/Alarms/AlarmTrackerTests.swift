import GatehouseCore
import Testing

@testable import GatehouseIngest

extension AlarmTracker {
    /// `observe`, required to decide something (`#require` cannot wrap a mutating call).
    mutating func must(_ signal: AlarmSignal, now: Timestamp, sourceLocation: SourceLocation = #_sourceLocation) throws -> AlarmTransition {
        let transition = observe(signal, now: now)
        return try #require(transition, sourceLocation: sourceLocation)
    }
}

/// Starts, stops, repeats and incidents, on times passed in (no clock, no sleeping).
@Suite("AlarmTracker")
struct AlarmTrackerTests {
    static let t0 = Timestamp(milliseconds: 1_800_000_000_000)

    static func at(_ seconds: Double) -> Timestamp { t0.adding(seconds: seconds) }

    static func signal(
        _ edge: AlarmSignal.Edge, _ seconds: Double, kind: EventKind = .cameraIntrusion, point: String? = "1",
        code: String = "fielddetection"
    ) -> AlarmSignal {
        AlarmSignal(kind: kind, point: point, code: code, edge: edge, at: at(seconds))
    }

    @Test("an alarm repeated every second is one start; its end is one stop that names the start")
    func repeatsAreOneAlarm() throws {
        var tracker = AlarmTracker(deviceID: "cam-1")
        let start = try tracker.must(Self.signal(.active, 0), now: Self.at(0))
        #expect(start.state == .start)
        #expect(start.alarm.incident == start.alarm.id)
        for second in 1...30 {
            #expect(tracker.observe(Self.signal(.active, Double(second)), now: Self.at(Double(second))) == nil)
        }
        let stop = try tracker.must(Self.signal(.inactive, 31), now: Self.at(31))
        #expect(stop.state == .stop)
        #expect(stop.alarm.id == start.alarm.id)
        #expect(stop.alarm.startedAt == Self.at(0))
        #expect(stop.alarm.stopReason == .device)
        #expect(stop.occurredAt == Self.at(31))
        #expect(tracker.openCount == 0)
        // A second end of the same alarm is not news.
        #expect(tracker.observe(Self.signal(.inactive, 32), now: Self.at(32)) == nil)
    }

    @Test("a new alarm after a stop is a new start with a new id")
    func newAlarmAfterStop() throws {
        var tracker = AlarmTracker(deviceID: "cam-1", settings: .init(incidentWindow: .seconds(5)))
        let first = try tracker.must(Self.signal(.active, 0), now: Self.at(0))
        _ = tracker.observe(Self.signal(.inactive, 2), now: Self.at(2))
        let second = try tracker.must(Self.signal(.active, 60), now: Self.at(60))
        #expect(second.state == .start)
        #expect(second.alarm.id != first.alarm.id)
        #expect(second.alarm.incident == second.alarm.id, "a minute later is another incident")
    }

    @Test("an alarm the device stops repeating closes after the quiet time, at its last report")
    func quietStop() throws {
        var tracker = AlarmTracker(deviceID: "nvr-1", settings: .init(quiet: .seconds(10)))
        let start = try tracker.must(Self.signal(.active, 0, kind: .cameraMotion, code: "VMD"), now: Self.at(0))
        _ = tracker.observe(Self.signal(.active, 4, kind: .cameraMotion, code: "VMD"), now: Self.at(4))
        #expect(tracker.nextExpiry == Self.at(14))
        #expect(tracker.expire(now: Self.at(13.9)).isEmpty)
        let stops = tracker.expire(now: Self.at(14))
        #expect(stops.count == 1)
        let stop = try #require(stops.first)
        #expect(stop.alarm.id == start.alarm.id)
        #expect(stop.alarm.stopReason == .quiet)
        #expect(stop.occurredAt == Self.at(4))
        #expect(stop.draft.state == .stop)
        #expect(stop.draft.dedupKey == "alarm:\(start.alarm.id):stop")
        #expect(tracker.expire(now: Self.at(100)).isEmpty)
        #expect(tracker.nextExpiry == nil)
    }

    @Test("without a quiet time an alarm stays open however long the device is silent")
    func noQuietNoExpiry() {
        var tracker = AlarmTracker(deviceID: "cam-1")
        _ = tracker.observe(Self.signal(.active, 0), now: Self.at(0))
        #expect(tracker.expire(now: Self.at(86_400)).isEmpty)
        #expect(tracker.openCount == 1)
    }

    @Test("the state sent after subscribing: active alarms start once, marked initial; inactive ones are silent")
    func initialState() throws {
        var tracker = AlarmTracker(deviceID: "cam-1")
        #expect(tracker.observe(Self.signal(.initial(active: false), 0, code: "motion"), now: Self.at(0)) == nil)
        let start = try tracker.must(Self.signal(.initial(active: true), 0), now: Self.at(0))
        #expect(start.alarm.initial == true)
        // Re-subscribed: the same state again changes nothing.
        #expect(tracker.observe(Self.signal(.initial(active: true), 50), now: Self.at(50)) == nil)
        // Re-subscribed after the alarm ended during the outage: closed as a resync.
        let stop = try tracker.must(Self.signal(.initial(active: false), 90), now: Self.at(90))
        #expect(stop.alarm.id == start.alarm.id)
        #expect(stop.alarm.stopReason == .resync)
        #expect(stop.alarm.initial == nil)
    }

    @Test("several detectors on one point within the window are one incident; another point is another")
    func incidents() throws {
        var tracker = AlarmTracker(deviceID: "cam-1", settings: .init(incidentWindow: .seconds(10)))
        let intrusion = try tracker.must(Self.signal(.active, 0), now: Self.at(0))
        let line = try tracker.must(Self.signal(.active, 1, kind: .cameraLineCrossing, code: "linedetection"), now: Self.at(1))
        let motion = try tracker.must(Self.signal(.active, 1, kind: .cameraMotion, code: "VMD"), now: Self.at(1))
        #expect(line.alarm.incident == intrusion.alarm.id)
        #expect(motion.alarm.incident == intrusion.alarm.id)
        #expect(Set([intrusion.alarm.id, line.alarm.id, motion.alarm.id]).count == 3)
        let other = try tracker.must(Self.signal(.active, 1, point: "2"), now: Self.at(1))
        #expect(other.alarm.incident == other.alarm.id)
        // All ended; a detector firing 5 s later on point 1 still belongs to the incident, 30 s later not.
        for (kind, code) in [(EventKind.cameraIntrusion, "fielddetection"), (.cameraLineCrossing, "linedetection"), (.cameraMotion, "VMD")] {
            _ = tracker.observe(Self.signal(.inactive, 3, kind: kind, code: code), now: Self.at(3))
        }
        let late = try tracker.must(Self.signal(.active, 8, kind: .cameraMotion, code: "VMD"), now: Self.at(8))
        #expect(late.alarm.incident == intrusion.alarm.id)
        _ = tracker.observe(Self.signal(.inactive, 9, kind: .cameraMotion, code: "VMD"), now: Self.at(9))
        let later = try tracker.must(Self.signal(.active, 40, kind: .cameraMotion, code: "VMD"), now: Self.at(40))
        #expect(later.alarm.incident == later.alarm.id)
    }

    @Test("the same alarm read again after a restart of the tracker gets the same id, so the queue drops the replay")
    func stableIDs() throws {
        var a = AlarmTracker(deviceID: "cam-1")
        var b = AlarmTracker(deviceID: "cam-1")
        var c = AlarmTracker(deviceID: "cam-2")
        let one = try a.must(Self.signal(.active, 0), now: Self.at(0))
        let two = try b.must(Self.signal(.active, 0), now: Self.at(5))
        let three = try c.must(Self.signal(.active, 0), now: Self.at(0))
        #expect(one.alarm.id == two.alarm.id)
        #expect(one.alarm.id != three.alarm.id)
        #expect(one.alarm.id.count == 16)
        #expect(one.alarm.id.allSatisfy { "0123456789abcdef".contains($0) })
    }

    @Test("the end of an alarm the tracker never saw start is still reported, as a stop with no start time")
    func orphanStop() throws {
        var tracker = AlarmTracker(deviceID: "cam-1")
        let stop = try tracker.must(Self.signal(.inactive, 0), now: Self.at(0))
        #expect(stop.state == .stop)
        #expect(stop.alarm.startedAt == nil)
        #expect(stop.alarm.stopReason == .device)
        #expect(tracker.observe(Self.signal(.inactive, 1), now: Self.at(1)) == nil, "once, not on every repeat")
        #expect(tracker.observe(Self.signal(.inactive, 1, point: "2"), now: Self.at(1))?.state == .stop)
    }
}
