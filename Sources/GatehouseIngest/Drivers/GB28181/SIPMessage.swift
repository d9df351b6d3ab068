import Foundation

/// One SIP message (RFC 3261) as GB/T 28181 devices send it: a start line, headers in order
/// and a body. No SIP package exists for Swift on Linux, so this small codec covers what a
/// registrar/UAS for cameras needs and nothing more (see README: Why a codec of our own).
struct SIPMessage: Sendable, Equatable {
    enum StartLine: Sendable, Equatable {
        case request(method: String, uri: String)
        case response(code: Int, reason: String)
    }

    var start: StartLine
    /// Header fields in the order received, names as written.
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    static func == (l: SIPMessage, r: SIPMessage) -> Bool {
        l.start == r.start && l.body == r.body && l.headers.map(\.name) == r.headers.map(\.name)
            && l.headers.map(\.value) == r.headers.map(\.value)
    }

    /// Compact header forms (RFC 3261 §7.3.3) and their full names.
    static let compactForms: [String: String] = [
        "i": "call-id", "f": "from", "t": "to", "v": "via", "l": "content-length", "m": "contact", "c": "content-type",
        "e": "content-encoding", "k": "supported", "s": "subject", "o": "event",
    ]

    static func canonical(_ name: String) -> String {
        let lower = name.lowercased()
        return compactForms[lower] ?? lower
    }

    var method: String? { if case .request(let method, _) = start { method } else { nil } }
    var statusCode: Int? { if case .response(let code, _) = start { code } else { nil } }

    /// The first value of a header, by full or compact name, in any case.
    func header(_ name: String) -> String? {
        let wanted = Self.canonical(name)
        return headers.first { Self.canonical($0.name) == wanted }?.value
    }

    /// Every value of a header, comma-separated values split apart (Via may come either way).
    func values(_ name: String) -> [String] {
        let wanted = Self.canonical(name)
        return headers.filter { Self.canonical($0.name) == wanted }.flatMap { SIPMessage.splitList($0.value) }
    }

    /// Splits `a, b` at commas outside quotes and angle brackets.
    static func splitList(_ value: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var quoted = false
        var angle = 0
        for ch in value {
            switch ch {
            case "\"": quoted.toggle()
            case "<" where !quoted: angle += 1
            case ">" where !quoted: angle = max(0, angle - 1)
            case "," where !quoted && angle == 0:
                parts.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
                continue
            default: break
            }
            current.append(ch)
        }
        let last = current.trimmingCharacters(in: .whitespaces)
        if !last.isEmpty { parts.append(last) }
        return parts
    }

    /// The user part of the URI in a From/To/Contact value (`<sip:user@host>;tag=…`).
    static func user(ofAddress value: String) -> String? {
        guard let range = value.range(of: "sip:", options: .caseInsensitive) else { return nil }
        let rest = value[range.upperBound...]
        guard let at = rest.firstIndex(of: "@") else { return nil }
        let user = String(rest[..<at])
        return user.isEmpty ? nil : user
    }

    /// A `;name=value` parameter of a header value (tag, branch, expires…).
    static func parameter(_ name: String, in value: String) -> String? {
        // Parameters follow the closing `>` when there is one.
        let close = value.lastIndex(of: ">")
        let tail = close.map { value[value.index(after: $0)...] } ?? value[...]
        // Without angle brackets the first part is the URI itself.
        for part in tail.split(separator: ";").dropFirst(close == nil ? 1 : 0) {
            let pair = part.split(separator: "=", maxSplits: 1)
            if pair.first?.trimmingCharacters(in: .whitespaces).lowercased() == name.lowercased() {
                return pair.count == 2 ? pair[1].trimmingCharacters(in: .whitespaces) : ""
            }
        }
        return nil
    }

    func serialized() -> [UInt8] {
        var text: String
        switch start {
        case .request(let method, let uri): text = "\(method) \(uri) SIP/2.0\r\n"
        case .response(let code, let reason): text = "SIP/2.0 \(code) \(reason)\r\n"
        }
        for (name, value) in headers where Self.canonical(name) != "content-length" { text += "\(name): \(value)\r\n" }
        text += "Content-Length: \(body.count)\r\n\r\n"
        return Array(text.utf8) + body
    }

    // MARK: - Parsing

    /// Largest header section and body accepted; bigger input is refused, never buffered.
    static let maxHeaderBytes = 16 * 1024
    static let maxBodyBytes = 256 * 1024

    /// Parses one whole message (a UDP datagram). Without Content-Length the body runs to the
    /// end of the datagram (RFC 3261 §18.3); with one, the body must be exactly that long.
    static func parse(_ bytes: [UInt8]) throws(SIPParseError) -> SIPMessage {
        guard let end = headerEnd(bytes) else {
            throw bytes.count > maxHeaderBytes ? .tooLarge("header section over \(maxHeaderBytes) bytes") : .truncated("no blank line after the headers")
        }
        var message = try parseHead(Array(bytes[..<end]))
        let rest = Array(bytes[(end + 4)...])
        if let declared = try contentLength(of: message) {
            guard declared <= rest.count else { throw .badContentLength("Content-Length \(declared) but \(rest.count) body bytes") }
            message.body = Array(rest.prefix(declared))
        } else {
            message.body = rest
        }
        guard message.body.count <= maxBodyBytes else { throw .tooLarge("body over \(maxBodyBytes) bytes") }
        return message
    }

    static func headerEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        let limit = min(bytes.count - 4, maxHeaderBytes)
        var i = 0
        while i <= limit {
            if bytes[i] == 13, bytes[i + 1] == 10, bytes[i + 2] == 13, bytes[i + 3] == 10 { return i }
            i += 1
        }
        return nil
    }

    static func contentLength(of message: SIPMessage) throws(SIPParseError) -> Int? {
        guard let text = message.header("content-length") else { return nil }
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)), value >= 0 else {
            throw .badContentLength("Content-Length '\(text.prefix(20))' is not a number")
        }
        guard value <= maxBodyBytes else { throw .tooLarge("Content-Length \(value) over \(maxBodyBytes) bytes") }
        return value
    }

    /// The start line and headers (without the blank line).
    static func parseHead(_ bytes: [UInt8]) throws(SIPParseError) -> SIPMessage {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .malformed("header section is not UTF-8") }
        var lines = text.components(separatedBy: "\r\n")
        guard !lines.isEmpty else { throw .malformed("empty message") }
        let first = lines.removeFirst()
        let start: StartLine
        let words = first.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        if first.hasPrefix("SIP/2.0 ") {
            guard words.count >= 2, let code = Int(words[1]), (100...699).contains(code) else {
                throw .malformed("status line '\(first.prefix(60))' has no status code")
            }
            start = .response(code: code, reason: words.count == 3 ? String(words[2]) : "")
        } else {
            guard words.count == 3, words[2] == "SIP/2.0", words[0].allSatisfy({ $0.isLetter }) else {
                throw .malformed("request line '\(first.prefix(60))' is not 'METHOD uri SIP/2.0'")
            }
            start = .request(method: words[0].uppercased(), uri: String(words[1]))
        }
        var headers: [(name: String, value: String)] = []
        for line in lines where !line.isEmpty {
            if line.first == " " || line.first == "\t" {
                // Folded continuation line (RFC 3261 §7.3.1).
                guard !headers.isEmpty else { throw .malformed("continuation line before any header") }
                headers[headers.count - 1].value += " " + line.trimmingCharacters(in: .whitespaces)
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { throw .malformed("header line '\(line.prefix(40))' has no colon") }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty else { throw .malformed("header line with an empty name") }
            headers.append((name, line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        for required in ["via", "from", "to", "call-id", "cseq"] where !headers.contains(where: { canonical($0.name) == required }) {
            throw .malformed("no \(required) header")
        }
        return SIPMessage(start: start, headers: headers, body: [])
    }
}

/// Why bytes are not a SIP message; the text goes to the debug log and the counter's reason.
enum SIPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    case truncated(String)
    case malformed(String)
    case badContentLength(String)
    case tooLarge(String)

    var description: String {
        switch self {
        case .truncated(let s), .malformed(let s), .badContentLength(let s), .tooLarge(let s): s
        }
    }

    /// The counter this error is counted under.
    var counter: String {
        switch self {
        case .truncated: "truncated"
        case .malformed: "malformed SIP"
        case .badContentLength: "bad Content-Length"
        case .tooLarge: "too large"
        }
    }
}

/// Splits a TCP byte stream into SIP messages by Content-Length (required on streams), skipping
/// the bare CRLFs devices send as keep-alive pings (RFC 5626 §3.5.1).
struct SIPStreamFramer: Sendable {
    private var buffer: [UInt8] = []

    /// Adds received bytes; returns the whole messages now available, in order. A framing error
    /// leaves the stream unusable: the caller closes the connection.
    mutating func append(_ bytes: [UInt8]) throws(SIPParseError) -> [SIPMessage] {
        buffer += bytes
        var out: [SIPMessage] = []
        while true {
            var skip = 0
            while skip < buffer.count, buffer[skip] == 13 || buffer[skip] == 10 { skip += 1 }
            if skip > 0 { buffer.removeFirst(skip) }
            guard !buffer.isEmpty else { break }
            guard let end = SIPMessage.headerEnd(buffer) else {
                if buffer.count > SIPMessage.maxHeaderBytes { throw .tooLarge("header section over \(SIPMessage.maxHeaderBytes) bytes") }
                break
            }
            var message = try SIPMessage.parseHead(Array(buffer[..<end]))
            guard let length = try SIPMessage.contentLength(of: message) else {
                throw .badContentLength("no Content-Length on a stream transport")
            }
            let total = end + 4 + length
            guard buffer.count >= total else { break }
            message.body = Array(buffer[(end + 4)..<total])
            buffer.removeFirst(total)
            out.append(message)
        }
        return out
    }
}
