import Foundation
import Histogram

/// Latency percentiles in milliseconds, read from a histogram recorded in microseconds.
struct LatencySummary: Codable, Sendable {
    var count: UInt64
    var p50: Double
    var p90: Double
    var p99: Double
    var p999: Double
    var max: Double
    var mean: Double

    init(microseconds histogram: Histogram<UInt64>) {
        func ms(_ micros: UInt64) -> Double { Double(micros) / 1000 }
        count = histogram.totalCount
        p50 = ms(histogram.valueAtPercentile(50))
        p90 = ms(histogram.valueAtPercentile(90))
        p99 = ms(histogram.valueAtPercentile(99))
        p999 = ms(histogram.valueAtPercentile(99.9))
        max = ms(histogram.max)
        mean = histogram.mean / 1000
    }

    /// A histogram for reply latencies: 1 µs to one hour, three significant digits.
    static func makeHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    }
}

/// A titled two-column table of labels and values, printed at the end of every subcommand.
struct TextTable {
    var title: String
    var rows: [(label: String, value: String)] = []

    init(_ title: String) { self.title = title }

    mutating func add(_ label: String, _ value: String) { rows.append((label, value)) }

    func render() -> String {
        let width = rows.map(\.label.count).max() ?? 0
        var lines = [title]
        for row in rows {
            lines.append("  " + row.label.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + row.value)
        }
        return lines.joined(separator: "\n")
    }
}

/// Number formatting shared by the reports.
enum Format {
    static func fixed(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }

    static func megabytes(_ bytes: Double) -> String { fixed(bytes / 1_048_576, 1) + " MB" }
}

/// Writes a report as pretty-printed JSON with sorted keys, for scripts that compare runs.
enum JSONReport {
    static func write(_ value: some Encodable, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(value).write(to: URL(fileURLWithPath: path))
    }
}

/// A failure of a benchmark run, with a message that names the offending value.
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
