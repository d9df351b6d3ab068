import NIOCore

/// A live page's JSON as sent, with its ETag: the same figures give the same tag, so a browser
/// that has them gets a 304 and no body.
struct LiveReply: Sendable {
    let body: ByteBuffer
    let etag: String

    init(_ bytes: [UInt8]) {
        body = ByteBuffer(bytes: bytes)
        etag = "\"" + String(LiveJSON.fnv1a(bytes), radix: 16) + "\""
    }
}

/// The live JSON written by hand: a handful of string maps and tables, polled by every open
/// page, where Foundation's encoder cost more than the rest of the request. Keys are sorted, so
/// the same figures are the same bytes (and ETag).
enum LiveJSON {
    static func encode(_ data: LiveData) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(4096)
        out += #"{"fields":{"#.utf8
        for (index, key) in data.fields.keys.sorted().enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            string(key, into: &out)
            out.append(UInt8(ascii: ":"))
            string(data.fields[key] ?? "", into: &out)
        }
        out += #"},"tables":{"#.utf8
        for (index, key) in data.tables.keys.sorted().enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            string(key, into: &out)
            out += ":[".utf8
            for (rowIndex, row) in (data.tables[key] ?? []).enumerated() {
                if rowIndex > 0 { out.append(UInt8(ascii: ",")) }
                out += #"{"cells":["#.utf8
                for (cellIndex, cell) in row.cells.enumerated() {
                    if cellIndex > 0 { out.append(UInt8(ascii: ",")) }
                    out += #"{"text":"#.utf8
                    string(cell.text, into: &out)
                    if let href = cell.href {
                        out += #","href":"#.utf8
                        string(href, into: &out)
                    }
                    if let cls = cell.cls {
                        out += #","cls":"#.utf8
                        string(cls, into: &out)
                    }
                    out.append(UInt8(ascii: "}"))
                }
                out += "]}".utf8
            }
            out.append(UInt8(ascii: "]"))
        }
        out += "}}".utf8
        return out
    }

    /// A JSON string: quotes, backslashes and control characters escaped, the rest as UTF-8.
    static func string(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += #"\""#.utf8
            case UInt8(ascii: "\\"): out += #"\\"#.utf8
            case 0x0A: out += #"\n"#.utf8
            case 0x0D: out += #"\r"#.utf8
            case 0x09: out += #"\t"#.utf8
            case 0..<0x20, 0x7F:
                let hex = Array("0123456789abcdef".utf8)
                out += #"\u00"#.utf8
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// FNV-1a, 64 bits: an ETag needs to change when the bytes do, not to resist forgery.
    static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }
}
