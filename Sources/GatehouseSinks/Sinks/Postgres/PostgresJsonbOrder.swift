import Foundation
import NIOCore

/// Writes a stored event body into the COPY data with every object's keys in the order `jsonb`
/// keeps them: shorter key first, keys of one length bytewise.
///
/// `jsonb` sorts each object's keys while it parses; the queue stores bodies with their keys in
/// alphabetical order (`EventCoding`'s documented form, which dedup hashes and signatures rely
/// on), so the server's sort never found them sorted and cost it about a tenth of its work per
/// row (docs/benchmarks.md, "PostgreSQL sink"). In `jsonb`'s order its sort only confirms the
/// order. The stored `jsonb` value is the same either way: only the text on the wire is
/// reordered, here, and the queue's bytes are not touched.
struct PostgresJsonbOrder {
    /// One object member as byte offsets into the body: from its key's opening quote to the start
    /// of its value, the key's contents, and its value.
    private struct Member {
        var keyStart: Int
        var keyContents: Range<Int>
        var value: Range<Int>
        /// The value is an object or an array, whose own objects are ordered too.
        var nested: Bool
    }

    /// The members of the objects being written, nested objects after their parent's; kept
    /// between bodies so a batch allocates it once.
    private var members: [Member] = []

    init() {
        members.reserveCapacity(64)
    }

    /// Writes `body` COPY-escaped in `jsonb`'s key order; a body it cannot walk (the server will
    /// judge it) is written as it is.
    mutating func write(_ body: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        var walk = JSONByteWalk(bytes: body)
        // Taken out of `self` for the walk: a local array passed inout is checked for exclusive
        // access at compile time, not at run time in every recursion.
        var scratch: [Member] = []
        swap(&scratch, &members)
        defer { swap(&scratch, &members) }
        scratch.removeAll(keepingCapacity: true)
        // At most two bytes out for each byte in (COPY's escapes; the walk only drops whitespace):
        // one reservation per body, where a checked `ByteBuffer` write per token cost a tenth of
        // this writer's time in the drain's profile.
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 2 * body.count) { raw in
            guard let base = raw.baseAddress else { return 0 }
            var out = CopyOutput(base: base)
            if Self.writeValue(&walk, &scratch, into: &out), walk.atEnd { return out.count }
            out.count = 0
            out.writeCopyEscaped(body)
            return out.count
        }
    }

    /// The body's COPY text, written into memory `write` reserved for it.
    private struct CopyOutput {
        let base: UnsafeMutableRawPointer
        var count = 0

        mutating func writeInteger(_ byte: UInt8) {
            base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
            count += 1
        }

        /// As `ByteBuffer.writeCopyEscaped`.
        mutating func writeCopyEscaped(_ bytes: UnsafeRawBufferPointer) {
            count += copyEscaped(bytes, to: base + count)
        }
    }

    private static func writeValue(_ walk: inout JSONByteWalk, _ members: inout [Member], into buffer: inout CopyOutput) -> Bool {
        walk.skipSpace()
        guard walk.index < walk.bytes.count else { return false }
        switch walk.bytes[walk.index] {
        case UInt8(ascii: "{"):
            return writeObject(&walk, &members, into: &buffer)
        case UInt8(ascii: "["):
            walk.index += 1
            buffer.writeInteger(UInt8(ascii: "["))
            if walk.take(UInt8(ascii: "]")) {
                buffer.writeInteger(UInt8(ascii: "]"))
                return true
            }
            while true {
                guard writeValue(&walk, &members, into: &buffer) else { return false }
                if walk.take(UInt8(ascii: ",")) {
                    buffer.writeInteger(UInt8(ascii: ","))
                    continue
                }
                guard walk.take(UInt8(ascii: "]")) else { return false }
                buffer.writeInteger(UInt8(ascii: "]"))
                return true
            }
        default:
            // A string or a scalar, copied as it is.
            let start = walk.index
            guard walk.skipValue() else { return false }
            buffer.writeCopyEscaped(UnsafeRawBufferPointer(rebasing: walk.bytes[start..<walk.index]))
            return true
        }
    }

    private static func writeObject(_ walk: inout JSONByteWalk, _ members: inout [Member], into buffer: inout CopyOutput) -> Bool {
        guard walk.take(UInt8(ascii: "{")) else { return false }
        buffer.writeInteger(UInt8(ascii: "{"))
        if walk.take(UInt8(ascii: "}")) {
            buffer.writeInteger(UInt8(ascii: "}"))
            return true
        }
        let first = members.count
        defer { members.removeSubrange(first...) }
        // A key with an escape is compared by `jsonb` as unescaped: such an object keeps its order.
        var sortable = true
        let bytes = walk.bytes
        while true {
            walk.skipSpace()
            let keyStart = walk.index
            guard let key = walk.string(), walk.take(UInt8(ascii: ":")) else { return false }
            sortable = sortable && key.plain
            walk.skipSpace()
            let valueStart = walk.index
            guard walk.skipValue() else { return false }
            let nested = bytes[valueStart] == UInt8(ascii: "{") || bytes[valueStart] == UInt8(ascii: "[")
            members.append(Member(keyStart: keyStart, keyContents: key.range, value: valueStart..<walk.index, nested: nested))
            if walk.take(UInt8(ascii: ",")) { continue }
            guard walk.take(UInt8(ascii: "}")) else { return false }
            break
        }
        if sortable { sortMembers(&members, from: first, in: bytes) }
        for index in first..<members.count {
            if index > first { buffer.writeInteger(UInt8(ascii: ",")) }
            let member = members[index]
            if member.nested {
                buffer.writeCopyEscaped(UnsafeRawBufferPointer(rebasing: bytes[member.keyStart..<member.value.lowerBound]))
                var value = JSONByteWalk(bytes: bytes, index: member.value.lowerBound)
                guard writeValue(&value, &members, into: &buffer) else { return false }
            } else {
                // `"key":value` in one piece (skipValue checked the value's extent).
                buffer.writeCopyEscaped(UnsafeRawBufferPointer(rebasing: bytes[member.keyStart..<member.value.upperBound]))
            }
        }
        buffer.writeInteger(UInt8(ascii: "}"))
        return true
    }

    /// Insertion sort of `members[first...]` into `jsonb`'s order: an event's objects hold a few
    /// to a dozen keys. Stable, so of a repeated key the last stays last, the one `jsonb` keeps.
    private static func sortMembers(_ members: inout [Member], from first: Int, in bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        func precedes(_ a: Range<Int>, _ b: Range<Int>) -> Bool {
            if a.count != b.count { return a.count < b.count }
            return memcmp(base + a.lowerBound, base + b.lowerBound, a.count) < 0
        }
        var index = first + 1
        while index < members.count {
            let member = members[index]
            var slot = index
            while slot > first, precedes(member.keyContents, members[slot - 1].keyContents) {
                members[slot] = members[slot - 1]
                slot -= 1
            }
            members[slot] = member
            index += 1
        }
    }
}
