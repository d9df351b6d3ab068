/// Splits the never-ending `multipart/mixed` body of `alertStream` into parts as bytes arrive.
///
/// Cameras get the framing wrong in every way: a `Content-Length` that is missing, too short
/// or too long, garbage or blank lines between parts, a part cut off by a reboot. So a part
/// ends at the next boundary line when one comes within its declared length; at its
/// `Content-Length` when the bytes are there (an honest camera's alert is not held back until
/// the next part, which may be a heartbeat many seconds later); or, with no length, when the
/// document's closing tag or brace has arrived. Every buffer is capped: a part longer than
/// `maxPartBytes` is reported and skipped up to the next boundary.
struct HikvisionAlertStreamParser {
    /// A complete part.
    struct Part: Equatable {
        var headers: [String: String]
        var body: [UInt8]
        var contentType: String? { headers["content-type"] }
        var isImage: Bool { contentType?.lowercased().hasPrefix("image/") ?? false }
    }

    enum Output: Equatable {
        case part(Part)
        /// Something the parser had to throw away, with why (the raw bytes for quarantine, capped).
        case malformed(reason: String, bytes: [UInt8])
        /// The closing boundary: the camera ended the stream.
        case end
    }

    let delimiter: [UInt8]
    let maxPartBytes: Int
    private var buffer: [UInt8] = []
    private var phase = Phase.seekingBoundary
    /// Bytes dropped between parts (garbage, blank lines beyond CRLF), for the status log.
    private(set) var skippedBytes = 0

    private enum Phase: Equatable {
        case seekingBoundary
        case headers
        case body(headers: [String: String], length: Int?)
        /// After an oversized part: drop bytes until the next boundary.
        case discarding
    }

    /// Longest header block a part may have; more is garbage, not headers.
    static let maxHeaderBytes = 8 << 10

    init(boundary: String, maxPartBytes: Int) {
        delimiter = Array("--\(boundary)".utf8)
        self.maxPartBytes = maxPartBytes
    }

    /// The boundary of a `Content-Type` such as `multipart/mixed; boundary=boundary` (quoted or not).
    static func boundary(contentType: String?) -> String? {
        guard let contentType else { return nil }
        for item in contentType.split(separator: ";") {
            let pair = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, pair[0].lowercased() == "boundary" else { continue }
            let value = pair[1].trimmingCharacters(in: .init(charactersIn: "\""))
            return value.isEmpty || value.utf8.count > 200 ? nil : value
        }
        return nil
    }

    /// Takes the next bytes of the stream; returns what they completed.
    mutating func feed(_ bytes: some Collection<UInt8>) -> [Output] {
        buffer.append(contentsOf: bytes)
        var outputs: [Output] = []
        while let output = step() {
            outputs.append(output)
            if output == .end { break }
        }
        return outputs
    }

    /// Bytes held now, never more than about `maxPartBytes` plus one header block.
    var bufferedBytes: Int { buffer.count }

    private mutating func step() -> Output? {
        switch phase {
        case .seekingBoundary, .discarding:
            guard let at = Self.find(delimiter, in: buffer, from: 0) else {
                // Keep only what could be the start of a delimiter split across reads.
                let keep = min(buffer.count, delimiter.count + 1)
                let dropped = buffer.count - keep
                if dropped > 0 {
                    if phase == .seekingBoundary { skippedBytes += dropped }
                    buffer.removeFirst(dropped)
                }
                return nil
            }
            // The closing delimiter needs two more bytes to be told apart from an opening one.
            guard buffer.count >= at + delimiter.count + 2 else {
                if at > 0 {
                    if phase == .seekingBoundary { skippedBytes += at }
                    buffer.removeFirst(at)
                }
                return nil
            }
            if phase == .seekingBoundary { skippedBytes += Self.garbage(buffer[0..<at]) }
            let after = at + delimiter.count
            if buffer[after] == UInt8(ascii: "-"), buffer[after + 1] == UInt8(ascii: "-") {
                buffer.removeAll()
                return .end
            }
            buffer.removeFirst(after)
            phase = .headers
            return step()
        case .headers:
            guard let (end, next) = Self.headerEnd(in: buffer) else {
                if buffer.count > Self.maxHeaderBytes {
                    let kept = Array(buffer.prefix(1024))
                    buffer.removeAll()
                    phase = .discarding
                    return .malformed(reason: "part headers longer than \(Self.maxHeaderBytes) bytes", bytes: kept)
                }
                return nil
            }
            var headers: [String: String] = [:]
            for line in buffer[0..<end].split(whereSeparator: { $0 == 10 || $0 == 13 }) {
                guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
                let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self).trimmingCharacters(in: .whitespaces).lowercased()
                let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                if !name.isEmpty { headers[name] = value }
            }
            buffer.removeFirst(next)
            let length = headers["content-length"].flatMap { Int($0) }.flatMap { $0 >= 0 ? $0 : nil }
            phase = .body(headers: headers, length: length)
            return step()
        case .body(let headers, let length):
            let boundaryLine = Self.findLineStart(delimiter, in: buffer)
            if let boundaryLine, length.map({ boundaryLine.bodyEnd <= $0 + 2 }) ?? true {
                // The next boundary came first: it ends the part, whatever the length said.
                let body = Array(buffer[0..<boundaryLine.bodyEnd])
                buffer.removeFirst(boundaryLine.delimiterStart)
                phase = .seekingBoundary
                return complete(headers: headers, body: body, declared: length)
            }
            if let length, length <= maxPartBytes, buffer.count >= length {
                let body = Array(buffer[0..<length])
                buffer.removeFirst(length)
                phase = .seekingBoundary
                return complete(headers: headers, body: body, declared: length)
            }
            if length == nil, Self.looksComplete(buffer) {
                let body = buffer
                buffer.removeAll()
                phase = .seekingBoundary
                return complete(headers: headers, body: body, declared: nil)
            }
            if buffer.count > maxPartBytes {
                let kept = Array(buffer.prefix(1024))
                buffer.removeAll()
                phase = .discarding
                return .malformed(reason: "part longer than \(maxPartBytes) bytes (max_part_bytes); skipped to the next boundary", bytes: kept)
            }
            return nil
        }
    }

    private func complete(headers: [String: String], body: [UInt8], declared: Int?) -> Output {
        let trimmed = Self.trimmed(body)
        if trimmed.isEmpty { return .malformed(reason: "empty part", bytes: []) }
        return .part(Part(headers: headers, body: headers["content-type"]?.lowercased().hasPrefix("image/") == true ? body : trimmed))
    }

    /// Blank lines between parts are framing, not garbage.
    private static func garbage(_ bytes: ArraySlice<UInt8>) -> Int {
        bytes.filter { !($0 == 13 || $0 == 10 || $0 == 32 || $0 == 9) }.isEmpty ? 0 : bytes.count
    }

    private static func trimmed(_ bytes: [UInt8]) -> [UInt8] {
        let isSpace: (UInt8) -> Bool = { $0 == 13 || $0 == 10 || $0 == 32 || $0 == 9 || $0 == 0 }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) }) else { return [] }
        return Array(bytes[first...last])
    }

    /// A body with no length is complete once its document is closed: XML ending in its root's
    /// closing tag, or JSON whose braces balance.
    static func looksComplete(_ bytes: [UInt8]) -> Bool {
        let body = trimmed(bytes)
        guard let first = body.first, let last = body.last else { return false }
        if first == UInt8(ascii: "<") {
            return body.count > 24 && String(decoding: body.suffix(40), as: UTF8.self).hasSuffix("EventNotificationAlert>")
        }
        guard first == UInt8(ascii: "{"), last == UInt8(ascii: "}") else { return false }
        var depth = 0
        var inString = false
        var escaped = false
        for byte in body {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
            default: break
            }
        }
        return depth == 0
    }

    /// End of a header block (`CRLFCRLF` or `LFLF`) and where the body starts.
    private static func headerEnd(in bytes: [UInt8]) -> (end: Int, next: Int)? {
        var i = 0
        // A part with no headers starts its body at once after the boundary line's CRLF.
        if bytes.count >= 2, bytes[0] == 13, bytes[1] == 10, bytes.count >= 4, bytes[2] == 13, bytes[3] == 10 { return (0, 4) }
        while i < bytes.count {
            if bytes[i] == 10 {
                if i + 1 < bytes.count, bytes[i + 1] == 10 { return (i, i + 2) }
                if i + 2 < bytes.count, bytes[i + 1] == 13, bytes[i + 2] == 10 { return (i, i + 3) }
            }
            i += 1
        }
        return nil
    }

    /// A delimiter at the start of a line: where the part's body ends (before its CRLF) and where the delimiter starts.
    private static func findLineStart(_ needle: [UInt8], in bytes: [UInt8]) -> (bodyEnd: Int, delimiterStart: Int)? {
        var from = 0
        while let at = find(needle, in: bytes, from: from) {
            if at == 0 { return (0, 0) }
            if bytes[at - 1] == 10 {
                let end = at >= 2 && bytes[at - 2] == 13 ? at - 2 : at - 1
                return (end, at)
            }
            from = at + 1
        }
        return nil
    }

    static func find(_ needle: [UInt8], in bytes: [UInt8], from: Int) -> Int? {
        guard !needle.isEmpty, bytes.count >= needle.count, from <= bytes.count - needle.count else { return nil }
        var i = from
        let first = needle[0]
        while i <= bytes.count - needle.count {
            if bytes[i] == first {
                var match = true
                for k in 1..<needle.count where bytes[i + k] != needle[k] {
                    match = false
                    break
                }
                if match { return i }
            }
            i += 1
        }
        return nil
    }
}
