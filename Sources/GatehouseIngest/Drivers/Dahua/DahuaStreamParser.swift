import GatehouseCore

/// One event record of a Dahua camera: `Code=…;action=…;index=n[;data={…}]` in the attach
/// stream, or one entry of an RPC `eventList` / HTTP-upload `Events` list.
struct DahuaEvent: Sendable, Equatable {
    var code: String
    /// `Start`, `Stop`, `Pulse`, or whatever the firmware wrote.
    var action: String
    /// The channel, alarm input or door, 0-based as the camera counts.
    var index: Int?
    var data: JSONValue?
    /// The record as it came, kept in quarantine when it cannot be mapped.
    var raw: [UInt8]
}

/// What the attach stream yields, in order.
enum DahuaStreamItem: Sendable, Equatable {
    /// The `Heartbeat` body: the stream is alive; not an event.
    case heartbeat
    case event(DahuaEvent)
    /// Bytes that are not a record (garbage, a truncated part, JSON that does not parse), with why.
    case malformed(bytes: [UInt8], reason: String)
}

/// Reads the `eventManager.cgi?action=attach` stream incrementally.
///
/// Firmware writes `--myboundary` parts with a `Content-Length` that is missing, 0, or off by
/// the trailing CRLF, and `data=` JSON pretty-printed over many lines. So the parser never
/// slices by `Content-Length`: it reads lines, skips boundary and part headers, and ends a
/// `data=` value by brace matching that ignores braces inside strings. A record is yielded as
/// soon as its closing brace (or, without `data=`, its line end) arrives, not when the next part
/// does. A line starting with `--` inside `data=` means the part was cut short: that record is
/// quarantined and the next part read. Memory is bounded: a record or garbage run longer than
/// `maxRecordBytes` is yielded as malformed and skipped up to the next boundary.
struct DahuaStreamParser: Sendable {
    /// The default cap on one record (and on one run of garbage kept for quarantine).
    static let defaultMaxRecordBytes = 256 * 1024

    let maxRecordBytes: Int
    private var buffer: [UInt8] = []
    private var position = 0
    private var inHeaders = false
    private var garbage: [UInt8] = []
    /// After an oversized record: drop bytes up to the next boundary line.
    private var skipping = false
    private var out: [DahuaStreamItem] = []

    init(maxRecordBytes: Int = DahuaStreamParser.defaultMaxRecordBytes) {
        self.maxRecordBytes = max(1024, maxRecordBytes)
    }

    /// Bytes held waiting for the rest of a record; never much more than `maxRecordBytes`.
    var bufferedBytes: Int { buffer.count - position + garbage.count }

    /// Takes the next bytes from the connection; returns the items they completed.
    mutating func feed(_ bytes: some Sequence<UInt8>) -> [DahuaStreamItem] {
        buffer.append(contentsOf: bytes)
        while step() {}
        if position > 0 {
            buffer.removeFirst(position)
            position = 0
        }
        return take()
    }

    /// The stream ended: what is left is a truncated record or garbage.
    mutating func finish() -> [DahuaStreamItem] {
        while step() {}
        let rest = Array(buffer[position...])
        buffer = []
        position = 0
        if rest.contains(where: { !Self.isSpace($0) }) && !skipping {
            if Self.startsWith(rest[...], Self.codePrefix) {
                flushGarbage()
                out.append(.malformed(bytes: rest, reason: "truncated record: the stream ended before it was complete"))
            } else {
                garbage += rest
            }
        }
        flushGarbage()
        return take()
    }

    private mutating func take() -> [DahuaStreamItem] {
        defer { out = [] }
        return out
    }

    // MARK: - Lines

    private static let codePrefix = Array("Code=".utf8)
    private static let heartbeat = Array("Heartbeat".utf8)
    private static let dataKey = Array("data=".utf8)
    private static let boundary = Array("--myboundary".utf8)

    /// Parses one line or record at `position`; false when more bytes are needed.
    private mutating func step() -> Bool {
        guard position < buffer.count else { return false }
        let lineEnd = buffer[position...].firstIndex(of: 0x0A)
        if skipping {
            guard let lineEnd else {
                // Keep only a tail that could begin a boundary line.
                position = max(position, buffer.count - 2)
                return false
            }
            if Self.startsWith(buffer[position..<lineEnd], [0x2D, 0x2D]) { (skipping, inHeaders) = (false, true) }
            position = lineEnd + 1
            return true
        }
        let line = lineEnd.map { Self.trimCR(buffer[position..<$0]) } ?? buffer[position...]
        if Self.startsWith(line, Self.codePrefix) {
            flushGarbage()
            inHeaders = false
            return record(lineEnd: lineEnd)
        }
        guard let lineEnd else {
            if line.elementsEqual(Self.heartbeat) {
                // A heartbeat at the end of a read: yield it now, not when the next part comes.
                flushGarbage()
                out.append(.heartbeat)
                position = buffer.count
            } else if buffer.count - position > maxRecordBytes {
                garbage += buffer[position...]
                position = buffer.count
                flushGarbage()
            }
            return false
        }
        position = lineEnd + 1
        if inHeaders {
            if line.isEmpty {
                inHeaders = false
                return true
            }
            if Self.isHeader(line) { return true }
            inHeaders = false
        }
        if line.allSatisfy(Self.isSpace) { return true }
        if Self.startsWith(line, [0x2D, 0x2D]) {
            flushGarbage()
            inHeaders = true
        } else if line.elementsEqual(Self.heartbeat) {
            flushGarbage()
            out.append(.heartbeat)
        } else {
            garbage += line
            garbage.append(0x0A)
            if garbage.count >= maxRecordBytes { flushGarbage() }
        }
        return true
    }

    private mutating func flushGarbage() {
        guard !garbage.isEmpty else { return }
        let kept = Array(garbage.prefix(maxRecordBytes))
        out.append(.malformed(bytes: kept, reason: "not a Dahua event record (expected Heartbeat, a --boundary part or Code=…;action=…;index=…)"))
        garbage = []
    }

    /// A record starting at `position`: up to its line end, or with `data=` up to the brace
    /// that closes the JSON, across lines.
    private mutating func record(lineEnd: Int?) -> Bool {
        let start = position
        let lineLimit = lineEnd ?? buffer.count
        guard let dataAt = Self.find(Self.dataKey, in: buffer, from: start, to: lineLimit) else {
            guard let lineEnd else { return oversized(from: start) }
            position = lineEnd + 1
            out.append(Self.parse(record: Self.trimCR(buffer[start..<lineEnd]), data: nil))
            return true
        }
        var index = dataAt + Self.dataKey.count
        while index < buffer.count, buffer[index] == 0x20 || buffer[index] == 0x09 { index += 1 }
        guard index < buffer.count else { return oversized(from: start) }
        guard buffer[index] == 0x7B || buffer[index] == 0x5B else {
            // data= that is not JSON: the rest of the line, reported as such.
            guard let lineEnd else { return oversized(from: start) }
            position = lineEnd + 1
            out.append(.malformed(bytes: Array(Self.trimCR(buffer[start..<lineEnd])), reason: "data= is not a JSON object"))
            return true
        }
        let jsonStart = index
        var depth = 0
        var inString = false
        var escaped = false
        while index < buffer.count {
            let byte = buffer[index]
            if byte == 0x2D, buffer[index...].starts(with: Self.boundary.prefix(buffer.count - index)) {
                // Dahua's boundary, even mid-line (a part cut without its CRLF): the record ends here.
                guard buffer.count - index >= Self.boundary.count else { return oversized(from: start) }
                out.append(.malformed(
                    bytes: Array(Self.trimCR(buffer[start..<index])),
                    reason: "truncated record: the part ended before data's closing brace"))
                position = index
                return true
            }
            if byte == 0x0A {
                // JSON never starts a line with "--": that is the next part's boundary.
                guard index + 2 < buffer.count else { return oversized(from: start) }
                if buffer[index + 1] == 0x2D && buffer[index + 2] == 0x2D {
                    out.append(.malformed(
                        bytes: Array(Self.trimCR(buffer[start..<index])),
                        reason: "truncated record: the part ended before data's closing brace"))
                    position = index + 1
                    return true
                }
                // A raw line break cannot be inside a JSON string: resynchronise on it.
                (inString, escaped) = (false, false)
            } else if inString {
                if escaped {
                    escaped = false
                } else if byte == 0x5C {
                    escaped = true
                } else if byte == 0x22 {
                    inString = false
                }
            } else {
                switch byte {
                case 0x22: inString = true
                case 0x7B, 0x5B: depth += 1
                case 0x7D, 0x5D:
                    depth -= 1
                    if depth == 0 {
                        position = index + 1
                        out.append(Self.parse(record: buffer[start..<jsonStart], data: buffer[jsonStart...index]))
                        return true
                    }
                default: break
                }
            }
            index += 1
        }
        return oversized(from: start)
    }

    /// An incomplete record: wait for more, unless it already exceeds the cap.
    private mutating func oversized(from start: Int) -> Bool {
        guard buffer.count - start > maxRecordBytes else { return false }
        out.append(.malformed(
            bytes: Array(buffer[start..<(start + maxRecordBytes)]),
            reason: "record longer than \(maxRecordBytes) bytes without its end; skipped to the next part"))
        position = buffer.count
        skipping = true
        return false
    }

    // MARK: - One record

    /// `Code=X;action=Y;index=N;` (and the `data=` JSON, when there is one) to an event.
    static func parse(record head: ArraySlice<UInt8>, data: ArraySlice<UInt8>?) -> DahuaStreamItem {
        let raw = Array(head) + Array(data ?? [])
        var fields: [String: String] = [:]
        for pair in String(decoding: head, as: UTF8.self).split(separator: ";") {
            guard let equals = pair.firstIndex(of: "=") else { continue }
            let key = pair[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            if key == "data" { continue }
            fields[key] = pair[pair.index(after: equals)...].trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let code = fields["code"], !code.isEmpty else {
            return .malformed(bytes: raw, reason: "record without Code=")
        }
        var index: Int?
        if let text = fields["index"] {
            guard let value = Int(text), value >= 0 else {
                return .malformed(bytes: raw, reason: "index '\(text)' is not a channel number (expected 0, 1, …)")
            }
            index = value
        }
        var json: JSONValue?
        if let data {
            do {
                json = try decodeJSON(Array(data))
            } catch {
                return .malformed(bytes: raw, reason: "data= is not valid JSON: \(error)")
            }
        }
        return .event(DahuaEvent(code: code, action: fields["action"] ?? "", index: index, data: json, raw: raw))
    }

    /// UTF-8 JSON; text that is not UTF-8 is read again as GB18030 (older firmware's plates).
    static func decodeJSON(_ bytes: [UInt8]) throws(JSONValue.ParseError) -> JSONValue {
        // The JSON parser would read invalid UTF-8 with replacement characters: decide first.
        if String(validating: bytes, as: UTF8.self) == nil, let text = TextDecoding.decode(bytes, as: .gb18030) {
            return try JSONValue.parse(Array(text.utf8))
        }
        return try JSONValue.parse(bytes)
    }

    // MARK: - Bytes

    static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A }

    static func trimCR(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        line.last == 0x0D ? line.dropLast() : line
    }

    static func startsWith(_ bytes: ArraySlice<UInt8>, _ prefix: [UInt8]) -> Bool {
        bytes.count >= prefix.count && bytes.prefix(prefix.count).elementsEqual(prefix)
    }

    /// `Content-Type: …`: a token and a colon before any `=` or `;`.
    static func isHeader(_ line: ArraySlice<UInt8>) -> Bool {
        guard let colon = line.firstIndex(of: 0x3A), colon > line.startIndex else { return false }
        return line[..<colon].allSatisfy { ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
    }

    static func find(_ needle: [UInt8], in bytes: [UInt8], from: Int, to: Int) -> Int? {
        guard to - from >= needle.count else { return nil }
        var index = from
        while index + needle.count <= to {
            if bytes[index] == needle[0], bytes[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }
}
