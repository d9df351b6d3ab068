import GatehouseCore

/// One brand's payload mapping, loaded from `adapters/<name>/profile.yaml` (docs/profiles.md).
///
/// Data only: the engine (`Profile+Engine.swift`) interprets it; nothing in a profile runs code.
public struct Profile: Sendable {
    public var name: String
    public var vendor: String
    public var summary: String?
    /// The folder the profile was read from.
    public var directory: String
    public var match: MatchSpec
    public var body: BodySpec
    public var identify: DeviceRule
    public var options: [String: OptionSpec]
    public var tables: [String: LookupTable]
    public var event: EventSpec
    public var replies: [ReplySpec]
}

/// What makes a payload one this profile reads.
public struct MatchSpec: Sendable, Equatable {
    /// Substrings of the Content-Type; empty accepts any.
    public var contentTypes: [String] = []
    /// Fields that must exist in the document.
    public var require: [FieldPath] = []
}

/// How the sending device is found among the configured ones when the URL does not name it.
public enum DeviceRule: Sendable, Equatable {
    /// A payload field compared with each device's `serial`.
    case serial(FieldPath)
    /// A request header compared with each device's `serial`.
    case header(String)
    /// The source address compared with each device's `address`.
    case sourceIP
    /// Only `/v1/push/{profile}/{device}` identifies the device.
    case path
}

/// A device option this profile accepts (`options: {barrier: camera}`).
public struct OptionSpec: Sendable, Equatable {
    public var values: [String]
    public var defaultValue: String
}

/// How each vendor record becomes an event.
public struct EventSpec: Sendable, Equatable {
    /// A path to a list of records; each is mapped on its own (Dahua `Events`).
    public var each: FieldPath?
    /// Records that do not meet these are skipped (acknowledged, no event).
    public var when: [Condition] = []
    public var kind: ValueSpec
    public var plate: ValueSpec?
    public var plateColor: ValueSpec?
    /// Plate texts meaning "no plate" (compared after normalisation, case-insensitive).
    public var noPlate: [String] = []
    /// Other signs of an unplated vehicle (a plate type code).
    public var unplatedWhen: [Condition] = []
    public var time: [TimeSpec] = []
    public var point: ValueSpec?
    public var direction: ValueSpec?
    public var result: ValueSpec?
    public var attributes: [String: ValueSpec] = [:]
    public var dedup: ValueSpec?
}

/// One reply the device may get; the first whose conditions hold is sent.
public struct ReplySpec: Sendable, Equatable {
    public var when: [Condition] = []
    public var status: Int = 200
    public var contentType: String = "application/json"
    public var body: Template
}

/// The reply the gateway sends to the device.
public struct ProfileReply: Sendable, Equatable {
    public var status: Int
    public var contentType: String
    public var body: String

    public init(status: Int, contentType: String, body: String) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    /// Test-vector form: a JSON body is kept as JSON so expected files stay readable.
    public var json: JSONValue {
        let parsedBody = contentType.lowercased().contains("json") ? (try? JSONValue.parse(Array(body.utf8))) : nil
        return .object([
            "status": .number(Double(status)), "contentType": .string(contentType),
            "body": parsedBody ?? .string(body),
        ])
    }
}
