import GatehouseCore
import NIOCore

/// Writes the JSON bodies of generated events straight into ByteBuffers from static fragments,
/// so that the generator spends its CPU on the wire rather than on JSONEncoder.
///
/// Each event is an `access.granted` card read, or with `alarmPercent` probability an
/// `alarm.panic` (no subject, no result). `dedupKey` is `<run id>-<seq>`, unique across runs.
/// With `eventBytes`, an `attributes.note` of `x`s brings each event up to that size, so other
/// forwarders can be measured with the same payload size as a real device's record.
struct EventBodyBuilder {
    private let batch: Int
    private let eventBytes: Int
    private let alarmPerTenThousand: UInt64
    private let runID: [UInt8]
    private var seq: UInt64 = 0
    private var random: SplitMix64
    private var cachedMillis: Int64 = -1
    private var cachedTime = ""

    init(batch: Int, alarmPercent: Double, seed: UInt64, eventBytes: Int = 0) {
        self.batch = batch
        self.eventBytes = eventBytes
        self.alarmPerTenThousand = UInt64((alarmPercent * 100).rounded())
        self.random = SplitMix64(seed: seed)
        self.runID = Array(String(seed & 0xffff_ffff, radix: 16).utf8)
    }

    /// How many events have been written so far.
    var eventCount: UInt64 { seq }

    /// One body: a single object when `batch` is 1, otherwise an array of `batch` objects.
    mutating func makeBody(allocator: ByteBufferAllocator, now: Timestamp) -> ByteBuffer {
        if now.milliseconds != cachedMillis {
            cachedMillis = now.milliseconds
            cachedTime = now.rfc3339
        }
        var buffer = allocator.buffer(capacity: batch * max(300, eventBytes + 16) + 2)
        if batch == 1 {
            writeEvent(into: &buffer)
        } else {
            buffer.writeStaticString("[")
            for index in 0..<batch {
                if index > 0 { buffer.writeStaticString(",") }
                writeEvent(into: &buffer)
            }
            buffer.writeStaticString("]")
        }
        return buffer
    }

    private mutating func writeEvent(into buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        seq += 1
        let isAlarm = random.next() % 10_000 < alarmPerTenThousand
        buffer.writeStaticString(isAlarm ? #"{"kind":"alarm.panic","occurredAt":""# : #"{"kind":"access.granted","occurredAt":""#)
        buffer.writeString(cachedTime)
        buffer.writeStaticString(#"","point":"door-1","direction":"in","#)
        if !isAlarm {
            buffer.writeStaticString(#""subject":{"type":"card","value":""#)
            buffer.writeDecimal(random.next() % 10_000_000_000, width: 10)
            buffer.writeStaticString(#""},"result":"granted","#)
        }
        buffer.writeStaticString(#""dedupKey":""#)
        buffer.writeBytes(runID)
        buffer.writeStaticString("-")
        buffer.writeDecimal(seq)
        buffer.writeStaticString(#"","attributes":{"reader":"R1","seq":"#)
        buffer.writeDecimal(seq)
        // `,"note":""` and the closing `}}` are 12 bytes.
        let padding = eventBytes - (buffer.writerIndex - start) - 12
        if padding > 0 {
            buffer.writeStaticString(#","note":""#)
            buffer.writeRepeatingByte(UInt8(ascii: "x"), count: padding)
            buffer.writeStaticString(#"""#)
        }
        buffer.writeStaticString("}}")
    }
}

extension ByteBuffer {
    /// Writes `value` in decimal, left-padded with zeros to `width` digits, without allocating.
    mutating func writeDecimal(_ value: UInt64, width: Int = 1) {
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        let count = Swift.max(digits, width)
        writeWithUnsafeMutableBytes(minimumWritableBytes: count) { out in
            var v = value
            for index in stride(from: count - 1, through: 0, by: -1) {
                out[index] = UInt8(truncatingIfNeeded: 0x30 + v % 10)
                v /= 10
            }
            return count
        }
    }
}

/// A small, fast pseudo-random generator (SplitMix64) for card numbers and the alarm mix.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
