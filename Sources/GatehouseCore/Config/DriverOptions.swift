import Foundation
import Yams

/// One option a driver takes, declared once: the config loader reads it with the same readers
/// (and the same words for booleans and sizes) as every other key, and the driver README and
/// the "every option documented" test read the same declaration.
public struct OptionDeclaration: Sendable {
    public enum Kind: Sendable {
        case bool
        case int(ClosedRange<Int>)
        /// A number, such as seconds, within a range.
        case double(ClosedRange<Double>)
        /// A size in bytes, written like every other size (`512MiB`, `2GB`).
        case size(minimum: Int64)
        case string
        /// One of these words, matched without regard to case; the value is the listed spelling.
        case choice([String])
        /// An IPv4 address.
        case ipv4
        /// `IPv4:port`, such as a listener a device is told to send to.
        case hostPort
        /// A mapping from a vendor's own names (an ONVIF topic, a Hikvision event type, a Dahua
        /// code) to event kinds, one `code: kind` per line, in the order written.
        case kindTable
    }

    public let name: String
    public let kind: Kind
    /// The value when the option is not written; nil when absent means "not set".
    public let defaultValue: OptionValue?
    /// One line for the docs and for error messages.
    public let summary: String

    public init(_ name: String, _ kind: Kind, default defaultValue: OptionValue? = nil, _ summary: String) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.summary = summary
    }
}

/// A driver option's value, typed by its declaration.
public enum OptionValue: Sendable, Equatable, CustomStringConvertible {
    case bool(Bool)
    case int(Int)
    case double(Double)
    case size(Int64)
    case string(String)
    case hostPort(host: String, port: Int)
    case kindTable([KindTableRow])

    public var description: String {
        switch self {
        case .bool(let value): String(value)
        case .int(let value): String(value)
        case .double(let value): YAMLMapping.format(value)
        case .size(let value): String(value)
        case .string(let value): value
        case .hostPort(let host, let port): "\(host):\(port)"
        case .kindTable(let rows): rows.map { "\($0.code): \($0.kind.rawValue)" }.joined(separator: ", ")
        }
    }
}

/// One row of a `kindTable` option: a vendor's name for something and the kind it becomes.
public struct KindTableRow: Sendable, Equatable {
    public let code: String
    public let kind: EventKind

    public init(_ code: String, _ kind: EventKind) {
        self.code = code
        self.kind = kind
    }
}

/// What a driver takes under a device's `options:`.
public struct DriverOptionSet: Sendable {
    /// What the loader knows when it asks for options that depend on others.
    public struct Context: Sendable {
        /// The fixed options, already read.
        public let fixed: DeviceOptions
        /// Every option key written for the device.
        public let keys: [String]
        public let adaptersDirectory: String
    }

    public var options: [OptionDeclaration]
    /// Options that depend on a fixed one (the profile driver: those the chosen profile
    /// declares). nil from it means "cannot tell": the remaining keys are kept as strings and
    /// the driver's `validate` says why (e.g. no such profile).
    public var dependent: (@Sendable (Context) -> [OptionDeclaration]?)?

    public init(_ options: [OptionDeclaration] = [], dependent: (@Sendable (Context) -> [OptionDeclaration]?)? = nil) {
        self.options = options
        self.dependent = dependent
    }

    public static let none = DriverOptionSet()
}

/// A device's `options:`, read against its driver's declarations: the values as configured,
/// typed, and the declared defaults behind them.
public struct DeviceOptions: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    /// The options written in the config.
    public var configured: [String: OptionValue]
    /// Declared defaults, returned by the typed accessors when an option is not written.
    public var defaults: [String: OptionValue]

    public init() { self.init(configured: [:], defaults: [:]) }

    public init(configured: [String: OptionValue], defaults: [String: OptionValue]) {
        self.configured = configured
        self.defaults = defaults
    }

    /// Text values, for options built in code rather than read from a file (tests, profile
    /// vectors): they are `.string`, so only `string(_:)` and the subscript see them.
    public init(dictionaryLiteral elements: (String, String)...) {
        configured = Dictionary(elements.map { ($0.0, OptionValue.string($0.1)) }, uniquingKeysWith: { _, last in last })
        defaults = [:]
    }

    /// The configured value as text (defaults not included), as profiles read options.
    public subscript(name: String) -> String? { configured[name]?.description }

    public var isEmpty: Bool { configured.isEmpty }
    public var keys: [String] { configured.keys.sorted() }
    /// The configured values as text.
    public var text: [String: String] { configured.mapValues(\.description) }

    /// The configured value, else the declared default.
    public func value(_ name: String) -> OptionValue? { configured[name] ?? defaults[name] }

    public func bool(_ name: String) -> Bool? { if case .bool(let v) = value(name) { v } else { nil } }
    public func int(_ name: String) -> Int? { if case .int(let v) = value(name) { v } else { nil } }
    public func double(_ name: String) -> Double? { if case .double(let v) = value(name) { v } else { nil } }
    public func size(_ name: String) -> Int64? { if case .size(let v) = value(name) { v } else { nil } }
    public func string(_ name: String) -> String? { if case .string(let v) = value(name) { v } else { nil } }
    public func hostPort(_ name: String) -> (host: String, port: Int)? {
        if case .hostPort(let host, let port) = value(name) { (host, port) } else { nil }
    }
    /// The rows as written; none when the option is not set.
    public func kindTable(_ name: String) -> [KindTableRow] {
        if case .kindTable(let rows) = value(name) { rows } else { [] }
    }
}

extension ConfigLoader {
    /// Reads a device's `options:` against its driver's declarations; every problem is reported
    /// at its key (`devices[i].options.name`) with what would be valid.
    static func readOptions(_ map: YAMLMapping?, declared set: DriverOptionSet?, driver: String, adaptersDirectory: String) -> DeviceOptions {
        // An unknown driver is reported at `driver:`; its options are not checked.
        guard let set else {
            map?.keys.forEach { _ = map?.node($0) }
            return DeviceOptions()
        }
        var options = DeviceOptions()
        for declaration in set.options { read(declaration, from: map, into: &options) }
        guard let map else { return options }
        var declared = set.options.map(\.name)
        if let dependent = set.dependent {
            let context = DriverOptionSet.Context(fixed: options, keys: map.keys, adaptersDirectory: adaptersDirectory)
            if let more = dependent(context) {
                for declaration in more {
                    read(declaration, from: map, into: &options)
                    declared.append(declaration.name)
                }
            } else {
                // The driver's validate says why these cannot be checked.
                for key in map.keys where !declared.contains(key) {
                    if let text = map.string(key, expected: "a scalar value") { options.configured[key] = OptionValue.string(text) }
                    declared.append(key)
                }
            }
        }
        for key in map.keys where !declared.contains(key) {
            let valid = declared.sorted().joined(separator: ", ")
            let hint = YAMLMapping.closest(key, in: declared).map { " — did you mean '\($0)'?" } ?? ""
            let expected = declared.isEmpty ? "driver \(driver) takes no options" : "valid options for driver \(driver): \(valid)"
            map.log.report(map.keyNode(key), fallback: map.mark, key: map.join(key), "unknown option\(hint) (\(expected))")
            _ = map.node(key)
        }
        map.finish()
        return options
    }

    private static func read(_ declaration: OptionDeclaration, from map: YAMLMapping?, into options: inout DeviceOptions) {
        let name = declaration.name
        if let value = declaration.defaultValue { options.defaults[name] = value }
        guard let written = map, written.has(name) else { return }
        let map: YAMLMapping
        switch declaration.kind {
        case .bool, .int, .double: map = unquoted(name, in: written)
        default: map = written
        }
        let value: OptionValue?
        switch declaration.kind {
        case .bool: value = .bool(map.bool(name, default: false))
        case .int(let range): value = .int(map.int(name, default: range.lowerBound, range: range))
        case .double(let range): value = .double(map.double(name, default: range.lowerBound, range: range))
        case .size(let minimum): value = .size(map.bytes(name, default: minimum, minimum: minimum))
        case .string: value = map.string(name, expected: "a string (\(declaration.summary))").map(OptionValue.string)
        case .choice(let words):
            let list = words.joined(separator: ", ")
            guard let text = map.string(name, expected: "one of \(list)") else { return }
            if let word = words.first(where: { $0.caseInsensitiveCompare(text) == .orderedSame }) {
                value = .string(word)
            } else {
                let hint = YAMLMapping.closest(text, in: words).map { " — did you mean '\($0)'?" } ?? ""
                map.log.report(map.node(name), key: map.join(name), "'\(text)' is not valid (expected one of \(list))\(hint)")
                value = nil
            }
        case .ipv4:
            guard let text = map.string(name, expected: "an IPv4 address") else { return }
            if isIPv4(text) {
                value = .string(text)
            } else {
                map.log.report(map.node(name), key: map.join(name), "'\(text)' is not an IPv4 address (expected e.g. 0.0.0.0 for every interface)")
                value = nil
            }
        case .hostPort:
            guard let text = map.string(name, expected: "host:port") else { return }
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            if parts.count == 2, isIPv4(String(parts[0])), let port = Int(parts[1]), (1...65_535).contains(port) {
                value = .hostPort(host: String(parts[0]), port: port)
            } else {
                map.log.report(map.node(name), key: map.join(name), "'\(text)' is not host:port (expected an IPv4 address and a port 1–65535, e.g. 192.168.1.10:60001)")
                value = nil
            }
        case .kindTable:
            value = readKindTable(name, from: map)
        }
        if let value { options.configured[name] = value }
    }

    /// `code: kind` lines; each bad line is reported at its own line, with the nearest kind.
    private static func readKindTable(_ name: String, from map: YAMLMapping) -> OptionValue? {
        guard let node = map.node(name) else { return nil }
        guard case .mapping(let mapping) = node else {
            map.log.report(node, key: map.join(name), "expected a mapping of code: kind, one per line (e.g. 'VideoMotion: camera.intrusion'), found \(YAMLMapping.describe(node))")
            return nil
        }
        let kinds = EventKind.allCases.map(\.rawValue)
        var rows: [KindTableRow] = []
        var seen: Set<String> = []
        for (keyNode, valueNode) in mapping {
            let path = map.join("\(name).\(keyNode.string ?? YAMLMapping.describe(keyNode))")
            guard let code = keyNode.string, !code.isEmpty else {
                map.log.report(keyNode, key: path, "expected a vendor code, topic or event type as the key")
                continue
            }
            guard seen.insert(code).inserted else {
                map.log.report(keyNode, key: path, "duplicate key (each code may appear once)")
                continue
            }
            guard case .scalar(let scalar) = valueNode, let kind = EventKind(rawValue: scalar.string) else {
                let written = YAMLMapping.describe(valueNode)
                let hint = valueNode.string.flatMap { YAMLMapping.closest($0, in: kinds) }.map { " — did you mean '\($0)'?" } ?? ""
                map.log.report(valueNode, key: path, "\(written) is not an event kind\(hint) (expected one of the kinds in docs/event-schema.md, e.g. camera.intrusion, alarm.input, vendor.other)")
                continue
            }
            rows.append(KindTableRow(code, kind))
        }
        return .kindTable(rows)
    }

    /// Options used to be text, so configs quote numbers and booleans (`"0.5"`, `"true"`), which
    /// YAML reads as strings: those still mean what they meant, read as if written plain.
    private static func unquoted(_ name: String, in map: YAMLMapping) -> YAMLMapping {
        guard case .scalar(let scalar)? = map.node(name), scalar.style != .plain, !scalar.string.isEmpty,
            let key = map.keyNode(name)
        else { return map }
        let plain = Node.scalar(Node.Scalar(scalar.string, .implicit, .plain, scalar.mark))
        return YAMLMapping(.mapping(Node.Mapping([(key, plain)], .implicit, .block, map.mark)), path: map.path, log: map.log) ?? map
    }

    static func isIPv4(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCII) && UInt8($0) != nil }
    }
}
