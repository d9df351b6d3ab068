import Foundation
import GatehouseCore

/// One access-control record, from a pushed `AccessControllerEvent` alert or an `AcsEvent` search
/// `InfoList` entry (the two name the same fields slightly differently).
struct HikvisionACSRecord: Equatable {
    var major: Int
    var minor: Int
    var serialNo: Int64?
    var dateTime: String?
    var employee: String?
    var cardNo: String?
    var doorNo: Int?
    var cardReaderNo: Int?
    var verifyMode: String?
    var attendanceStatus: String?
    var picturesNumber: Int?
}

/// What a pushed body holds: the alert (if an access event), identity fields, and the pictures counted.
struct HikvisionACSPush: Equatable {
    var eventType: String
    var record: HikvisionACSRecord?
    var macAddress: String?
    var deviceSerial: String?
    var pictures: Int = 0
}

enum HikvisionACSRecords {
    // MARK: - Bodies

    /// Reads a pushed body: bare JSON, or multipart/form-data with a JSON part (any picture parts are counted, not kept).
    static func parsePush(_ body: [UInt8], contentType: String?) throws(PayloadError) -> HikvisionACSPush {
        let isMultipart = contentType?.lowercased().hasPrefix("multipart/") ?? false
        // Tolerance: a "multipart" post whose body is the bare alert, and a boundary missing from
        // the Content-Type but evident from the body's first line.
        let bare = body.first { !($0 == 32 || $0 == 9 || $0 == 13 || $0 == 10) } == UInt8(ascii: "{")
        if isMultipart, !bare, let boundary = boundary(contentType) ?? HikvisionMultipart.boundaryFromBody(body) {
            let parts = try HikvisionMultipart.parse(body, boundary: boundary)
            let jsonPart = parts.first { ["accesscontrollerevent", "event_log"].contains($0.name?.lowercased() ?? "") }
                ?? parts.first { ($0.contentType ?? "").lowercased().contains("json") }
                ?? parts.first { $0.body.first.map { $0 == UInt8(ascii: "{") } ?? false }
            guard let jsonPart else {
                throw PayloadError(
                    "multipart body has \(parts.count) parts (\(parts.map { $0.name ?? "unnamed" }.joined(separator: ", "))) and no JSON event part (expected name=\"AccessControllerEvent\" or \"event_log\")")
            }
            var push = try parseAlert(jsonPart.body)
            push.pictures = parts.filter { ($0.contentType ?? "").lowercased().hasPrefix("image/") }.count
            return push
        }
        return try parseAlert(body)
    }

    /// `boundary=` of a multipart Content-Type, unquoted; nil for other types.
    static func boundary(_ contentType: String?) -> String? {
        guard let type = contentType, type.lowercased().hasPrefix("multipart/"),
            let range = type.range(of: "boundary=", options: .caseInsensitive)
        else { return nil }
        let value = type[range.upperBound...].prefix { $0 != ";" }.trimmingCharacters(in: .whitespaces)
        return value.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    }

    static func parseAlert(_ body: [UInt8]) throws(PayloadError) -> HikvisionACSPush {
        let object: [String: Any]
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
                throw PayloadError("the event is not a JSON object (expected an EventNotificationAlert object)")
            }
            object = parsed
        } catch let error as PayloadError {
            throw error
        } catch {
            let preview = String(decoding: body.prefix(60), as: UTF8.self)
            throw PayloadError("the event is not valid JSON (\(body.count) bytes starting '\(preview)'): \((error as NSError).localizedDescription)")
        }
        guard let eventType = object["eventType"] as? String else {
            throw PayloadError("no eventType in the alert (expected \"AccessControllerEvent\" or \"heartBeat\")")
        }
        var push = HikvisionACSPush(
            eventType: eventType, macAddress: object["macAddress"] as? String,
            deviceSerial: (object["serialNumber"] as? String) ?? (object["serialNo"] as? String) ?? (object["deviceID"] as? String))
        guard eventType == "AccessControllerEvent" else { return push }
        guard let block = object["AccessControllerEvent"] as? [String: Any] else {
            throw PayloadError("eventType AccessControllerEvent without an AccessControllerEvent object")
        }
        var record = try record(block, majorKey: "majorEventType", minorKey: "subEventType")
        record.dateTime = (block["dateTime"] as? String) ?? (object["dateTime"] as? String)
        push.record = record
        return push
    }

    /// One record from an alert block or an `InfoList` entry.
    static func record(_ block: [String: Any], majorKey: String, minorKey: String) throws(PayloadError) -> HikvisionACSRecord {
        guard let major = int(block[majorKey]) else {
            throw PayloadError("\(majorKey) '\(block[majorKey].map { "\($0)" } ?? "missing")' is not an integer (expected e.g. 5)")
        }
        guard let minor = int(block[minorKey]) else {
            throw PayloadError("\(minorKey) '\(block[minorKey].map { "\($0)" } ?? "missing")' is not an integer (expected e.g. 75)")
        }
        let employee = (block["employeeNoString"] as? String) ?? int(block["employeeNo"]).map(String.init)
        return HikvisionACSRecord(
            major: major, minor: minor, serialNo: int(block["serialNo"]).map(Int64.init), dateTime: block["time"] as? String,
            employee: employee.flatMap { $0.isEmpty ? nil : $0 }, cardNo: (block["cardNo"] as? String).flatMap { $0.isEmpty ? nil : $0 },
            doorNo: int(block["doorNo"]), cardReaderNo: int(block["cardReaderNo"]), verifyMode: block["currentVerifyMode"] as? String,
            attendanceStatus: block["attendanceStatus"] as? String, picturesNumber: int(block["picturesNumber"]))
    }

    static func int(_ value: Any?) -> Int? {
        switch value {
        case let n as Int: n
        case let n as Double where n == n.rounded(): Int(n)
        case let s as String: Int(s)
        default: nil
        }
    }

    // MARK: - Mapping

    /// The draft for one record; `identity` scopes the dedup key (the device's serial or id); times
    /// without an offset are read in `zone`.
    static func draft(for record: HikvisionACSRecord, identity: String, zone: TimeZone) -> EventDraft {
        let mapping = HikvisionACSCodes.mapping(major: record.major, minor: record.minor)
        let occurredAt = record.dateTime.flatMap { DeviceTimeParser.parse($0, zone: zone) }
        var attributes: [String: JSONValue] = [
            "major": .number(Double(record.major)), "minor": .number(Double(record.minor)),
        ]
        if let serialNo = record.serialNo { attributes["serialNo"] = .number(Double(serialNo)) }
        if let mode = record.verifyMode { attributes["verifyMode"] = .string(mode) }
        if let reader = record.cardReaderNo { attributes["cardReaderNo"] = .number(Double(reader)) }
        if let status = record.attendanceStatus, status != "undefined" { attributes["attendanceStatus"] = .string(status) }
        if let reason = mapping?.reason { attributes["reason"] = .string(reason) }
        if let method = mapping?.method { attributes["method"] = .string(method) }
        if mapping == nil { attributes["code"] = .string("major \(record.major) minor 0x\(String(record.minor, radix: 16))") }
        var subject: Subject?
        if let employee = record.employee {
            subject = Subject(type: .person, value: employee)
            // The card is a second identifier of the same person; it goes through the privacy policy
            // only as a subject, so it is kept only when there is no employee number.
        } else if let card = record.cardNo {
            subject = Subject(type: .card, value: card)
        }
        return EventDraft(
            kind: mapping?.kind ?? .vendorOther,
            occurredAt: occurredAt,
            deviceTime: record.dateTime,
            point: record.doorNo.map { "door-\($0)" },
            subject: subject,
            result: mapping?.result,
            attributes: attributes,
            dedupKey: record.serialNo.map { "hikvision-acs:\(identity):\($0)" },
            timeIssue: occurredAt == nil ? record.dateTime.map { "dateTime '\($0)' is not a time (expected ISO 8601, e.g. 2025-03-14T08:12:09+08:00)" } : nil)
    }

    // MARK: - AcsEvent search

    /// One page of an `AcsEvent` search reply.
    struct SearchPage: Equatable {
        struct Rejected: Equatable {
            var json: Data
            var serialNo: Int64?
            var reason: String
        }

        var status: String
        var numOfMatches: Int
        var totalMatches: Int?
        var records: [HikvisionACSRecord]
        /// Entries that could not be read: their JSON, their serial number where readable, why.
        /// They go to quarantine and the cursor moves past them, so one bad entry cannot stall the log.
        var rejected: [Rejected] = []
        /// Whether the device says more pages follow (`responseStatusStrg` MORE).
        var more: Bool { status.uppercased() == "MORE" }
    }

    static func searchRequest(searchID: String, position: Int, maxResults: Int, beginSerialNo: Int64) -> [UInt8] {
        let json = """
            {"AcsEventCond":{"searchID":"\(searchID)","searchResultPosition":\(position),"maxResults":\(maxResults),\
            "major":0,"minor":0,"beginSerialNo":\(beginSerialNo),"timeReverseOrder":false}}
            """
        return Array(json.utf8)
    }

    static func parseSearch(_ body: [UInt8]) throws(PayloadError) -> SearchPage {
        let root: [String: Any]?
        do {
            root = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
        } catch {
            throw PayloadError("AcsEvent reply is not valid JSON (\(body.count) bytes starting '\(String(decoding: body.prefix(60), as: UTF8.self))')")
        }
        guard let search = root?["AcsEvent"] as? [String: Any] else {
            throw PayloadError("AcsEvent reply has no AcsEvent object (keys: \(root?.keys.sorted().joined(separator: ", ") ?? "none"))")
        }
        guard let status = search["responseStatusStrg"] as? String else {
            throw PayloadError("AcsEvent reply has no responseStatusStrg (expected OK, MORE or NO MATCH)")
        }
        var records: [HikvisionACSRecord] = []
        var rejected: [SearchPage.Rejected] = []
        for (index, item) in ((search["InfoList"] as? [Any]) ?? []).enumerated() {
            let json = (try? JSONSerialization.data(withJSONObject: item, options: [.sortedKeys, .fragmentsAllowed])) ?? Data()
            guard let entry = item as? [String: Any] else {
                rejected.append(.init(json: json, serialNo: nil, reason: "InfoList[\(index)] is not an object"))
                continue
            }
            do {
                records.append(try record(entry, majorKey: "major", minorKey: "minor"))
            } catch {
                rejected.append(.init(json: json, serialNo: int(entry["serialNo"]).map(Int64.init), reason: "InfoList[\(index)]: \(error.reason)"))
            }
        }
        return SearchPage(
            status: status, numOfMatches: int(search["numOfMatches"]) ?? (records.count + rejected.count),
            totalMatches: int(search["totalMatches"]), records: records, rejected: rejected)
    }
}

/// A tolerant multipart reader for terminal posts: literal boundaries, parts with or without
/// `filename` and `Content-Length`; a body that ends before the closing boundary is refused.
enum HikvisionMultipart {
    struct Part: Equatable {
        var name: String?
        var contentType: String?
        var body: [UInt8]
    }

    static func parse(_ body: [UInt8], boundary: String) throws(PayloadError) -> [Part] {
        let delimiter = Array("--\(boundary)".utf8)
        var positions: [Int] = []
        var index = 0
        while let found = find(delimiter, in: body, from: index) {
            positions.append(found)
            index = found + delimiter.count
        }
        guard let first = positions.first else {
            throw PayloadError("multipart body has no '--\(boundary)' delimiter (\(body.count) bytes)")
        }
        guard let last = positions.last, body[(last + delimiter.count)...].starts(with: Array("--".utf8)) else {
            throw PayloadError("multipart body is truncated: no closing '--\(boundary)--' after \(positions.count) delimiters (\(body.count) bytes)")
        }
        var parts: [Part] = []
        for (start, end) in zip(positions, positions.dropFirst()) where start >= first {
            var part = Array(body[(start + delimiter.count)..<end])
            if part.starts(with: [13, 10]) { part.removeFirst(2) } else if part.first == 10 { part.removeFirst() }
            guard let split = find([13, 10, 13, 10], in: part, from: 0).map({ ($0, 4) }) ?? find([10, 10], in: part, from: 0).map({ ($0, 2) }) else {
                throw PayloadError("multipart part \(parts.count + 1) has no blank line after its headers")
            }
            let headerText = String(decoding: part[..<split.0], as: UTF8.self)
            var content = Array(part[(split.0 + split.1)...])
            if content.suffix(2) == [13, 10] { content.removeLast(2) } else if content.last == 10 { content.removeLast() }
            var name: String?
            var type: String?
            for line in headerText.split(whereSeparator: { $0 == "\r\n" || $0 == "\n" || $0 == "\r" }) {
                let lower = line.lowercased()
                if lower.hasPrefix("content-type:") {
                    type = line.dropFirst("content-type:".count).trimmingCharacters(in: .whitespaces)
                } else if lower.hasPrefix("content-disposition:") {
                    // `name="…"`, not the `filename="…"` that may come first.
                    let fields = line.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                    if let field = fields.first(where: { $0.lowercased().hasPrefix("name=") }) {
                        name = field.dropFirst(5).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                    }
                } else if lower.hasPrefix("content-length:"), let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) {
                    guard length <= content.count else {
                        throw PayloadError("multipart part \(parts.count + 1) declares Content-Length \(length) but holds \(content.count) bytes")
                    }
                    content = Array(content.prefix(length))
                }
            }
            parts.append(Part(name: name, contentType: type, body: content))
        }
        return parts
    }

    /// The boundary a body opens with (`--boundary` on its first line), for posts whose Content-Type omits it.
    static func boundaryFromBody(_ body: [UInt8]) -> String? {
        guard body.starts(with: Array("--".utf8)) else { return nil }
        let line = body.dropFirst(2).prefix { $0 != 13 && $0 != 10 }
        guard !line.isEmpty, line.count <= 200 else { return nil }
        return String(decoding: line, as: UTF8.self)
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        var i = start
        let first = needle[0]
        while i <= haystack.count - needle.count {
            if haystack[i] == first && haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
