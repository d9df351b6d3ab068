import GatehouseCore

/// How a profile reads a body: its format and the charset of its text.
public struct BodySpec: Sendable, Equatable {
    /// The body formats the engine reads.
    public enum Format: String, Sendable, CaseIterable {
        /// Chosen from the Content-Type, else from the first byte (`{`/`[` JSON, `<` XML).
        case auto, json, xml, form, multipart
    }

    public var format: Format = .auto
    /// The charset when the request does not name one (or when `trustDeclaredCharset` is off).
    public var charset: TextDecoding.Charset = .utf8
    /// Old firmware writes `charset=utf-8` over GBK bytes; a profile can ignore the label.
    public var trustDeclaredCharset = true
    /// The multipart part holding the document (`anpr.xml`); default: the first JSON or XML part.
    public var documentPart: String?
    /// Drops the XML root element, so `<EventNotificationAlert><ANPR>…` and the JSON form of the
    /// same alert (`{"ANPR": …}`) share paths.
    public var unwrapXMLRoot = false
    /// The largest image part accepted, in bytes.
    public var maxImageBytes = 8 << 20

    public init() {}
}

/// Images that came with a payload: counted for the event; never forwarded, and stored on disk
/// only when the site asks for it (`images.store`, done by the driver from `parts`).
public struct ImageStats: Sendable, Equatable {
    public var count = 0
    public var bytes = 0
    public var names: [String] = []
    /// The image parts themselves (shared with the request body, not copied).
    public var parts: [ImagePart] = []

    /// The figures only: two payloads with the same pictures counted alike are equal stats.
    public static func == (lhs: ImageStats, rhs: ImageStats) -> Bool {
        lhs.count == rhs.count && lhs.bytes == rhs.bytes && lhs.names == rhs.names
    }
}

/// One picture of a multipart payload.
public struct ImagePart: Sendable, Equatable {
    public var name: String
    public var contentType: String
    public var body: [UInt8]

    /// Drivers that split their own bodies hand their pictures to the same image store.
    public init(name: String, contentType: String, body: [UInt8]) {
        self.name = name
        self.contentType = contentType
        self.body = body
    }
}

/// A decoded body: the document tree that paths read, and the images beside it.
public struct PayloadDocument: Sendable {
    public var root: JSONValue
    public var format: BodySpec.Format
    public var images = ImageStats()
}
