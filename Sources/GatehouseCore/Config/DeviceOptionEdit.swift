import Foundation
import Yams

/// Sets one device's `options.profile` in the config file's text with the smallest change that
/// does it, so the operator's comments, order and layout stay as they were: a value is replaced
/// where it stands, a missing key is inserted beside its siblings in their own style (block or
/// flow). `capture: true` is turned to `false` (a capturing device would keep quarantining
/// everything). The result is text only: the caller validates it with the config loader.
public enum DeviceOptionEdit {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public static func activate(profile: String, device id: String, in text: String) throws(Failure) -> String {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw Failure(description: "the config file is not valid YAML now: \(error)")
        }
        guard let devices = root?.mapping?["devices"]?.sequence else { throw Failure(description: "the config file has no devices list") }
        guard let item = devices.first(where: { $0.mapping?["id"]?.scalar?.string == id }), let device = item.mapping else {
            throw Failure(description: "device '\(id)' is not in the config file")
        }
        var edits: [Edit] = []
        let lines = text.components(separatedBy: "\n")
        if let options = device["options"] {
            guard let map = options.mapping else { throw Failure(description: "devices[id=\(id)].options is not a mapping") }
            if let current = map["profile"] {
                edits.append(try replace(current, with: profile))
            } else {
                // In a block mapping, right under `options:`, so comments above other keys stay theirs.
                let keyLine = device.keys.first { $0.scalar?.string == "options" }?.mark?.line
                edits.append(try insert("profile", profile, into: options, afterLine: keyLine, lines: lines))
            }
            if let capture = map["capture"], let value = capture.scalar, Bool(value.string.lowercased()) ?? ["yes", "on"].contains(value.string.lowercased()) {
                edits.append(try replace(capture, with: "false"))
            }
        } else {
            edits.append(try insert("options", "{profile: \(profile)}", into: item, afterLine: device.keys.first?.mark?.line, lines: lines))
        }
        return apply(edits, to: text)
    }

    /// Text to put at a line and column (1-based, in Unicode scalars, as libYAML counts), replacing
    /// `length` scalars there.
    struct Edit {
        var line: Int
        var column: Int
        var length: Int
        var text: String
        /// A whole new line at `line` (moving the line there down) instead of an edit within it.
        var newLine = false
    }

    static func replace(_ node: Node, with value: String) throws(Failure) -> Edit {
        guard let scalar = node.scalar, let mark = scalar.mark else { throw Failure(description: "cannot place the value \(value)") }
        let quotes: Int
        switch scalar.style {
        case .plain, .any: quotes = 0
        case .singleQuoted, .doubleQuoted: quotes = 2
        default: throw Failure(description: "line \(mark.line): a block scalar here cannot be edited in place; edit the file by hand")
        }
        guard !scalar.string.contains("\n"), !scalar.string.contains("'"), !scalar.string.contains("\\") else {
            throw Failure(description: "line \(mark.line): this value cannot be edited in place; edit the file by hand")
        }
        return Edit(line: mark.line, column: mark.column, length: scalar.string.unicodeScalars.count + quotes, text: value)
    }

    /// A key for `node`: after the opening brace of a flow mapping (`{profile: x, capture: false}`),
    /// or a line of its own after `afterLine`, indented like the mapping's first key.
    static func insert(_ key: String, _ value: String, into node: Node, afterLine: Int?, lines: [String]) throws(Failure) -> Edit {
        guard let map = node.mapping, let mark = node.mark else { throw Failure(description: "cannot place \(key)") }
        // The composed node does not keep its style: the text at its start tells.
        let line = lines.indices.contains(mark.line - 1) ? Array(lines[mark.line - 1].unicodeScalars) : []
        if line.indices.contains(mark.column - 1), line[mark.column - 1] == "{" {
            return Edit(line: mark.line, column: mark.column + 1, length: 0, text: "\(key): \(value)\(map.isEmpty ? "" : ", ")")
        }
        guard let first = map.keys.first?.mark, let afterLine else { throw Failure(description: "line \(mark.line): cannot place \(key) here; edit the file by hand") }
        return Edit(line: afterLine + 1, column: first.column, length: 0, text: "\(key): \(value)", newLine: true)
    }

    static func apply(_ edits: [Edit], to text: String) -> String {
        var lines = text.components(separatedBy: "\n")
        // From the end backwards, so an edit does not move the places of those still to come.
        for edit in edits.sorted(by: { ($0.line, $0.column) > ($1.line, $1.column) }) {
            let index = edit.line - 1
            guard lines.indices.contains(index) || (edit.newLine && index == lines.count) else { continue }
            if edit.newLine {
                lines.insert(String(repeating: " ", count: max(edit.column - 1, 0)) + edit.text, at: index)
                continue
            }
            var scalars = Array(lines[index].unicodeScalars)
            let start = min(edit.column - 1, scalars.count)
            let end = min(start + edit.length, scalars.count)
            scalars.replaceSubrange(start..<end, with: Array(edit.text.unicodeScalars))
            var rebuilt = String.UnicodeScalarView()
            rebuilt.append(contentsOf: scalars)
            lines[index] = String(rebuilt)
        }
        return lines.joined(separator: "\n")
    }
}
