import Foundation
import Testing

@testable import GatehouseCore

@Suite("ClockSkewMonitor")
struct ClockSkewMonitorTests {
    static let start = Timestamp(milliseconds: 1_750_000_000_000)

    static func monitor(threshold: Double = 30, interval: Double = 3600) -> ClockSkewMonitor {
        ClockSkewMonitor(settings: ClockSkewSettings(thresholdSeconds: threshold, reportIntervalSeconds: interval))
    }

    /// A sample from a device whose clock is `behind` seconds behind ours, delivered `delay` seconds late.
    static func observe(
        _ monitor: inout ClockSkewMonitor, at received: Timestamp, behind: Double, delay: Double = 0
    ) -> ClockSkewMonitor.Report? {
        monitor.observe(occurredAt: received.adding(seconds: -(behind + delay)), receivedAt: received)
    }

    @Test("a device 120 s behind is reported once the gap has held for a minute")
    func behind() throws {
        var monitor = Self.monitor()
        #expect(monitor.estimateSeconds == nil)
        #expect(Self.observe(&monitor, at: Self.start, behind: 120) == nil, "one old-looking event may be a replay")
        #expect(monitor.estimateSeconds.map { abs($0 - 120) < 0.01 } == true)
        #expect(Self.observe(&monitor, at: Self.start.adding(seconds: 30), behind: 120) == nil)
        let report = try #require(Self.observe(&monitor, at: Self.start.adding(seconds: 60), behind: 120))
        #expect(abs(report.skewSeconds - 120) < 0.01)
        #expect(report.samples == 3)
    }

    @Test("a device 120 s ahead is reported at the first sample: no delay explains a time in the future")
    func ahead() throws {
        var monitor = Self.monitor()
        let report = try #require(Self.observe(&monitor, at: Self.start, behind: -120))
        #expect(abs(report.skewSeconds + 120) < 0.01)
        #expect(report.samples == 1)
    }

    @Test("a clock that falls behind is reported once older, correct samples leave the window")
    func fallsBehindLater() throws {
        var monitor = Self.monitor()
        var time = Self.start
        for _ in 0..<10 {
            _ = Self.observe(&monitor, at: time, behind: 1)
            time = time.adding(seconds: 30)
        }
        var report: ClockSkewMonitor.Report?
        var steps = 0
        while report == nil, steps < 100 {
            report = Self.observe(&monitor, at: time, behind: 600)
            time = time.adding(seconds: 30)
            steps += 1
        }
        let found = try #require(report)
        #expect(found.skewSeconds == 600)
        #expect(Double(steps) * 30 <= monitor.windowSeconds + 60, "detected within the window plus the settle time")
    }

    @Test("a device 300 s ahead with random delivery delays is estimated within the smallest delay")
    func aheadWithJitter() throws {
        var monitor = Self.monitor()
        var rng = SystemRandomNumberGenerator()
        var reports: [ClockSkewMonitor.Report] = []
        for index in 0..<40 {
            let delay = Double.random(in: 0...5, using: &rng)
            if let report = Self.observe(&monitor, at: Self.start.adding(seconds: Double(index) * 10), behind: -300, delay: delay) {
                reports.append(report)
            }
        }
        let estimate = try #require(monitor.estimateSeconds)
        #expect(estimate >= -300.001 && estimate <= -295, "estimate \(estimate)")
        #expect(reports.count == 1, "one report per interval")
        let report = try #require(reports.first)
        #expect(report.skewSeconds >= -300.001 && report.skewSeconds <= -295)
    }

    @Test("the smallest gap wins: a slow delivery does not move the estimate up")
    func minimumGap() {
        var monitor = Self.monitor()
        _ = Self.observe(&monitor, at: Self.start, behind: 100, delay: 50)
        #expect(monitor.estimateSeconds == 150)
        _ = Self.observe(&monitor, at: Self.start.adding(seconds: 1), behind: 100, delay: 0)
        #expect(monitor.estimateSeconds == 100)
        _ = Self.observe(&monitor, at: Self.start.adding(seconds: 2), behind: 100, delay: 400)
        #expect(monitor.estimateSeconds == 100)
    }

    @Test("a correct clock within the threshold is never reported")
    func withinThreshold() {
        var monitor = Self.monitor(threshold: 30)
        for index in 0..<50 {
            #expect(Self.observe(&monitor, at: Self.start.adding(seconds: Double(index)), behind: 20, delay: Double(index % 3)) == nil)
        }
        #expect(Self.observe(&monitor, at: Self.start.adding(seconds: 100), behind: -29) == nil)
    }

    @Test("replayed old records (large delays) are not reported when the clock is right")
    func replayedRecordsInterleaved() {
        var monitor = Self.monitor()
        var time = Self.start
        for _ in 0..<5 {
            #expect(Self.observe(&monitor, at: time, behind: 0, delay: 0.5) == nil)
            time = time.adding(seconds: 1)
        }
        // A burst of records the device kept while it was offline, minutes to hours old.
        for age in [7200.0, 5400, 3600, 1800, 900, 600, 300, 120, 60, 45] {
            #expect(Self.observe(&monitor, at: time, behind: 0, delay: age) == nil)
            time = time.adding(seconds: 0.1)
        }
        #expect(monitor.estimateSeconds == 0.5)
    }

    @Test("a long offline backlog (more records than fit a window) does not raise a false report")
    func longBacklog() {
        var monitor = Self.monitor()
        var time = Self.start
        for _ in 0..<20 {
            _ = Self.observe(&monitor, at: time, behind: 0, delay: 0.5)
            time = time.adding(seconds: 10)
        }
        var reports: [ClockSkewMonitor.Report] = []
        for index in 0..<100 {
            let age = 7200 - Double(index) * 72
            if let report = Self.observe(&monitor, at: time, behind: 0, delay: age) { reports.append(report) }
            time = time.adding(seconds: 0.05)
        }
        #expect(reports.isEmpty, "\(reports)")
    }

    @Test("reports are rate-limited by report_interval_seconds")
    func rateLimited() throws {
        var monitor = Self.monitor(threshold: 30, interval: 3600)
        let first = try #require(Self.observe(&monitor, at: Self.start, behind: -120))
        #expect(first.skewSeconds == -120)
        // Every minute for the rest of the hour: still skewed, but not reported again.
        for minute in 1..<60 {
            #expect(Self.observe(&monitor, at: Self.start.adding(seconds: Double(minute) * 60), behind: -120) == nil)
        }
        #expect(Self.observe(&monitor, at: Self.start.adding(seconds: 3599.9), behind: -120) == nil)
        let second = try #require(Self.observe(&monitor, at: Self.start.adding(seconds: 3600), behind: -120))
        #expect(second.skewSeconds == -120)
        #expect(second.samples == 12, "only samples of the last 600 s count: 3000…3540 every minute, 3599.9 and 3600")
        #expect(Self.observe(&monitor, at: Self.start.adding(seconds: 3660), behind: -120) == nil)
    }

    @Test("a device that was not skewed at first is reported as soon as it is")
    func becomesSkewed() throws {
        var monitor = Self.monitor(threshold: 30, interval: 3600)
        var time = Self.start
        for _ in 0..<20 {
            #expect(Self.observe(&monitor, at: time, behind: 1) == nil)
            time = time.adding(seconds: 60)
        }
        // The clock jumps 10 minutes back; once the window holds only new samples, it is reported.
        var report: ClockSkewMonitor.Report?
        for _ in 0..<16 where report == nil {
            report = Self.observe(&monitor, at: time, behind: 600)
            time = time.adding(seconds: 60)
        }
        let found = try #require(report)
        #expect(found.skewSeconds == 600)
    }
}
