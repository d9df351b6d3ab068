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

/// Images that came with a payload: counted for the event, never stored or forwarded.
public struct ImageStats: Sendable, Equatable {
    public var count = 0
    public var bytes = 0
    public var names: [String] = []
}

/// A decoded body: the document tree that paths read, and the images beside it.
public struct PayloadDocument: Sendable {
    public var root: JSONValue
    public var format: BodySpec.Format
    public var images = ImageStats()
}
