import Foundation
import NIOCore

/// A batch as the text-format data of `COPY <table> (…) FROM STDIN`: one line per event with the
/// indexed columns read from its body by the gateway and the body itself for the `jsonb` column.
///
/// COPY straight into the table lets PostgreSQL insert a page of rows with one heap WAL record
/// where the `INSERT … SELECT` writes one per row (docs/benchmarks.md, "COPY straight into the
/// table"). Text format because PostgresNIO 1.33 offers no binary COPY.
struct PostgresCopyRows {
    /// The table's columns in the order each line carries them.
    static let columns = [
        "id", "occurred_at", "received_at", "site", "device", "kind", "priority", "subject_type", "subject", "body",
    ]

    /// Bytes per CopyData message: large enough that framing costs nothing, small enough that the
    /// server starts on the first rows while the rest are still on the way.
    static let chunkBytes = 256 * 1024

    /// The batch's bodies and how far the chunks written so far reach.
    private let bodies: [Data]
    private var written = 0
    private var jsonbOrder = PostgresJsonbOrder()
    private let decoder = JSONDecoder()

    /// A body COPY cannot carry: it lacks a column as a string, or holds a NUL (which no `text`
    /// column takes). The sink then sends that batch by its `INSERT`, so the server judges such a
    /// body exactly as it always did (refused, split out and quarantined).
    struct Uncopyable: Error {}

    init(_ bodies: [Data]) {
        self.bodies = bodies
    }

    /// The next lines, cut at a line end after about `chunkBytes`; nil after the last. Written one
    /// chunk at a time so the sink sends each as soon as it is ready and the server parses it
    /// while the gateway writes the next (`PostgresSink`).
    mutating func nextChunk() throws(Uncopyable) -> ByteBuffer? {
        guard written < bodies.count else { return nil }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(Self.chunkBytes + 4096)
        while written < bodies.count, buffer.readableBytes < Self.chunkBytes {
            guard writeLine(bodies[written], into: &buffer) else { throw Uncopyable() }
            written += 1
        }
        return buffer
    }

    /// Every chunk of `bodies`, or nil when one of them cannot go by COPY.
    static func chunks(of bodies: [Data]) -> [ByteBuffer]? {
        var rows = PostgresCopyRows(bodies)
        var chunks: [ByteBuffer] = []
        do {
            while let chunk = try rows.nextChunk() { chunks.append(chunk) }
        } catch {
            return nil
        }
        return chunks
    }

    /// One event's line: its columns, then its body in `jsonb`'s key order.
    private mutating func writeLine(_ body: Data, into buffer: inout ByteBuffer) -> Bool {
        body.withUnsafeBytes { bytes -> Bool in
            if let scan = PostgresColumnScan(bytes) {
                // The common case: every column a plain string, copied from the body as it is.
                for index in 0..<PostgresColumnScan.fieldCount {
                    if let range = scan.range(index) {
                        buffer.writeCopyEscaped(UnsafeRawBufferPointer(rebasing: bytes[range]))
                    } else {
                        buffer.writeStaticString("\\N")
                    }
                    buffer.writeInteger(UInt8(ascii: "\t"))
                }
            } else {
                // An escape in a column, or a body the scan cannot walk: decoded as before.
                guard let row = try? decoder.decode(Columns.self, from: body), row.isStorable else { return false }
                for field in row.fields {
                    if let field { buffer.writeCopyField(field) } else { buffer.writeStaticString("\\N") }
                    buffer.writeInteger(UInt8(ascii: "\t"))
                }
            }
            jsonbOrder.write(bytes, into: &buffer)
            buffer.writeInteger(UInt8(ascii: "\n"))
            return true
        }
    }

    /// The fields the `INSERT` reads with `->>` and `#>>`, decoded only this far: the rest of the
    /// body goes to the server as it is stored. For a body `PostgresColumnScan` leaves to it.
    struct Columns: Decodable {
        struct Device: Decodable { var id: String }
        struct Subject: Decodable {
            var type: String?
            var value: String?
        }
        var id: String
        var occurredAt: String
        var receivedAt: String
        var site: String
        var device: Device
        var kind: String
        var priority: String
        var subject: Subject?

        /// In the order of `columns` before the body; nil is NULL.
        var fields: [String?] { [id, occurredAt, receivedAt, site, device.id, kind, priority, subject?.type, subject?.value] }

        var isStorable: Bool { !fields.contains { $0?.utf8.contains(0) == true } }
    }
}

extension ByteBuffer {
    fileprivate mutating func writeCopyField(_ field: String) {
        var field = field
        field.withUTF8 { writeCopyEscaped(UnsafeRawBufferPointer($0)) }
    }

    /// Writes `bytes` as one COPY text field: the backslash, tab, newline and carriage return that
    /// would end or re-read the field are written as `\\`, `\t`, `\n`, `\r`; every other byte
    /// (UTF-8 included) is written as it is, in runs.
    mutating func writeCopyEscaped(_ bytes: UnsafeRawBufferPointer) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: 2 * bytes.count) { out in
            guard let base = out.baseAddress else { return 0 }
            return copyEscaped(bytes, to: base)
        }
    }
}

/// `bytes` COPY-escaped (see `ByteBuffer.writeCopyEscaped`) into `out`, which has room for twice
/// their count; returns the bytes written.
func copyEscaped(_ bytes: UnsafeRawBufferPointer, to out: UnsafeMutableRawPointer) -> Int {
    guard let source = bytes.baseAddress else { return 0 }
    var written = 0
    var runStart = 0
    for index in 0..<bytes.count {
        let escaped: UInt8
        switch bytes[index] {
        case UInt8(ascii: "\\"): escaped = UInt8(ascii: "\\")
        case UInt8(ascii: "\t"): escaped = UInt8(ascii: "t")
        case UInt8(ascii: "\n"): escaped = UInt8(ascii: "n")
        case UInt8(ascii: "\r"): escaped = UInt8(ascii: "r")
        default: continue
        }
        (out + written).copyMemory(from: source + runStart, byteCount: index - runStart)
        written += index - runStart
        (out + written).storeBytes(of: UInt8(ascii: "\\"), as: UInt8.self)
        (out + written + 1).storeBytes(of: escaped, as: UInt8.self)
        written += 2
        runStart = index + 1
    }
    (out + written).copyMemory(from: source + runStart, byteCount: bytes.count - runStart)
    return written + bytes.count - runStart
}
