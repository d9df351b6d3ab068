import GatehouseCore

/// `application/x-www-form-urlencoded` bodies, split and percent-decoded as bytes before the
/// charset is applied: old controllers percent-encode GBK bytes, not UTF-8.
public enum FormURLEncoded {
    /// A flat object of fields; a repeated field becomes an array.
    public static func parse(_ bytes: [UInt8], charset: TextDecoding.Charset) throws(MappingError) -> JSONValue {
        var object: [String: JSONValue] = [:]
        for pair in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let key = try text(percentDecode(parts[0]), charset: charset, what: "a field name")
            let value = try text(percentDecode(parts.count > 1 ? parts[1] : []), charset: charset, what: "field '\(key)'")
            switch object[key] {
            case nil: object[key] = .string(value)
            case .array(var items)?:
                items.append(.string(value))
                object[key] = .array(items)
            case let existing?: object[key] = .array([existing, .string(value)])
            }
        }
        guard !object.isEmpty else { throw MappingError("empty form body (expected name=value pairs)") }
        return .object(object)
    }

    static func text(_ bytes: [UInt8], charset: TextDecoding.Charset, what: String) throws(MappingError) -> String {
        guard let text = TextDecoding.decode(bytes, as: charset) else {
            throw MappingError("\(what) is not valid \(charset.rawValue) text (bytes \(bytes.prefix(16).map { String(format2: $0) }.joined(separator: " ")))")
        }
        return text
    }

    static func percentDecode(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let byte = bytes[i]
            if byte == UInt8(ascii: "+") {
                out.append(0x20)
            } else if byte == UInt8(ascii: "%"), i + 2 < bytes.endIndex, let high = hex(bytes[i + 1]), let low = hex(bytes[i + 2]) {
                out.append(high << 4 | low)
                i += 3
                continue
            } else {
                out.append(byte)
            }
            i += 1
        }
        return out
    }

    static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        case 0x61...0x66: byte - 0x61 + 10
        default: nil
        }
    }
}

extension String {
    /// Two hex digits, for byte dumps in error messages.
    init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }
}
