import GatehouseCore
import Yams

/// Reads the sections of profile.yaml; each accessor reports to the shared log with the line.
struct ProfileReader {
    let log: DiagnosticLog

    func read(_ top: YAMLMapping, folder: String, directory: String) -> Profile? {
        let format = top.int("format", default: 0, range: 0...1_000)
        if format != ProfileFormat.version {
            log.report(top.node("format"), fallback: top.mark, key: "format", top.has("format")
                ? "format \(format) is not supported (this build reads format \(ProfileFormat.version))"
                : "missing required key (expected format: \(ProfileFormat.version))")
        }
        let name = top.identifier("name") ?? folder
        if name != folder {
            log.report(top.node("name"), key: "name", "name '\(name)' differs from its folder '\(folder)' (devices name the folder; keep them equal)")
        }
        let vendor = top.string("vendor", required: true) ?? ""
        let summary = top.string("summary")
        let match = readMatch(top.mapping("match"))
        let body = readBody(top.mapping("body"))
        let identify = readDeviceRule(top.mapping("device", required: true))
        let options = readOptions(top.mapping("options"))
        let tables = readTables(top.mapping("tables"))
        let event = top.mapping("event", required: true).flatMap { readEvent($0, tables: tables) }
        let replies = readReplies(top, tables: tables)
        guard let event, let identify else { return nil }
        return Profile(
            name: name, vendor: vendor, summary: summary, directory: directory, match: match, body: body, identify: identify,
            options: options, tables: tables, event: event, replies: replies)
    }

    func readMatch(_ map: YAMLMapping?) -> MatchSpec {
        var spec = MatchSpec()
        guard let map else { return spec }
        defer { map.finish() }
        spec.contentTypes = map.stringList("content_types").map(\.value)
        spec.require = map.stringList("require").compactMap { path($0.value, node: $0.node, key: $0.path) }
        return spec
    }

    func readBody(_ map: YAMLMapping?) -> BodySpec {
        var spec = BodySpec()
        guard let map else { return spec }
        defer { map.finish() }
        spec.format = map.choice("format", default: .auto) ?? .auto
        if let label = map.string("charset") {
            if let charset = TextDecoding.Charset(label: label) {
                spec.charset = charset
            } else {
                log.report(map.node("charset"), key: map.join("charset"), "'\(label)' is not a charset this build reads (expected utf-8, gbk or gb18030)")
            }
        }
        spec.trustDeclaredCharset = map.bool("trust_declared_charset", default: true)
        spec.documentPart = map.string("document_part")
        spec.unwrapXMLRoot = map.bool("xml_unwrap_root", default: false)
        spec.maxImageBytes = Int(map.bytes("max_image_bytes", default: 8 << 20, minimum: 1))
        return spec
    }

    func readDeviceRule(_ map: YAMLMapping?) -> DeviceRule? {
        guard let map else { return nil }
        defer { map.finish() }
        let by = map.string("by", required: true, expected: "serial, header, source-ip or path")
        switch by {
        case "serial":
            guard let text = map.string("field", required: true, expected: "the payload field holding the serial number") else { return nil }
            return path(text, node: map.node("field"), key: map.join("field")).map(DeviceRule.serial)
        case "header":
            return map.string("header", required: true, expected: "a header name").map(DeviceRule.header)
        case "source-ip": return .sourceIP
        case "path": return .path
        case nil: return nil
        case let other?:
            log.report(map.node("by"), key: map.join("by"), "'\(other)' is not valid (expected serial, header, source-ip or path)")
            return nil
        }
    }

    func readOptions(_ map: YAMLMapping?) -> [String: OptionSpec] {
        guard let map else { return [:] }
        var options: [String: OptionSpec] = [:]
        for key in map.keys {
            guard let option = map.mapping(key) else { continue }
            let values = option.stringList("values").map(\.value)
            let fallback = option.string("default", required: true) ?? ""
            if !values.isEmpty, !values.contains(fallback) {
                log.report(option.node("default"), key: option.join("default"), "'\(fallback)' is not one of the values (\(values.joined(separator: ", ")))")
            }
            option.finish()
            options[key] = OptionSpec(values: values, defaultValue: fallback)
        }
        return options
    }

    func readTables(_ map: YAMLMapping?) -> [String: LookupTable] {
        guard let map else { return [:] }
        var tables: [String: LookupTable] = [:]
        for key in map.keys {
            guard let table = map.mapping(key) else { continue }
            var entries: [String: String] = [:]
            var fallback: String?
            for code in table.keys {
                guard let value = table.string(code, expected: "the value this code maps to") else { continue }
                if code == "default" { fallback = value } else { entries[code] = value }
            }
            table.finish()
            tables[key] = LookupTable(entries: entries, fallback: fallback)
        }
        return tables
    }

    func readEvent(_ map: YAMLMapping, tables: [String: LookupTable]) -> EventSpec? {
        defer { map.finish() }
        guard let kindNode = map.node("kind") else {
            log.report(nil, fallback: map.mark, key: map.join("kind"), "missing required key (expected e.g. {const: vehicle.detected} or {path: Code, lookup: kinds})")
            return nil
        }
        guard let kind = value(kindNode, key: map.join("kind"), tables: tables) else { return nil }
        checkKinds(kind, node: kindNode, key: map.join("kind"), tables: tables)
        var spec = EventSpec(kind: kind)
        if let text = map.string("each") { spec.each = path(text, node: map.node("each"), key: map.join("each")) }
        spec.when = conditions(map.node("when"), key: map.join("when"))
        spec.plate = optionalValue(map, "plate", tables: tables)
        spec.plateColor = optionalValue(map, "plate_color", tables: tables)
        spec.noPlate = map.stringList("no_plate").map(\.value)
        spec.unplatedWhen = conditions(map.node("unplated_when"), key: map.join("unplated_when"))
        spec.time = readTimes(map.node("time"), key: map.join("time"))
        spec.point = optionalValue(map, "point", tables: tables)
        spec.direction = optionalValue(map, "direction", tables: tables)
        spec.result = optionalValue(map, "result", tables: tables)
        spec.dedup = optionalValue(map, "dedup", tables: tables)
        if let attributes = map.mapping("attributes") {
            for key in attributes.keys {
                if let node = attributes.node(key), let v = value(node, key: attributes.join(key), tables: tables) { spec.attributes[key] = v }
            }
            attributes.finish()
        }
        return spec
    }

    /// A constant kind, or a table feeding the kind, must name real event kinds (or `ignore`).
    func checkKinds(_ spec: ValueSpec, node: Node, key: String, tables: [String: LookupTable]) {
        var candidates: [String] = []
        if case .constant(let text) = spec.source { candidates.append(text) }
        if let name = spec.lookup, let table = tables[name] { candidates += table.entries.values + [table.fallback].compactMap { $0 } }
        if let fallback = spec.defaultValue { candidates.append(fallback) }
        for text in candidates where text != "ignore" && EventKind(rawValue: text) == nil {
            let hint = YAMLMapping.closest(text, in: EventKind.allCases.map(\.rawValue)).map { " — did you mean '\($0)'?" } ?? ""
            log.report(node, key: key, "'\(text)' is not an event kind (expected one of docs/event-schema.md, or ignore)\(hint)")
        }
    }

    func optionalValue(_ map: YAMLMapping, _ key: String, tables: [String: LookupTable]) -> ValueSpec? {
        guard let node = map.node(key) else { return nil }
        return value(node, key: map.join(key), tables: tables)
    }

    /// A scalar is a path; a mapping has one of path, paths, const or template, plus
    /// transform, lookup and default.
    func value(_ node: Node, key: String, tables: [String: LookupTable]) -> ValueSpec? {
        if case .scalar(let scalar) = node {
            return path(scalar.string, node: node, key: key).map { ValueSpec(source: .paths([$0])) }
        }
        guard let map = YAMLMapping(node, path: key, log: log) else { return nil }
        defer { map.finish() }
        var sources: [ValueSpec.Source] = []
        if let text = map.string("path") { path(text, node: map.node("path"), key: map.join("path")).map { sources.append(.paths([$0])) } }
        let list = map.stringList("paths").compactMap { path($0.value, node: $0.node, key: $0.path) }
        if !list.isEmpty { sources.append(.paths(list)) }
        if let text = map.string("const") { sources.append(.constant(text)) }
        if let text = map.string("template") {
            switch Template.parse(text) {
            case .success(let template): sources.append(.template(template))
            case .failure(let error): log.report(map.node("template"), key: map.join("template"), error.reason)
            }
        }
        guard sources.count == 1, let source = sources.first else {
            log.report(node, key: key, "expected exactly one of path, paths, const or template (found \(sources.count))")
            return nil
        }
        var spec = ValueSpec(source: source)
        for item in map.stringList("transform") {
            guard let transform = Transform(rawValue: item.value) else {
                log.report(item.node, key: item.path, "'\(item.value)' is not a transform (expected one of \(Transform.allCases.map(\.rawValue).joined(separator: ", ")))")
                continue
            }
            spec.transforms.append(transform)
        }
        if let name = map.string("lookup") {
            if tables[name] == nil {
                let known = tables.keys.sorted().joined(separator: ", ")
                log.report(map.node("lookup"), key: map.join("lookup"), "no table '\(name)' under tables: (tables: \(known.isEmpty ? "none" : known))")
            }
            spec.lookup = name
        }
        spec.defaultValue = map.string("default")
        return spec
    }

    func readTimes(_ node: Node?, key: String) -> [TimeSpec] {
        guard let node else { return [] }
        let items: [(Node, String)]
        if case .sequence(let sequence) = node {
            items = sequence.enumerated().map { ($0.element, "\(key)[\($0.offset)]") }
        } else {
            items = [(node, key)]
        }
        return items.compactMap { item, itemKey in
            guard let map = YAMLMapping(item, path: itemKey, log: log) else { return nil }
            defer { map.finish() }
            let fieldPath = map.string("path", required: true).flatMap { path($0, node: map.node("path"), key: map.join("path")) }
            let format: TimeSpec.Format? = map.choice("format", default: nil, required: true)
            let millis = map.string("millis").flatMap { path($0, node: map.node("millis"), key: map.join("millis")) }
            let micros = map.string("micros").flatMap { path($0, node: map.node("micros"), key: map.join("micros")) }
            guard let fieldPath, let format else { return nil }
            return TimeSpec(path: fieldPath, format: format, millis: millis, micros: micros)
        }
    }

    func readReplies(_ top: YAMLMapping, tables: [String: LookupTable]) -> [ReplySpec] {
        let items = top.sequence("replies")
        if items.isEmpty {
            log.report(top.node("replies"), fallback: top.mark, key: "replies", "missing or empty (expected at least one reply; the device re-sends until it gets the one it expects)")
        }
        var replies: [ReplySpec] = []
        for item in items {
            guard let map = YAMLMapping(item.node, path: item.path, log: log) else { continue }
            defer { map.finish() }
            let when = conditions(map.node("when"), key: map.join("when"))
            let status = map.int("status", default: 200, range: 100...599)
            let contentType = map.string("content_type") ?? "application/json"
            guard let text = map.string("body", required: true) else { continue }
            switch Template.parse(text) {
            case .success(let template):
                replies.append(ReplySpec(when: when, status: status, contentType: contentType, body: template))
            case .failure(let error):
                log.report(map.node("body"), key: map.join("body"), error.reason)
            }
        }
        if let last = replies.last, !last.when.isEmpty {
            log.report(items.last?.node, key: "replies", "the last reply has a when: condition (expected a final reply without one, so every payload gets an answer)")
        }
        return replies
    }

    func conditions(_ node: Node?, key: String) -> [Condition] {
        guard let node else { return [] }
        if case .sequence(let sequence) = node {
            return sequence.enumerated().compactMap { condition($0.element, key: "\(key)[\($0.offset)]") }
        }
        return condition(node, key: key).map { [$0] } ?? []
    }

    func condition(_ node: Node, key: String) -> Condition? {
        guard let map = YAMLMapping(node, path: key, log: log) else { return nil }
        defer { map.finish() }
        var subjects: [Condition.Subject] = []
        if let text = map.string("path"), let p = path(text, node: map.node("path"), key: map.join("path")) { subjects.append(.path(p)) }
        if let name = map.string("option") { subjects.append(.option(name)) }
        if let field = map.string("event") {
            if field == "kind" || field == "result" {
                subjects.append(.event(field))
            } else {
                log.report(map.node("event"), key: map.join("event"), "'\(field)' is not valid (expected kind or result)")
            }
        }
        if map.has("error") {
            if map.bool("error", default: true) { subjects.append(.error) }
        }
        guard subjects.count == 1, let subject = subjects.first else {
            log.report(node, key: key, "expected exactly one of path, option, event or error (found \(subjects.count))")
            return nil
        }
        var condition = Condition(subject: subject)
        if let equalsNode = map.node("equals") {
            if case .scalar(let scalar) = equalsNode {
                condition.equals = [scalar.string]
            } else {
                condition.equals = map.stringList("equals").map(\.value)
            }
        }
        condition.exists = map.bool("exists", default: true)
        if subject == .error { condition.equals = ["true"] }
        return condition
    }

    func path(_ text: String, node: Node?, key: String) -> FieldPath? {
        guard let path = FieldPath(text) else {
            log.report(node, key: key, "'\(text)' is not a field path (expected names separated by dots, with [n] for list items, e.g. Events[0].Data.PlateNumber)")
            return nil
        }
        return path
    }
}
