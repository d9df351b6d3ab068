import CJPEGShim

/// A snapshot decoded to grey levels at reduced scale: all picture health looks at.
public struct GreyPicture: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// Row after row, one byte per pixel.
    public var pixels: [UInt8]
    /// The size the camera sent.
    public var fullWidth: Int
    public var fullHeight: Int

    public init(width: Int, height: Int, pixels: [UInt8], fullWidth: Int? = nil, fullHeight: Int? = nil) {
        self.width = width
        self.height = height
        self.pixels = pixels
        self.fullWidth = fullWidth ?? width
        self.fullHeight = fullHeight ?? height
    }

    /// Why a snapshot could not be read as a picture.
    public struct DecodeError: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// Decodes a JPEG through libjpeg (Debian's libjpeg-turbo) straight to grey, reduced by 1/2,
    /// 1/4 or 1/8 so the width stays at least `targetWidth`: a 4K snapshot then costs ~130 KB,
    /// not 25 MB. Pictures over `maxPixels` are refused from their header, before any decoding;
    /// corrupt and truncated data is an error, never a crash or a grey picture.
    public static func decodeJPEG(_ bytes: [UInt8], targetWidth: Int = 320, maxPixels: Int64 = 50_000_000) throws(DecodeError) -> GreyPicture {
        guard bytes.count >= 4, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF else {
            let start = bytes.prefix(4).map { String($0, radix: 16, uppercase: true) }.joined(separator: " ")
            throw DecodeError(description: "not a JPEG (\(bytes.count) bytes starting \(start.isEmpty ? "with nothing" : start), expected FF D8 FF)")
        }
        var pixels: UnsafeMutablePointer<UInt8>?
        var width: Int32 = 0
        var height: Int32 = 0
        var fullWidth: Int32 = 0
        var fullHeight: Int32 = 0
        var message = [CChar](repeating: 0, count: 256)
        let code = bytes.withUnsafeBufferPointer { buffer in
            gh_jpeg_decode_gray(
                buffer.baseAddress, buffer.count, Int32(targetWidth), maxPixels, &pixels, &width, &height, &fullWidth, &fullHeight,
                &message, message.count)
        }
        defer { gh_jpeg_free(pixels) }
        guard code == 0, let pixels else {
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw DecodeError(description: "JPEG decoder: \(text)")
        }
        let count = Int(width) * Int(height)
        return GreyPicture(
            width: Int(width), height: Int(height), pixels: Array(UnsafeBufferPointer(start: pixels, count: count)),
            fullWidth: Int(fullWidth), fullHeight: Int(fullHeight))
    }
}
