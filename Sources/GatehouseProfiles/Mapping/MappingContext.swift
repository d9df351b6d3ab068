import Foundation
import GatehouseCore

/// The device a payload is mapped for, as the engine needs it (no driver types here).
public struct ProfileDevice: Sendable, Equatable {
    public var id: String
    public var serial: String?
    public var timeZone: TimeZone
    public var options: [String: String]

    public init(id: String, serial: String? = nil, timeZone: TimeZone, options: [String: String] = [:]) {
        self.id = id
        self.serial = serial
        self.timeZone = timeZone
        self.options = options
    }
}

/// A request as the engine sees it: bytes and the few transport facts profiles may use.
public struct ProfileRequest: Sendable {
    public var body: [UInt8]
    public var contentType: String?
    /// Header names in lower case.
    public var headers: [String: String]
    public var remoteIP: String?

    public init(body: [UInt8], contentType: String?, headers: [String: String] = [:], remoteIP: String? = nil) {
        self.body = body
        self.contentType = contentType
        self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
        self.remoteIP = remoteIP
    }
}

/// What paths and templates read while one item is mapped.
struct MappingContext {
    var item: JSONValue
    var document: PayloadDocument?
    var request: ProfileRequest?
    var device: ProfileDevice?

    func value(_ path: FieldPath) -> JSONValue? {
        guard case .key(let first)? = path.steps.first, first.hasPrefix("$") else {
            return path.resolve(in: item)
        }
        let rest = Array(path.steps.dropFirst())
        func name(_ index: Int) -> String? {
            guard index < rest.count, case .key(let key) = rest[index] else { return nil }
            return key
        }
        switch first {
        case "$root":
            guard let root = document?.root else { return nil }
            guard !rest.isEmpty else { return root }
            return FieldPath(steps: rest).resolve(in: root)
        case "$device":
            switch name(0) {
            case "id": return device.map { .string($0.id) }
            case "serial": return device?.serial.map(JSONValue.string)
            case "zone": return device.map { .string($0.timeZone.identifier) }
            default: return nil
            }
        case "$option":
            return name(0).flatMap { device?.options[$0] }.map(JSONValue.string)
        case "$header":
            return name(0).flatMap { request?.headers[$0.lowercased()] }.map(JSONValue.string)
        case "$images":
            guard let images = document?.images else { return nil }
            switch name(0) {
            case "count": return .number(Double(images.count))
            case "bytes": return .number(Double(images.bytes))
            default: return nil
            }
        default:
            return nil
        }
    }

    func text(_ path: FieldPath) -> String? { value(path)?.mappingText }
}

extension FieldPath {
    init(steps: [Step]) {
        self.steps = steps
        self.text = steps.map { step in
            switch step {
            case .key(let key): key
            case .index(let index): "[\(index)]"
            }
        }.joined(separator: ".")
    }
}
