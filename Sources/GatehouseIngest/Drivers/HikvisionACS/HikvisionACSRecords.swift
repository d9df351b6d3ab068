import Foundation
import GatehouseCore
import GatehouseProfiles

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
        if isMultipart, !bare, let boundary = MultipartBody.boundary(contentType: contentType) ?? MultipartBody.boundary(openingBody: body) {
            let parts: [MultipartBodyPart]
            do {
                parts = try MultipartBody.parts(body, boundary: boundary)
            } catch {
                throw PayloadError(error.reason)
            }
            let jsonPart = parts.first { ["accesscontrollerevent", "event_log"].contains($0.name?.lowercased() ?? "") }
                ?? parts.first { ($0.contentType ?? "").lowercased().contains("json") }
                ?? parts.first { $0.body.first.map { $0 == UInt8(ascii: "{") } ?? false }
            guard let jsonPart else {
                throw PayloadError(
                    "multipart body has \(parts.count) parts (\(parts.map { $0.name ?? "unnamed" }.joined(separator: ", "))) and no JSON event part (expected name=\"AccessControllerEvent\" or \"event_log\")")
            }
            var push = try parseAlert(jsonPart.body)
            push.pictures = parts.filter(\.isImage).count
            return push
        }
        return try parseAlert(body)
    }

    static func parseAlert(_ body: [UInt8]) throws(PayloadError) -> HikvisionACSPush {
        let parsed: JSONValue
        do {
            parsed = try JSONValue.parse(body)
        } catch {
            let preview = String(decoding: body.prefix(60), as: UTF8.self)
            throw PayloadError("the event is not valid JSON (\(body.count) bytes starting '\(preview)'): \(error)")
        }
        guard case .object(let object) = parsed else {
            throw PayloadError("the event is not a JSON object (expected an EventNotificationAlert object)")
        }
        guard let eventType = object["eventType"]?.stringValue else {
            throw PayloadError("no eventType in the alert (expected \"AccessControllerEvent\" or \"heartBeat\")")
        }
        var push = HikvisionACSPush(
            eventType: eventType, macAddress: object["macAddress"]?.stringValue,
            deviceSerial: object["serialNumber"]?.stringValue ?? object["serialNo"]?.stringValue ?? object["deviceID"]?.stringValue)
        guard eventType == "AccessControllerEvent" else { return push }
        guard case .object(let block)? = object["AccessControllerEvent"] else {
            throw PayloadError("eventType AccessControllerEvent without an AccessControllerEvent object")
        }
        var record = try record(block, majorKey: "majorEventType", minorKey: "subEventType")
        record.dateTime = block["dateTime"]?.stringValue ?? object["dateTime"]?.stringValue
        push.record = record
        return push
    }

    /// One record from an alert block or an `InfoList` entry.
    static func record(_ block: [String: JSONValue], majorKey: String, minorKey: String) throws(PayloadError) -> HikvisionACSRecord {
        guard let major = int(block[majorKey]) else {
            throw PayloadError("\(majorKey) '\(shown(block[majorKey]))' is not an integer (expected e.g. 5)")
        }
        guard let minor = int(block[minorKey]) else {
            throw PayloadError("\(minorKey) '\(shown(block[minorKey]))' is not an integer (expected e.g. 75)")
        }
        let employee = block["employeeNoString"]?.stringValue ?? int(block["employeeNo"]).map(String.init)
        return HikvisionACSRecord(
            major: major, minor: minor, serialNo: int(block["serialNo"]).map(Int64.init), dateTime: block["time"]?.stringValue,
            employee: employee.flatMap { $0.isEmpty ? nil : $0 }, cardNo: block["cardNo"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 },
            doorNo: int(block["doorNo"]), cardReaderNo: int(block["cardReaderNo"]), verifyMode: block["currentVerifyMode"]?.stringValue,
            attendanceStatus: block["attendanceStatus"]?.stringValue, picturesNumber: int(block["picturesNumber"]))
    }

    /// A whole number, or a string holding one (terminals send both).
    static func int(_ value: JSONValue?) -> Int? {
        switch value {
        case .number(let n)? where n == n.rounded() && abs(n) < 1e15: Int(n)
        case .string(let s)?, .exactNumber(let s)?: Int(s)
        default: nil
        }
    }

    /// A value as an error message quotes it: strings bare, the rest as JSON.
    private static func shown(_ value: JSONValue?) -> String {
        guard let value else { return "missing" }
        return value.mappingText ?? "null"
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
        let parsed: JSONValue
        do {
            parsed = try JSONValue.parse(body)
        } catch {
            throw PayloadError("AcsEvent reply is not valid JSON (\(body.count) bytes starting '\(String(decoding: body.prefix(60), as: UTF8.self))')")
        }
        let root: [String: JSONValue]? = if case .object(let members) = parsed { members } else { nil }
        guard case .object(let search)? = root?["AcsEvent"] else {
            throw PayloadError("AcsEvent reply has no AcsEvent object (keys: \(root?.keys.sorted().joined(separator: ", ") ?? "none"))")
        }
        guard let status = search["responseStatusStrg"]?.stringValue else {
            throw PayloadError("AcsEvent reply has no responseStatusStrg (expected OK, MORE or NO MATCH)")
        }
        var records: [HikvisionACSRecord] = []
        var rejected: [SearchPage.Rejected] = []
        let items: [JSONValue] = if case .array(let items)? = search["InfoList"] { items } else { [] }
        for (index, item) in items.enumerated() {
            let json = Data(item.jsonText.utf8)
            guard case .object(let entry) = item else {
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
