import GatehouseCore

/// Bytes and a Content-Type in, a document tree out, per a profile's `BodySpec`.
public enum BodyDecoder {
    public static let maxJSONDepth = 64

    public static func decode(_ body: [UInt8], contentType: String?, spec: BodySpec) throws(MappingError) -> PayloadDocument {
        guard !body.isEmpty else { throw MappingError("empty body") }
        let format = resolve(spec.format, contentType: contentType, body: body)
        let charset = charset(for: contentType, spec: spec)
        switch format {
        case .multipart:
            return try multipart(body, contentType: contentType, spec: spec)
        case .form:
            return PayloadDocument(root: try FormURLEncoded.parse(body, charset: charset), format: .form)
        case .json, .xml, .auto:
            let utf8 = try transcode(body, from: charset)
            return PayloadDocument(root: try structured(utf8, format: format == .xml ? .xml : .json, unwrap: spec.unwrapXMLRoot), format: format == .xml ? .xml : .json)
        }
    }

    static func resolve(_ format: BodySpec.Format, contentType: String?, body: [UInt8]) -> BodySpec.Format {
        guard format == .auto else { return format }
        let type = contentType?.lowercased() ?? ""
        if type.contains("multipart/") { return .multipart }
        if type.contains("x-www-form-urlencoded") { return .form }
        if type.contains("json") { return .json }
        if type.contains("xml") { return .xml }
        return sniff(body) ?? .json
    }

    static func sniff(_ body: [UInt8]) -> BodySpec.Format? {
        // Skip a UTF-8 byte-order mark and white space before deciding.
        let first = body.drop { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 || $0 == 0xEF || $0 == 0xBB || $0 == 0xBF }.first
        switch first {
        case UInt8(ascii: "{"), UInt8(ascii: "["): return .json
        case UInt8(ascii: "<"): return .xml
        default: return nil
        }
    }

    static func charset(for contentType: String?, spec: BodySpec) -> TextDecoding.Charset {
        guard spec.trustDeclaredCharset, let label = MultipartBodyPart.parameter("charset", in: contentType),
            let declared = TextDecoding.Charset(label: label)
        else { return spec.charset }
        return declared
    }

    /// Text in `charset` as UTF-8 bytes, refusing bytes that are not valid in it.
    static func transcode(_ bytes: [UInt8], from charset: TextDecoding.Charset) throws(MappingError) -> [UInt8] {
        var input = bytes
        if input.starts(with: [0xEF, 0xBB, 0xBF]) { input.removeFirst(3) }
        guard let text = TextDecoding.decode(input, as: charset) else {
            let offset = charset == .utf8 ? firstInvalidUTF8(input) : nil
            let at = offset.map { " at byte \($0)" } ?? ""
            throw MappingError("body is not valid \(charset.rawValue) text\(at) (the profile expects \(charset.rawValue); set body.charset if the device sends another)")
        }
        return Array(text.utf8)
    }

    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var low = 0
        var high = bytes.count
        // The longest valid prefix, found by bisection; good enough to point at the offending byte.
        while low < high {
            let mid = (low + high + 1) / 2
            if String(validating: bytes[0..<mid], as: UTF8.self) != nil || (mid < bytes.count && (bytes[mid] & 0xC0) == 0x80) {
                low = mid
            } else {
                high = mid - 1
            }
        }
        return low < bytes.count ? low : nil
    }

    static func structured(_ utf8: [UInt8], format: BodySpec.Format, unwrap: Bool = false) throws(MappingError) -> JSONValue {
        if format == .xml {
            let tree = try XMLTree.parse(utf8)
            if unwrap, case .object(let object) = tree, object.count == 1, let inner = object.values.first { return inner }
            return tree
        }
        do {
            return try JSONValue.parse(utf8, maxDepth: maxJSONDepth)
        } catch {
            throw MappingError("malformed JSON: \(error)")
        }
    }

    static func multipart(_ body: [UInt8], contentType: String?, spec: BodySpec) throws(MappingError) -> PayloadDocument {
        let parts = try MultipartBody.parts(body, contentType: contentType)
        var images = ImageStats()
        var document: (JSONValue, BodySpec.Format)?
        var fields: [String: JSONValue] = [:]
        for (index, part) in parts.enumerated() {
            let label = part.name ?? "#\(index + 1)"
            if part.isImage {
                guard part.body.count <= spec.maxImageBytes else {
                    throw MappingError("image part '\(label)' is \(part.body.count) bytes (at most \(spec.maxImageBytes))")
                }
                images.count += 1
                images.bytes += part.body.count
                images.names.append(label)
                images.parts.append(ImagePart(name: label, contentType: part.contentType ?? "image/jpeg", body: part.body))
                continue
            }
            let wanted = spec.documentPart.map { $0 == part.name || $0 == part.filename } ?? false
            let kind = resolve(.auto, contentType: part.contentType, body: part.body)
            let isDocument = wanted || (spec.documentPart == nil && (kind == .json || kind == .xml) && sniff(part.body) != nil)
            if isDocument, document == nil {
                let partCharset = charset(for: part.contentType, spec: spec)
                let utf8: [UInt8]
                do {
                    utf8 = try transcode(part.body, from: partCharset)
                } catch {
                    throw MappingError("part '\(label)': \(error.reason)")
                }
                do {
                    document = (try structured(utf8, format: kind == .xml ? .xml : .json, unwrap: spec.unwrapXMLRoot), kind == .xml ? .xml : .json)
                } catch {
                    throw MappingError("part '\(label)': \(error.reason)")
                }
            } else if let name = part.name {
                fields[name] = .string(TextDecoding.decode(part.body, as: charset(for: part.contentType, spec: spec)) ?? "")
            }
        }
        if let wanted = spec.documentPart, document == nil {
            let seen = parts.map { $0.name ?? "(unnamed)" }.joined(separator: ", ")
            throw MappingError("multipart body has no part named '\(wanted)' (parts: \(seen))")
        }
        var root = document?.0 ?? .object(fields)
        // Plain form fields travel beside the document (e.g. a channel number); keep them reachable.
        if case .object(var object) = root, document != nil {
            for (key, value) in fields where object[key] == nil { object[key] = value }
            root = .object(object)
        }
        return PayloadDocument(root: root, format: .multipart, images: images)
    }
}
