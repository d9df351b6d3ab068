import Foundation
import GatehouseCore

/// The last raw payload a device sent, for the console's device page. Kept in memory only
/// (never written anywhere, gone at restart), at most `keptBytes` of it, and read only through
/// `shown(under:)`, which applies the privacy policy: the personal values the mapping extracted
/// appear as the policy stores them, pictures and binary parts as a note of their size.
public struct LastPayload: Sendable {
    /// Bytes kept per device: a page's worth, and small beside the device count.
    public static let keptBytes = 16 * 1024

    public let receivedAt: Timestamp
    public let contentType: String?
    /// The payload's whole size.
    public let byteCount: Int
    /// The first `keptBytes`. A larger payload is kept compacted (pictures and binary parts
    /// already replaced by their notes), so the fields after a picture still show.
    let kept: [UInt8]
    /// How many of the payload's bytes `kept` covers (less than `byteCount` when it was cut).
    let covered: Int
    var cut: Bool { covered < byteCount }
    /// The personal values the mapping extracted; nil when the payload did not map, and then
    /// every word that looks like a value is hidden, as in quarantine reasons.
    let personal: [PersonalValue]?

    struct PersonalValue: Sendable, Equatable {
        var value: String
        /// nil: a person's name (`PrivacyPolicy.personNameAttributes`).
        var type: SubjectType?
    }

    /// Copies what is needed of `body`; `drafts` are what the mapping made of it (nil: it did not map).
    public init(_ body: some Collection<UInt8>, contentType: String?, receivedAt: Timestamp, mapped drafts: [EventDraft]?) {
        self.receivedAt = receivedAt
        self.contentType = contentType.map { String($0.prefix(200)) }
        byteCount = body.count
        if body.count <= Self.keptBytes {
            kept = Array(body)
            covered = body.count
        } else {
            let compacted = PayloadCompactor.segments(Array(body), limit: Self.keptBytes)
            kept = PayloadCompactor.bytes(compacted.segments)
            covered = compacted.consumed
        }
        personal = drafts.map(Self.personalValues)
    }

    static func personalValues(_ drafts: [EventDraft]) -> [PersonalValue] {
        var values: [PersonalValue] = []
        for draft in drafts {
            if let subject = draft.subject, let value = subject.value, !value.isEmpty, PrivacyPolicy.governedTypes.contains(subject.type) {
                values.append(PersonalValue(value: value, type: subject.type))
            }
            guard let attributes = draft.attributes else { continue }
            for key in PrivacyPolicy.personNameAttributes {
                if case .string(let name)? = attributes[key], !name.isEmpty { values.append(PersonalValue(value: name, type: nil)) }
            }
        }
        return values
    }

    /// The payload as the console may show it.
    public struct Shown: Sendable, Equatable {
        public var receivedAt: Timestamp
        public var contentType: String?
        public var byteCount: Int
        /// Bytes of the payload the text covers (less than `byteCount` when it was cut).
        public var shownBytes: Int
        public var text: String
        /// Whether the mapping's personal values were replaced (false: the payload did not map,
        /// and every value-like word is hidden).
        public var mapped: Bool
    }

    public func shown(under policy: PrivacyPolicy) -> Shown {
        let segments = PayloadCompactor.segments(kept, limit: Int.max).segments
        var text = ""
        for segment in segments {
            switch segment {
            case .text(let part):
                let string = String(decoding: part, as: UTF8.self)
                text += personal == nil ? ValueRedactor.redactText(string) : string
            case .elided:
                text += segment.note
            }
        }
        if let personal {
            // Longest first: a name that contains a plate is replaced whole.
            for item in personal.sorted(by: { $0.value.count > $1.value.count }) {
                let stored = Self.stored(item, under: policy)
                guard stored != item.value else { continue }
                for form in Self.writtenForms(of: item.value) {
                    text = Self.replace(form, with: stored, in: text)
                }
                // A value cut at the end of the kept bytes must not show its first characters.
                if cut, let tail = Self.cutPrefix(of: item.value, endingAt: text) {
                    text = String(text.dropLast(tail)) + ValueRedactor.marker
                }
            }
        }
        return Shown(
            receivedAt: receivedAt, contentType: contentType, byteCount: byteCount, shownBytes: covered, text: text,
            mapped: personal != nil)
    }

    /// The value as the policy writes it into the event: clear under `keep`, masked, hashed, or `…`.
    static func stored(_ item: PersonalValue, under policy: PrivacyPolicy) -> String {
        guard let type = item.type else { return policy.names == .keep ? item.value : ValueRedactor.marker }
        switch policy.modes[type] ?? .keep {
        case .keep: return item.value
        case .mask: return PrivacyPolicy.mask(item.value, type: type)
        case .hash: return policy.hashSecret.map { PrivacyPolicy.hash(item.value, type: type, secret: $0) } ?? ValueRedactor.marker
        case .drop: return ValueRedactor.marker
        }
    }

    /// URL characters left as they are by percent-encoding (`.alphanumerics` would keep 川 too).
    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// How a value may be written in a payload: as it is, JSON-escaped (`\u5ddd`), percent-encoded.
    static func writtenForms(of value: String) -> [String] {
        var forms = [value]
        // Non-ASCII escaped (most encoders), or every character (some firmware), in either case of hex.
        for escapeAll in [false, true] where escapeAll || value.unicodeScalars.contains(where: { !$0.isASCII }) {
            var lower = ""
            var upper = ""
            for scalar in value.unicodeScalars {
                if scalar.isASCII && !escapeAll {
                    lower.unicodeScalars.append(scalar)
                    upper.unicodeScalars.append(scalar)
                } else {
                    for unit in String(scalar).utf16 {
                        lower += String(format: "\\u%04x", unit)
                        upper += String(format: "\\u%04X", unit)
                    }
                }
            }
            forms += [lower, upper]
        }
        if let encoded = value.addingPercentEncoding(withAllowedCharacters: Self.unreserved), encoded != value {
            forms += [encoded, encoded.lowercased()]
        }
        return forms
    }

    /// Every occurrence of `value`; a value shorter than four characters only where it stands
    /// alone (not inside a longer word or number), so a short card number does not blank every digit.
    static func replace(_ value: String, with replacement: String, in text: String) -> String {
        guard value.count < 4 else { return text.replacingOccurrences(of: value, with: replacement) }
        var out = ""
        var rest = text[...]
        while let range = rest.range(of: value) {
            let before = range.lowerBound > rest.startIndex ? rest[rest.index(before: range.lowerBound)] : nil
            let after = range.upperBound < rest.endIndex ? rest[range.upperBound] : nil
            let alone = !(before?.isLetter ?? false) && !(before?.isNumber ?? false) && !(after?.isLetter ?? false) && !(after?.isNumber ?? false)
            out += rest[..<range.lowerBound]
            out += alone ? replacement : String(rest[range])
            rest = rest[range.upperBound...]
        }
        return out + rest
    }

    /// The length of the longest proper beginning of `value` (two characters or more) that ends `text`.
    static func cutPrefix(of value: String, endingAt text: String) -> Int? {
        let characters = Array(value)
        guard characters.count > 2 else { return nil }
        for length in stride(from: characters.count - 1, through: 2, by: -1) where text.hasSuffix(String(characters[..<length])) {
            return length
        }
        return nil
    }
}

/// Splits a payload into text and what is not shown: long base64 runs (pictures, files inside
/// JSON, XML or form fields) and binary runs (a JPEG part of a multipart body, a protocol's
/// binary frame). One pass over the bytes, at most `limit` bytes of output.
enum PayloadCompactor {
    enum Segment: Equatable {
        case text([UInt8])
        case elided(base64: Bool, bytes: Int)

        var note: String {
            guard case .elided(let base64, let bytes) = self else { return "" }
            return base64 ? "[base64, \(bytes) bytes: not shown]" : "[binary, \(bytes) bytes: not shown]"
        }
    }

    /// A run of base64 characters at least this long is a picture or a file, not a field value.
    static let base64Run = 200
    /// Binary ends where this many text bytes follow in a row (a multipart boundary, the next field).
    static let textAfterBinary = 32

    /// The segments, and how many input bytes they cover.
    static func segments(_ bytes: [UInt8], limit: Int) -> (segments: [Segment], consumed: Int) {
        var segments: [Segment] = []
        var text: [UInt8] = []
        var size = 0
        var index = 0
        let count = bytes.count
        func flush() {
            if !text.isEmpty { segments.append(.text(text)) }
            text = []
        }
        while index < count, size < limit {
            if isBase64(bytes[index]) {
                var end = index
                while end < count, isBase64(bytes[end]) || isLineBreak(bytes[end]) { end += 1 }
                if end - index >= base64Run {
                    flush()
                    let segment = Segment.elided(base64: true, bytes: end - index)
                    segments.append(segment)
                    size += segment.note.utf8.count
                } else {
                    let take = min(end - index, limit - size)
                    text += bytes[index..<(index + take)]
                    size += take
                    if take < end - index {
                        index += take
                        break
                    }
                }
                index = end
                continue
            }
            if let length = textLength(bytes, at: index) {
                guard size + length <= limit else { break }
                text += bytes[index..<(index + length)]
                size += length
                index += length
                continue
            }
            // Binary until enough text follows in a row.
            var end = index
            var textRun = 0
            while end < count, textRun < textAfterBinary {
                if let length = textLength(bytes, at: end) {
                    textRun += length
                    end += length
                } else {
                    textRun = 0
                    end += 1
                }
            }
            let binaryEnd = textRun >= textAfterBinary ? end - textRun : count
            flush()
            let segment = Segment.elided(base64: false, bytes: binaryEnd - index)
            segments.append(segment)
            size += segment.note.utf8.count
            index = binaryEnd
        }
        flush()
        return (segments, index)
    }

    /// Segments back into bytes (notes as text), for keeping a compacted payload.
    static func bytes(_ segments: [Segment]) -> [UInt8] {
        segments.flatMap { segment -> [UInt8] in
            if case .text(let bytes) = segment { return bytes }
            return Array(segment.note.utf8)
        }
    }

    static func isBase64(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        // `\` for JSON's `\/`, `%` for a form's `%2B`.
        case UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="), UInt8(ascii: "\\"), UInt8(ascii: "%"): true
        default: false
        }
    }

    static func isLineBreak(_ byte: UInt8) -> Bool { byte == 0x0A || byte == 0x0D }

    /// The length of the UTF-8 character of printable text (or tab, line break) at `index`; nil
    /// for a control byte or bytes that are not UTF-8.
    static func textLength(_ bytes: [UInt8], at index: Int) -> Int? {
        let byte = bytes[index]
        if byte < 0x80 { return byte >= 0x20 && byte != 0x7F || byte == 0x09 || byte == 0x0A || byte == 0x0D ? 1 : nil }
        let length: Int
        switch byte {
        case 0xC2...0xDF: length = 2
        case 0xE0...0xEF: length = 3
        case 0xF0...0xF4: length = 4
        default: return nil
        }
        guard index + length <= bytes.count else { return nil }
        for next in (index + 1)..<(index + length) where bytes[next] & 0xC0 != 0x80 { return nil }
        return length
    }
}
