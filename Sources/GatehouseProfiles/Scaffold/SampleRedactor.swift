import Foundation
import GatehouseCore

/// Replaces personal values (plates, card numbers, names, phone numbers, face and id numbers)
/// in scaffolded samples and texts with stand-ins of the same shape, so that the draft profile
/// can still be written and tested but no clear value leaves the box in a draft folder.
///
/// A value is personal when the field guesser says it is a plate, when its key names a card,
/// person, phone or face, or when it looks like one (plate, mobile number, long digit string)
/// in a field not guessed to be a time, id, serial, lane or direction.
public struct SampleRedactor: Sendable {
    /// Clear value → stand-in, longest clear value first so that a value inside another is not
    /// replaced piecemeal.
    public private(set) var replacements: [(clear: String, standIn: String)] = []

    static let cardKeys = ["card", "cardno", "cardnum", "卡号", "icno", "icnum"]
    static let personKeys = ["name", "姓名", "owner", "person", "user", "employee", "resident", "driver", "人员"]
    static let phoneKeys = ["phone", "mobile", "tel", "电话", "手机"]
    static let faceKeys = ["face", "idcard", "idno", "certificate", "身份证", "证件"]
    static let notPersonalRoles: Set<FieldRole> = [.time, .recordID, .deviceSerial, .lane, .direction]

    public init(inventory: FieldInventory, allValues: [String: Set<String>]) {
        var personal: Set<String> = []
        for field in inventory.fields {
            let key = FieldGuesser.key(field.path)
            let values = allValues[field.path] ?? Set(field.values)
            for value in values where Self.isPersonal(value, key: key, role: field.role) { personal.insert(value) }
        }
        var index = 0
        for value in personal.sorted(by: { ($0.count, $0) > ($1.count, $1) }) {
            index += 1
            replacements.append((value, Self.standIn(for: value, index: index)))
        }
    }

    static func isPersonal(_ value: String, key: String, role: FieldRole?) -> Bool {
        let text = value.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty, text != "null", text != "0" else { return false }
        if role == .plate { return true }
        if let role, notPersonalRoles.contains(role) { return false }
        if FieldGuesser.keyMatches(key, cardKeys + personKeys + phoneKeys + faceKeys) {
            // Flags and codes under such keys (cardType: 1, hasCard: true) are not the person.
            return text.count >= 2 && !["true", "false"].contains(text.lowercased())
        }
        return looksPersonal(text)
    }

    /// A plate, a mainland mobile number, an id-card number or a long digit string (a card).
    static func looksPersonal(_ text: String) -> Bool {
        if FieldGuesser.looksLikePlate(text) { return true }
        if text.range(of: #"^\+?(86)?1[3-9]\d{9}$"#, options: .regularExpression) != nil { return true }
        if text.range(of: #"^\d{17}[\dXx]$"#, options: .regularExpression) != nil { return true }
        return text.count >= 8 && text.allSatisfy { $0.isASCII && $0.isNumber } && FieldGuesser.timeFormat(text) == nil
    }

    /// Same length and character classes: a plate keeps its province character (so it still
    /// looks like a plate), other Chinese characters become 某, letters X, digits count up.
    static func standIn(for value: String, index: Int) -> String {
        let digits = Array(String(index).reversed())
        var digitPosition = 0
        let characters = Array(value)
        var out: [Character] = []
        for position in stride(from: characters.count - 1, through: 0, by: -1) {
            let c = characters[position]
            if c.isASCII && c.isNumber {
                out.append(digitPosition < digits.count ? digits[digitPosition] : "0")
                digitPosition += 1
            } else if c.isASCII && c.isLetter {
                out.append(c.isUppercase ? "X" : "x")
            } else if position == 0, FieldGuesser.provinces.contains(c), FieldGuesser.looksLikePlate(value) {
                out.append(c)
            } else if c.isASCII {
                out.append(c)
            } else {
                out.append("某")
            }
        }
        return String(out.reversed())
    }

    /// The text with every personal value replaced.
    public func redact(_ text: String) -> String {
        var result = text
        for (clear, standIn) in replacements { result = result.replacingOccurrences(of: clear, with: standIn) }
        return result
    }

    /// The raw body with every personal value replaced, as UTF-8, GBK/GB18030, percent-encoded
    /// (form bodies) and JSON `\u` escapes, each by the stand-in in the same encoding.
    public func redact(_ body: [UInt8]) -> [UInt8] {
        var result = body
        for (clear, standIn) in replacements {
            for (from, to) in Self.encodings(clear, standIn) where !from.isEmpty {
                result = Self.replace(from, with: to, in: result)
            }
        }
        return result
    }

    static func encodings(_ clear: String, _ standIn: String) -> [([UInt8], [UInt8])] {
        var pairs: [([UInt8], [UInt8])] = []
        for charset in [TextDecoding.Charset.utf8, .gb18030] {
            guard let a = TextDecoding.encode(clear, as: charset), let b = TextDecoding.encode(standIn, as: charset) else { continue }
            pairs.append((a, b))
            for format in ["%%%02X", "%%%02x"] {
                let percent = { (bytes: [UInt8]) in
                    Array(bytes.map { $0 < 0x80 && ($0 == 0x2D || $0 == 0x2E || $0 == 0x5F || ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A)) ? String(UnicodeScalar($0)) : String(format: format, $0) }.joined().utf8)
                }
                pairs.append((percent(a), percent(b)))
            }
        }
        let escape = { (text: String) in
            Array(text.unicodeScalars.map { $0.isASCII ? String($0) : String(format: "\\u%04x", $0.value) }.joined().utf8)
        }
        pairs.append((escape(clear), escape(standIn)))
        pairs.append((Array(escape(clear).map { $0 >= 0x61 && $0 <= 0x66 ? $0 - 0x20 : $0 }), escape(standIn)))
        return pairs
    }

    static func replace(_ pattern: [UInt8], with replacement: [UInt8], in bytes: [UInt8]) -> [UInt8] {
        guard pattern.count <= bytes.count else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if i + pattern.count <= bytes.count, bytes[i] == pattern[0], Array(bytes[i..<(i + pattern.count)]) == pattern {
                out += replacement
                i += pattern.count
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }
}
