import GatehouseCore
@testable import GatehouseIngest
import Testing

@Suite("Event rate")
struct EventRateTests {
    static func at(minute: Int64, second: Int64 = 0) -> Timestamp { Timestamp(milliseconds: 1_800_000_000_000 / 60_000 * 60_000 + minute * 60_000 + second * 1000) }

    @Test("events per minute over the last five minutes, on the times given")
    func window() {
        var rate = EventRate()
        #expect(rate.perMinute(at: Self.at(minute: 0)) == 0)
        for minute in 0..<5 { rate.record(12, at: Self.at(minute: Int64(minute), second: 10)) }
        // Four full minutes and no part of the fifth: 60 events over 4 minutes.
        #expect(rate.perMinute(at: Self.at(minute: 4, second: 0)) == 15)
        // Half of the current minute has passed: 60 events over 4.5 minutes.
        #expect(abs(rate.perMinute(at: Self.at(minute: 4, second: 30)) - 60 / 4.5) < 1e-9)
        // Minutes 0 and 1 fall out of the window; minute 6 is new.
        rate.record(6, at: Self.at(minute: 6, second: 1))
        #expect(rate.perMinute(at: Self.at(minute: 6, second: 0)) == Double(12 * 3 + 6) / 4)
        // A silent device comes down to zero.
        #expect(rate.perMinute(at: Self.at(minute: 30)) == 0)
    }

    @Test("the directory keeps a rate per device from the traffic it records, and forgets a removed device")
    func directory() {
        let directory = DeviceDirectoryTests.directory([DeviceDirectoryTests.device("gate-1")])
        _ = directory.markSeen("gate-1", events: 8, at: Self.at(minute: 0, second: 5))
        _ = directory.markSeen("gate-1", events: 4, at: Self.at(minute: 1, second: 5))
        #expect(directory.eventsPerMinute(at: Self.at(minute: 4))["gate-1"] == 3)
        directory.replace([])
        #expect(directory.eventsPerMinute(at: Self.at(minute: 4)).isEmpty)
    }
}
