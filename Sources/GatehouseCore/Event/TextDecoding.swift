#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Text in the charsets devices use: UTF-8, and GBK / GB18030 from older Chinese firmware.
/// GBK goes through the C library's iconv, which every Linux the gateway runs on carries.
public enum TextDecoding {
    public enum Charset: String, Sendable, CaseIterable {
        case utf8 = "utf-8"
        case gbk
        case gb18030

        /// Reads `charset=` values as devices write them (`GB2312`, `gbk`, `UTF8`…).
        public init?(label: String) {
            switch label.lowercased().filter({ !" \"'".contains($0) }) {
            case "utf-8", "utf8": self = .utf8
            case "gbk", "gb2312", "cp936", "x-gbk": self = .gbk
            case "gb18030": self = .gb18030
            default: return nil
            }
        }
    }

    /// The text, or nil when the bytes are not valid in `charset`.
    public static func decode(_ bytes: [UInt8], as charset: Charset) -> String? {
        switch charset {
        case .utf8: return String(validating: bytes, as: UTF8.self)
        case .gbk, .gb18030: return convert(bytes, from: charset == .gbk ? "GBK" : "GB18030", to: "UTF-8").flatMap { String(validating: $0, as: UTF8.self) }
        }
    }

    /// The bytes of `text` in `charset`, or nil when it has characters the charset lacks.
    public static func encode(_ text: String, as charset: Charset) -> [UInt8]? {
        switch charset {
        case .utf8: return Array(text.utf8)
        case .gbk, .gb18030: return convert(Array(text.utf8), from: "UTF-8", to: charset == .gbk ? "GBK" : "GB18030")
        }
    }

    static func convert(_ input: [UInt8], from: String, to: String) -> [UInt8]? {
        let descriptor = iconv_open(to, from)
        guard let descriptor, descriptor != iconv_t(bitPattern: -1) else { return nil }
        defer { iconv_close(descriptor) }
        if input.isEmpty { return [] }
        let capacity = input.count * 4 + 16
        let output = UnsafeMutablePointer<CChar>.allocate(capacity: capacity)
        defer { output.deallocate() }
        let source = UnsafeMutablePointer<CChar>.allocate(capacity: input.count)
        defer { source.deallocate() }
        input.withUnsafeBytes { raw in
            for (index, byte) in raw.enumerated() { source[index] = CChar(bitPattern: byte) }
        }
        var inPointer: UnsafeMutablePointer<CChar>? = source
        var inLeft = input.count
        var outPointer: UnsafeMutablePointer<CChar>? = output
        var outLeft = capacity
        // Invalid or incomplete input makes iconv stop with bytes left: that is a decoding failure.
        guard iconv(descriptor, &inPointer, &inLeft, &outPointer, &outLeft) != -1, inLeft == 0 else { return nil }
        return (0..<(capacity - outLeft)).map { UInt8(bitPattern: output[$0]) }
    }
}
