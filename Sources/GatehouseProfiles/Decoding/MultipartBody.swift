import Foundation
import GatehouseCore
import MultipartKit

/// One part of a `multipart/form-data` body.
public struct MultipartBodyPart: Sendable {
    public var headers: [String: String]
    public var body: [UInt8]

    /// `name=` of the Content-Disposition header.
    public var name: String? { Self.parameter("name", in: headers["content-disposition"]) }
    public var filename: String? { Self.parameter("filename", in: headers["content-disposition"]) }
    public var contentType: String? { headers["content-type"] }

    /// Images are counted, never decoded or forwarded: a part typed `image/*` or named like a picture.
    public var isImage: Bool {
        if let type = contentType?.lowercased(), type.hasPrefix("image/") { return true }
        let names = [name, filename].compactMap { $0?.lowercased() }
        return names.contains { $0.hasSuffix(".jpg") || $0.hasSuffix(".jpeg") || $0.hasSuffix(".png") }
    }

    static func parameter(_ key: String, in header: String?) -> String? {
        guard let header else { return nil }
        for item in header.split(separator: ";") {
            let pair = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, pair[0].lowercased() == key else { continue }
            return pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return nil
    }
}

/// Splits multipart bodies with MultipartKit's streaming parser and refuses truncated ones:
/// a body cut off mid-part must not be mistaken for a complete event.
public enum MultipartBody {
    public static let maxParts = 64

    public static func parts(_ bytes: [UInt8], contentType: String?) throws(MappingError) -> [MultipartBodyPart] {
        guard let boundary = boundary(contentType: contentType) else {
            throw MappingError("multipart body without a boundary in Content-Type '\(contentType ?? "")' (expected multipart/form-data; boundary=…)")
        }
        return try parts(bytes, boundary: boundary)
    }

    /// `boundary=` of a Content-Type, unquoted; nil when missing, empty or too long to be one.
    public static func boundary(contentType: String?) -> String? {
        guard let boundary = MultipartBodyPart.parameter("boundary", in: contentType), !boundary.isEmpty, boundary.utf8.count <= 200 else {
            return nil
        }
        return boundary
    }

    /// The boundary a body opens with (`--boundary` on its first line), for devices (Hikvision
    /// terminals) whose Content-Type omits it.
    public static func boundary(openingBody body: [UInt8]) -> String? {
        guard body.starts(with: Array("--".utf8)) else { return nil }
        let line = body.dropFirst(2).prefix { $0 != 13 && $0 != 10 }
        guard !line.isEmpty, line.count <= 200 else { return nil }
        return String(decoding: line, as: UTF8.self)
    }

    /// Splits a body with a known boundary. Boundaries are taken literally; parts may carry their
    /// own Content-Length and may lack `filename`.
    public static func parts(_ bytes: [UInt8], boundary: String) throws(MappingError) -> [MultipartBodyPart] {
        // The closing delimiter proves the sender finished; MultipartKit alone would return the parts it saw.
        guard contains(bytes, Array("--\(boundary)--".utf8)) else {
            throw MappingError("truncated multipart body: no closing boundary '--\(boundary)--' in \(bytes.count) bytes")
        }
        let parser = MultipartParser(boundary: boundary)
        var parts: [MultipartBodyPart] = []
        var headers: [String: String] = [:]
        var body: [UInt8] = []
        parser.onHeader = { name, value in headers[name.lowercased()] = value }
        parser.onBody = { buffer in body += buffer.readableBytesView }
        parser.onPartComplete = {
            parts.append(MultipartBodyPart(headers: headers, body: body))
            headers = [:]
            body = []
        }
        do {
            try parser.execute(bytes)
        } catch {
            throw MappingError("malformed multipart body: \(error)")
        }
        guard !parts.isEmpty else { throw MappingError("multipart body with no parts") }
        guard parts.count <= maxParts else { throw MappingError("multipart body with \(parts.count) parts (at most \(maxParts))") }
        return parts
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        // Search from the end: the closing boundary sits there in every well-formed body.
        var start = haystack.count - needle.count
        while start >= 0 {
            if haystack[start] == needle[0], Array(haystack[start..<(start + needle.count)]) == needle { return true }
            start -= 1
        }
        return false
    }
}
