import Foundation

/// The byte ranges of the table's indexed columns inside one stored event body, found by one walk
/// over its JSON bytes: no `JSONDecoder`, no `String`, nothing allocated.
///
/// Decoding each body with `JSONDecoder` to read nine strings cost the daemon about 10 µs per event
/// (docs/benchmarks.md, "PostgreSQL sink"), as much as COPY saved the server. The walk answers only
/// when every column it reports is a plain JSON string (no escape), which is then its value byte
/// for byte; anything else (an escape in a column or in a key it must compare, a column that is not
/// a string, a body it cannot walk) is `nil`, and the caller decodes that body as before, so the
/// columns are always what `JSONDecoder` would read.
struct PostgresColumnScan {
    /// Columns in the order of `PostgresCopyRows.columns` before the body: `id`, `occurredAt`,
    /// `receivedAt`, `site`, `device.id`, `kind`, `priority`, `subject.type`, `subject.value`.
    static let fieldCount = 9
    /// The first seven are required; the subject's two are NULL when absent or null.
    static let requiredCount = 7

    /// Byte offsets into the body of each field's contents (between its quotes); -1 when absent.
    /// SIMD vectors rather than arrays: they live inline, so a scan allocates nothing.
    private(set) var starts = SIMD16<Int>(repeating: -1)
    private(set) var ends = SIMD16<Int>(repeating: -1)
    /// The fields (bits 0–8) and the `device` and `subject` objects (bits 9, 10) met so far.
    private var seen: UInt16 = 0

    init?(_ body: UnsafeRawBufferPointer) {
        var walk = JSONByteWalk(bytes: body)
        guard walk.object(level: .top, into: &self), walk.atEnd else { return nil }
        for index in 0..<Self.requiredCount where starts[index] < 0 { return nil }
    }

    /// Field `index`'s byte range in the body, or nil when absent.
    func range(_ index: Int) -> Range<Int>? {
        starts[index] < 0 ? nil : starts[index]..<ends[index]
    }

    fileprivate mutating func set(_ index: Int, _ range: Range<Int>?) {
        starts[index] = range?.lowerBound ?? -1
        ends[index] = range?.upperBound ?? -1
    }

    /// Notes that field or object `bit` was met; false the second time. A repeated key is left to
    /// the decoder, which keeps the first value where `jsonb` keeps the last.
    fileprivate mutating func meet(_ bit: Int) -> Bool {
        let mask = UInt16(1) << UInt16(bit)
        guard seen & mask == 0 else { return false }
        seen |= mask
        return true
    }

    /// Which object the walk is in: the event itself, its `device` or its `subject`.
    fileprivate enum Level { case top, device, subject }

    /// Which column a key names at `level`, or which nested object it opens.
    fileprivate static func slot(_ key: UnsafeRawBufferPointer, level: Level) -> Int? {
        switch level {
        case .top:
            switch key.count {
            case 2: return key.spells("id") ? 0 : nil
            case 4: return key.spells("site") ? 3 : key.spells("kind") ? 5 : nil
            case 8: return key.spells("priority") ? 6 : nil
            case 10: return key.spells("occurredAt") ? 1 : key.spells("receivedAt") ? 2 : nil
            default: return nil
            }
        case .device: return key.spells("id") ? 4 : nil
        case .subject: return key.spells("type") ? 7 : key.spells("value") ? 8 : nil
        }
    }
}

extension UnsafeRawBufferPointer {
    /// Byte for byte equal to `name` (a key compared without building a String).
    fileprivate func spells(_ name: StaticString) -> Bool {
        guard count == name.utf8CodeUnitCount, let base = baseAddress else { return false }
        return memcmp(base, name.utf8Start, count) == 0
    }
}

/// A cursor over a JSON body's bytes (also `PostgresJsonbOrder`'s). Every method returns false for
/// what it cannot walk.
struct JSONByteWalk {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    var atEnd: Bool {
        mutating get {
            skipSpace()
            return index == bytes.count
        }
    }

    mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func take(_ byte: UInt8) -> Bool {
        skipSpace()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// A string starting at `index` (its opening quote): its contents' range and whether it holds
    /// an escape. A raw NUL, which no `text` column takes, counts as one: the decoder refuses it.
    mutating func string() -> (range: Range<Int>, plain: Bool)? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        index += 1
        let start = index
        var plain = true
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                index += 1
                return (start..<(index - 1), plain)
            case UInt8(ascii: "\\"):
                plain = false
                index += 2
            case 0:
                plain = false
                index += 1
            default:
                index += 1
            }
        }
        return nil
    }

    /// Skips any value: strings with their escapes, nested objects and arrays, and scalars up to
    /// the next delimiter (their spelling is the server's to judge, as before).
    mutating func skipValue() -> Bool {
        skipSpace()
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            return string() != nil
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    guard string() != nil else { return false }
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 {
                        index += 1
                        return true
                    }
                default: break
                }
                index += 1
            }
            return false
        default:
            let start = index
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x09, 0x0A, 0x0D:
                    return index > start
                default: index += 1
                }
            }
            return false
        }
    }

    /// True when the value at `index` is the literal `null` (consumed).
    mutating func null() -> Bool {
        skipSpace()
        guard index + 4 <= bytes.count, bytes[index] == UInt8(ascii: "n"), bytes[index + 1] == UInt8(ascii: "u"),
            bytes[index + 2] == UInt8(ascii: "l"), bytes[index + 3] == UInt8(ascii: "l")
        else { return false }
        index += 4
        return true
    }
}

extension JSONByteWalk {
    /// Walks one object at `index`, noting the columns `level` holds.
    fileprivate mutating func object(level: PostgresColumnScan.Level, into scan: inout PostgresColumnScan) -> Bool {
        guard take(UInt8(ascii: "{")) else { return false }
        if take(UInt8(ascii: "}")) { return true }
        while true {
            skipSpace()
            guard let keyString = string(), take(UInt8(ascii: ":")) else { return false }
            skipSpace()
            // An escaped key might spell a column's name: the decoder decides that body.
            guard keyString.plain else { return false }
            let key = UnsafeRawBufferPointer(rebasing: bytes[keyString.range])
            if let slot = PostgresColumnScan.slot(key, level: level) {
                guard scan.meet(slot) else { return false }
                if level == .subject, null() {
                    scan.set(slot, nil)
                } else {
                    guard let value = string(), value.plain else { return false }
                    scan.set(slot, value.range)
                }
            } else if level == .top, key.spells("device") {
                guard scan.meet(9) else { return false }
                guard object(level: .device, into: &scan) else { return false }
            } else if level == .top, key.spells("subject") {
                guard scan.meet(10) else { return false }
                if !null() {
                    guard object(level: .subject, into: &scan) else { return false }
                }
            } else {
                guard skipValue() else { return false }
            }
            if take(UInt8(ascii: ",")) { continue }
            return take(UInt8(ascii: "}"))
        }
    }
}
