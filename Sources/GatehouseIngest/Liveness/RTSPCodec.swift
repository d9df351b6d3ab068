import Foundation
import GatehouseCore

/// The small part of RTSP/1.0 (RFC 2326) a liveness probe speaks: a request writer, and a
/// reader for the status line, headers and a Content-Length body. Pure, so tests feed it bytes.
enum RTSPCodec {
    /// A reply whose headers do not end within this many bytes is not an RTSP server's.
    static let maxHeaderBytes = 16 << 10
    /// SDP bodies are a few hundred bytes; anything far larger is refused unread.
    static let maxBodyBytes = 64 << 10

    struct Header: Sendable, Equatable {
        var name: String
        var value: String
    }

    struct Response: Sendable, Equatable {
        var status: Int
        var reason: String
        var headers: [Header]
        var body: [UInt8]

        /// Every value of `name` (case-insensitive), in order: cameras send two `WWW-Authenticate`.
        func values(_ name: String) -> [String] {
            let wanted = name.lowercased()
            return headers.filter { $0.name.lowercased() == wanted }.map(\.value)
        }

        var cseq: Int? { values("CSeq").first.flatMap { Int($0) } }
        /// The server says it closes the connection after this reply.
        var closes: Bool { values("Connection").contains { $0.lowercased() == "close" } }
    }

    struct ProtocolError: Error, Equatable, CustomStringConvertible {
        var description: String
    }

    /// `METHOD <url> RTSP/1.0`, `CSeq`, the given headers, `User-Agent`, a blank line.
    static func request(_ method: String, url: String, cseq: Int, headers: [Header] = []) -> [UInt8] {
        var text = "\(method) \(url) RTSP/1.0\r\nCSeq: \(cseq)\r\n"
        for header in headers { text += "\(header.name): \(header.value)\r\n" }
        text += "User-Agent: Gatehouse/\(GatehouseVersion.current)\r\n\r\n"
        return Array(text.utf8)
    }

    /// The first complete reply in `bytes` and how many bytes it took; nil while incomplete.
    /// Throws on what no RTSP server sends: another protocol, headers or body over the bounds,
    /// an unreadable Content-Length.
    static func response(in bytes: [UInt8]) throws(ProtocolError) -> (response: Response, consumed: Int)? {
        guard let (headerEnd, bodyStart) = endOfHeaders(bytes) else {
            if bytes.count > maxHeaderBytes { throw ProtocolError(description: "no end of headers within \(maxHeaderBytes) bytes") }
            // A reply that does not even start like RTSP is known wrong from its first bytes.
            let prefix = Array("RTSP/".utf8)
            if !bytes.isEmpty, !prefix.starts(with: bytes.prefix(prefix.count)) { throw notRTSP(bytes) }
            return nil
        }
        guard headerEnd <= maxHeaderBytes else { throw ProtocolError(description: "headers longer than \(maxHeaderBytes) bytes") }
        // Split on LF bytes: in a Swift String "\r\n" is one Character and would not split on "\n".
        var lines = bytes[..<headerEnd].split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            String(decoding: line.last == 0x0D ? line.dropLast() : line, as: UTF8.self)
        }
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("RTSP/"), let status = Int(parts[1]), (100...999).contains(status) else {
            throw notRTSP(bytes)
        }
        var headers: [Header] = []
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else {
                throw ProtocolError(description: "header line without a colon: '\(line.prefix(80))'")
            }
            headers.append(Header(name: String(line[..<colon]).trimmed, value: String(line[line.index(after: colon)...]).trimmed))
        }
        var length = 0
        if let text = headers.last(where: { $0.name.lowercased() == "content-length" })?.value {
            guard let parsed = Int(text), parsed >= 0 else { throw ProtocolError(description: "Content-Length '\(text.prefix(40))' is not a number") }
            guard parsed <= maxBodyBytes else { throw ProtocolError(description: "body of \(parsed) bytes, over \(maxBodyBytes)") }
            length = parsed
        }
        guard bytes.count - bodyStart >= length else { return nil }
        let response = Response(
            status: status, reason: parts.count > 2 ? String(parts[2]) : "", headers: headers, body: Array(bytes[bodyStart..<bodyStart + length]))
        return (response, bodyStart + length)
    }

    /// Where the headers end (before the blank line) and the body starts; CRLF or bare LF lines.
    private static func endOfHeaders(_ bytes: [UInt8]) -> (Int, Int)? {
        var index = 0
        while index < bytes.count {
            if bytes[index] == 0x0A {
                if index + 1 < bytes.count, bytes[index + 1] == 0x0A { return (index + 1, index + 2) }
                if index + 2 < bytes.count, bytes[index + 1] == 0x0D, bytes[index + 2] == 0x0A { return (index + 1, index + 3) }
            }
            index += 1
        }
        return nil
    }

    private static func notRTSP(_ bytes: [UInt8]) -> ProtocolError {
        let shown = String(decoding: bytes.prefix(40), as: UTF8.self).map { $0.isASCII && !$0.isNewline ? $0 : "." }
        return ProtocolError(description: "not an RTSP reply: '\(String(shown))'")
    }
}

extension String {
    fileprivate var trimmed: String { trimmingCharacters(in: .whitespaces) }
}
