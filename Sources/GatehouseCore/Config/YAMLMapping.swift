import Foundation
import Yams

/// Parses a YAML document into nodes without resolving plain scalars' tags. Yams' default resolver
/// compiles seven NSRegularExpressions (ICU) on first use, which keeps ICU's regex code and data
/// resident for the daemon's whole life; every reader here interprets scalars itself (`int`,
/// `bool`, `null`…), so no tag is ever needed.
package enum YAMLDocument {
    package static func compose(_ text: String) throws -> Node? {
        try Yams.compose(yaml: text, .basic)
    }
}

/// Collects diagnostics while a config file is read, so that all of them are reported at once.
package final class DiagnosticLog {
    package let file: String
    /// Where relative paths in the file point: the file's own directory, never the working
    /// directory (systemd starts the daemon in its state directory).
    package let directory: String
    package private(set) var items: [ConfigDiagnostic] = []

    package init(file: String) {
        self.file = file
        directory = URL(fileURLWithPath: file).deletingLastPathComponent().standardizedFileURL.path
    }

    /// `path` as written when absolute, otherwise under the config file's directory.
    package func resolve(_ path: String) -> String {
        path.hasPrefix("/") ? path : URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: directory, isDirectory: true)).standardizedFileURL.path
    }

    package func report(_ node: Node?, fallback: Mark? = nil, key: String, _ message: String) {
        let mark = node?.mark ?? fallback
        items.append(
            ConfigDiagnostic(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1, key: key, message: message))
    }
}

/// A YAML mapping read key by key: every accessor reports type and range errors with the
/// line of the offending value, and `finish()` reports keys nobody asked for.
package final class YAMLMapping {
    package let path: String
    package let log: DiagnosticLog
    package let mark: Mark?
    private var entries: [(key: String, keyNode: Node, value: Node)] = []
    private var used: Set<String> = []

    package init?(_ node: Node, path: String, log: DiagnosticLog) {
        guard case .mapping(let mapping) = node else {
            log.report(node, key: path, "expected a mapping of keys to values, found \(YAMLMapping.describe(node))")
            return nil
        }
        self.path = path
        self.log = log
        self.mark = mapping.mark
        var seen: Set<String> = []
        for (keyNode, value) in mapping {
            guard let key = keyNode.string else { continue }
            if !seen.insert(key).inserted {
                log.report(keyNode, key: join(key), "duplicate key (each key may appear once)")
            }
            entries.append((key, keyNode, value))
        }
    }

    package func join(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    package func node(_ key: String) -> Node? {
        used.insert(key)
        return entries.first { $0.key == key }?.value
    }

    /// Where `key` itself is written, for problems with the key rather than its value.
    package func keyNode(_ key: String) -> Node? { entries.first { $0.key == key }?.keyNode }

    package func has(_ key: String) -> Bool { entries.contains { $0.key == key } }

    /// Every key present, in file order.
    package var keys: [String] { entries.map(\.key) }

    private func missing(_ key: String, _ expected: String) {
        log.report(nil, fallback: mark, key: join(key), "missing required key (expected \(expected))")
    }

    package func string(_ key: String, required: Bool = false, expected: String = "a string") -> String? {
        guard let node = node(key) else {
            if required { missing(key, expected) }
            return nil
        }
        guard case .scalar(let scalar) = node, !(node.null != nil && scalar.style == .plain) else {
            log.report(node, key: join(key), "expected \(expected), found \(YAMLMapping.describe(node))")
            return nil
        }
        if required, scalar.string.isEmpty {
            log.report(node, key: join(key), "must not be empty (expected \(expected))")
            return nil
        }
        return scalar.string
    }

    /// A file or directory path; a relative one is resolved against the config file's directory.
    package func filePath(_ key: String, required: Bool = false, expected: String = "a path") -> String? {
        string(key, required: required, expected: expected).map(log.resolve)
    }

    package func identifier(_ key: String, required: Bool = true) -> String? {
        let expected = "letters, digits, '.', '_' or '-', at most 64 characters"
        guard let value = string(key, required: required, expected: expected) else { return nil }
        let allowed = value.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D
        }
        guard allowed, !value.isEmpty, value.utf8.count <= 64 else {
            log.report(node(key), key: join(key), "invalid identifier '\(value)' (expected \(expected))")
            return nil
        }
        return value
    }

    package func int(_ key: String, default value: Int, range: ClosedRange<Int>) -> Int {
        guard let node = node(key) else { return value }
        guard let parsed = node.int, !(node.string?.contains(".") ?? false) else {
            log.report(node, key: join(key), "expected a whole number from \(range.lowerBound) to \(range.upperBound), found \(YAMLMapping.describe(node))")
            return value
        }
        guard range.contains(parsed) else {
            log.report(node, key: join(key), "\(parsed) is out of range (expected \(range.lowerBound) to \(range.upperBound))")
            return value
        }
        return parsed
    }

    package func double(_ key: String, default value: Double, range: ClosedRange<Double>) -> Double {
        guard let node = node(key) else { return value }
        guard let parsed = node.float ?? node.int.map(Double.init), parsed.isFinite else {
            log.report(node, key: join(key), "expected a number from \(YAMLMapping.format(range.lowerBound)) to \(YAMLMapping.format(range.upperBound)), found \(YAMLMapping.describe(node))")
            return value
        }
        guard range.contains(parsed) else {
            log.report(node, key: join(key), "\(YAMLMapping.format(parsed)) is out of range (expected \(YAMLMapping.format(range.lowerBound)) to \(YAMLMapping.format(range.upperBound)))")
            return value
        }
        return parsed
    }

    package func bool(_ key: String, default value: Bool) -> Bool {
        guard let node = node(key) else { return value }
        guard let parsed = node.bool else {
            log.report(node, key: join(key), "expected true or false, found \(YAMLMapping.describe(node))")
            return value
        }
        return parsed
    }

    package func choice<T: RawRepresentable & CaseIterable>(_ key: String, default value: T?, required: Bool = false) -> T?
    where T.RawValue == String {
        let options = T.allCases.map(\.rawValue).joined(separator: ", ")
        guard let text = string(key, required: required, expected: "one of \(options)") else { return value }
        guard let parsed = T(rawValue: text) else {
            let hint = YAMLMapping.closest(text, in: T.allCases.map(\.rawValue)).map { " — did you mean '\($0)'?" } ?? ""
            log.report(node(key), key: join(key), "'\(text)' is not valid (expected one of \(options))\(hint)")
            return value
        }
        return parsed
    }

    /// A size in bytes: a whole number, or a number with an unambiguous unit (`512MiB`, `2GB`).
    package func bytes(_ key: String, default value: Int64, minimum: Int64) -> Int64 {
        guard let node = node(key) else { return value }
        let expected = "a size in bytes such as 1073741824, 512MiB or 2GB, at least \(minimum); \(YAMLMapping.sizeUnits)"
        guard let text = node.string, let parsed = YAMLMapping.parseSize(text) else {
            log.report(node, key: join(key), "expected \(expected), found \(YAMLMapping.describe(node))")
            return value
        }
        guard parsed >= minimum else {
            log.report(node, key: join(key), "\(parsed) bytes is too small (expected \(expected))")
            return value
        }
        return parsed
    }

    package func mapping(_ key: String, required: Bool = false) -> YAMLMapping? {
        guard let node = node(key) else {
            if required { missing(key, "a mapping") }
            return nil
        }
        return YAMLMapping(node, path: join(key), log: log)
    }

    /// Items of a sequence with their paths; a missing key is an empty list.
    package func sequence(_ key: String) -> [(node: Node, path: String)] {
        guard let node = node(key) else { return [] }
        guard case .sequence(let items) = node else {
            log.report(node, key: join(key), "expected a list, found \(YAMLMapping.describe(node))")
            return []
        }
        return items.enumerated().map { ($0.element, "\(join(key))[\($0.offset)]") }
    }

    package func stringList(_ key: String) -> [(value: String, node: Node, path: String)] {
        sequence(key).compactMap { item in
            guard case .scalar(let scalar) = item.node else {
                log.report(item.node, key: item.path, "expected a string, found \(YAMLMapping.describe(item.node))")
                return nil
            }
            return (scalar.string, item.node, item.path)
        }
    }

    package func addressRanges(_ key: String) -> [AddressRange] {
        stringList(key).compactMap { item in
            guard let range = AddressRange(item.value) else {
                log.report(item.node, key: item.path, "'\(item.value)' is not an IP address or CIDR range (expected e.g. 192.168.10.0/24, 10.0.0.7 or ::1)")
                return nil
            }
            return range
        }
    }

    /// A secret: a literal string, `{env: NAME}`, `{file: PATH}` or `{credential: NAME}` (a
    /// systemd credential, `$CREDENTIALS_DIRECTORY/NAME`). The value is read now so that a
    /// missing file, variable or credential stops start-up rather than the first request.
    package func secret(_ key: String, required: Bool = false, environment: [String: String]) -> Secret? {
        let forms = "a string, {env: NAME}, {file: PATH} or {credential: NAME}"
        guard let node = node(key) else {
            if required { missing(key, "a secret: \(forms)") }
            return nil
        }
        if case .scalar(let scalar) = node {
            return Secret(value: scalar.string, origin: "inline value at line \(node.mark?.line ?? 0)")
        }
        guard let map = YAMLMapping(node, path: join(key), log: log) else { return nil }
        defer { map.finish() }
        if let name = map.string("env") {
            guard let value = environment[name], !value.isEmpty else {
                log.report(map.node("env"), key: map.join("env"), "environment variable \(name) is not set or empty")
                return nil
            }
            return Secret(value: value, origin: "env \(name)")
        }
        if let path = map.filePath("file") {
            return map.secretFile(path, key: "file", what: "secret file '\(path)'", origin: "file \(path)")
        }
        if let name = map.string("credential") {
            guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
                log.report(map.node("credential"), key: map.join("credential"), "'\(name)' is not a credential name (expected the NAME of LoadCredential=NAME:PATH, without '/')")
                return nil
            }
            guard let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty else {
                log.report(map.node("credential"), key: map.join("credential"), "credential '\(name)' needs $CREDENTIALS_DIRECTORY, which is not set (systemd sets it for a unit with LoadCredential=\(name):PATH; when running by hand, use {file: PATH})")
                return nil
            }
            let path = (directory as NSString).appendingPathComponent(name)
            return map.secretFile(
                path, key: "credential",
                what: "credential '\(name)' in $CREDENTIALS_DIRECTORY (\(directory); expected LoadCredential=\(name):PATH in the unit)",
                origin: "credential \(name)")
        }
        log.report(node, key: join(key), "expected \(forms)")
        return nil
    }

    /// Reads a secret from a file, trimmed; reports an unreadable or empty one at `key`.
    private func secretFile(_ path: String, key: String, what: String, origin: String) -> Secret? {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            log.report(node(key), key: join(key), "cannot read \(what) (expected a readable UTF-8 file)")
            return nil
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else {
            log.report(node(key), key: join(key), "\(what) is empty")
            return nil
        }
        return Secret(value: trimmed, origin: origin)
    }

    /// Reports every key that no accessor asked for, with the nearest valid key as a hint.
    package func finish() {
        let known = Array(used)
        for entry in entries where !used.contains(entry.key) {
            let hint = YAMLMapping.closest(entry.key, in: known).map { " — did you mean '\($0)'?" } ?? ""
            let valid = known.sorted().joined(separator: ", ")
            log.report(entry.keyNode, key: join(entry.key), "unknown key\(hint) (valid keys here: \(valid))")
        }
    }

    package static func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar):
            if node.null != nil, scalar.style == .plain { return "nothing (null)" }
            return "'\(scalar.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    package static func format(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e12 ? String(Int64(value)) : String(value)
    }

    /// The units a size may carry, for error messages.
    package static let sizeUnits =
        "units are B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), written in exactly that case"

    /// Only units whose meaning is not in doubt, in the case they are written: `2g`, `2m` or
    /// `2 gb` could mean 10⁹ or 2³⁰ bytes, and `KB` is used for both, so they are refused.
    package static func parseSize(_ text: String) -> Int64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { $0.isNumber || $0 == "." }
        guard let number = Double(digits), number >= 0 else { return nil }
        let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces)
        let multipliers: [String: Double] = [
            "": 1, "B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
            "KiB": 1024, "MiB": 1_048_576, "GiB": 1_073_741_824, "TiB": 1_099_511_627_776,
        ]
        guard let multiplier = multipliers[unit] else { return nil }
        let bytes = number * multiplier
        guard bytes < 9e18 else { return nil }
        return Int64(bytes)
    }

    /// The candidate within edit distance 2, for "did you mean" hints.
    package static func closest(_ word: String, in candidates: [String]) -> String? {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var previous = Array(0...b.count)
            for (i, ca) in a.enumerated() {
                var current = [i + 1]
                for (j, cb) in b.enumerated() {
                    current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (ca == cb ? 0 : 1)))
                }
                previous = current
            }
            return previous[b.count]
        }
        let w = Array(word.lowercased())
        return candidates.map { ($0, distance(w, Array($0.lowercased()))) }
            .filter { $0.1 <= 2 && $0.1 < max(2, w.count / 2 + 1) }
            .min { $0.1 < $1.1 }?.0
    }
}
