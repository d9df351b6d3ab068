import Crypto
import Foundation
import GatehouseCore

/// A MANSCDP body (the XML in GB/T 28181 MESSAGE and NOTIFY requests), decoded from the charset
/// its XML declaration names.
struct MANSCDPBody: Sendable {
    /// `Notify`, `Response`, `Query` or `Control`.
    var root: String
    var cmdType: String
    var sn: String
    var deviceID: String
    var element: ONVIFElement
    var charset: TextDecoding.Charset

    func text(_ names: String...) -> String? {
        var current: ONVIFElement? = element
        for name in names { current = current?.child(name) }
        guard let value = current?.trimmedText, !value.isEmpty else { return nil }
        return value
    }

    /// Reads `bytes`: charset from the XML declaration (GB2312/GBK read as GB18030, its superset;
    /// no declaration: UTF-8, else GB18030), then the XML. Lone `&` (Hikvision) are escaped first.
    static func parse(_ bytes: [UInt8]) throws(MANSCDPError) -> MANSCDPBody {
        guard !bytes.isEmpty else { throw .malformed("empty body") }
        let label = declaredEncoding(bytes)
        let charset: TextDecoding.Charset
        let text: String
        if let label {
            guard let known = TextDecoding.Charset(label: label) else { throw .charset("XML declares encoding '\(label.prefix(30))', not UTF-8, GB2312, GBK or GB18030") }
            charset = known == .utf8 ? .utf8 : .gb18030
            guard let decoded = TextDecoding.decode(bytes, as: charset) else { throw .charset("body is not valid \(label)") }
            text = decoded
        } else if let utf8 = TextDecoding.decode(bytes, as: .utf8) {
            (charset, text) = (.utf8, utf8)
        } else if let gb = TextDecoding.decode(bytes, as: .gb18030) {
            (charset, text) = (.gb18030, gb)
        } else {
            throw .charset("body is neither UTF-8 nor GB18030")
        }
        // The text is Unicode now: hand XMLParser UTF-8 with a declaration that says so.
        var xml = text
        if let range = xml.range(of: "<?xml"), let close = xml.range(of: "?>", range: range.upperBound..<xml.endIndex) {
            xml.replaceSubrange(range.lowerBound..<close.upperBound, with: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        }
        xml = escapeLoneAmpersands(xml)
        let element: ONVIFElement
        do {
            element = try ONVIFXML.parse(Array(xml.utf8))
        } catch {
            throw .malformed("\(error)")
        }
        guard let cmd = element.child("CmdType")?.trimmedText, !cmd.isEmpty else { throw .malformed("<\(element.name)> has no CmdType") }
        return MANSCDPBody(
            root: element.name, cmdType: cmd, sn: element.child("SN")?.trimmedText ?? "",
            deviceID: element.child("DeviceID")?.trimmedText ?? "", element: element, charset: charset)
    }

    static func declaredEncoding(_ bytes: [UInt8]) -> String? {
        let head = String(decoding: bytes.prefix(200), as: UTF8.self)
        guard head.hasPrefix("<?xml") || head.dropFirst().hasPrefix("<?xml"), let end = head.range(of: "?>") else { return nil }
        let decl = head[..<end.lowerBound]
        guard let enc = decl.range(of: "encoding") else { return nil }
        let rest = decl[enc.upperBound...].drop { $0 == " " || $0 == "=" }
        guard let quote = rest.first, quote == "\"" || quote == "'" else { return nil }
        return String(rest.dropFirst().prefix { $0 != quote })
    }

    static func escapeLoneAmpersands(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var out = ""
        var rest = Substring(text)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            let after = rest[rest.index(after: amp)...]
            let entity = after.prefix(10).firstIndex(of: ";").map { after[..<$0] }
            if let entity, !entity.isEmpty, entity.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "#" }) { out += "&" } else { out += "&amp;" }
            rest = after
        }
        return out + rest
    }

    /// A body the gateway sends, in `charset` with a matching declaration.
    static func encode(root: String, cmdType: String, sn: String, deviceID: String, extra: String = "", charset: TextDecoding.Charset) -> [UInt8] {
        let label = charset == .utf8 ? "UTF-8" : "GB2312"
        let xml = """
            <?xml version="1.0" encoding="\(label)"?>\r
            <\(root)>\r
            <CmdType>\(cmdType)</CmdType>\r
            <SN>\(sn)</SN>\r
            <DeviceID>\(ONVIFSOAP.escape(deviceID))</DeviceID>\r
            \(extra)</\(root)>\r

            """
        return TextDecoding.encode(xml, as: charset) ?? Array(xml.utf8)
    }
}

enum MANSCDPError: Error, Sendable, Equatable, CustomStringConvertible {
    case charset(String)
    case malformed(String)
    var description: String {
        switch self {
        case .charset(let s): "invalid charset: \(s)"
        case .malformed(let s): "malformed MANSCDP: \(s)"
        }
    }
    var counter: String {
        switch self {
        case .charset: "invalid charset"
        case .malformed: "malformed XML"
        }
    }
}

/// GB/T 28181 alarm method/type → event kind, as data: `method/type` rows first, then `method`
/// rows; a device's `options.kinds` rows go before both.
enum GB28181AlarmKinds {
    static let builtin: [String: EventKind] = [
        // Method 5: video analytics.
        "5/1": .alarmInput, "5/2": .cameraMotion, "5/3": .cameraObjectLeft, "5/4": .cameraObjectRemoved,
        "5/5": .cameraLineCrossing, "5/6": .cameraIntrusion, "5/7": .cameraLineCrossing, "5/8": .cameraLoitering,
        "5/9": .cameraMotion, "5/10": .cameraMotion, "5/11": .cameraTamper, "5/12": .cameraMotion, "5": .cameraMotion,
        // Method 2: device alarms; no type = an alarm input (IR, smoke, door contact).
        "2/1": .cameraVideoLoss, "2/2": .alarmTamper, "2/3": .deviceStorageError, "2": .alarmInput,
        // Method 6: device faults.
        "6/1": .deviceStorageError,
    ]

    static let analytics: [String: String] = [
        "1": "manual", "2": "motion", "3": "left-object", "4": "object-removed", "5": "tripwire", "6": "intrusion",
        "7": "wrong-direction", "8": "loitering", "9": "flow-count", "10": "density", "11": "video-abnormal", "12": "fast-movement",
    ]

    static func kind(method: String, type: String?, overrides: [String: EventKind]) -> EventKind {
        // Combined methods ("25") are read by their first digit.
        let methods = [method, String(method.prefix(1))]
        for m in methods {
            if let type, let kind = overrides["\(m)/\(type)"] ?? builtin["\(m)/\(type)"] { return kind }
            if let kind = overrides[m] ?? builtin[m] { return kind }
        }
        return .vendorOther
    }

    /// The draft for an Alarm notify from device `deviceID`. The dedup key is the device's SN
    /// **plus** a hash of the content: a device counter is not an identity (SNs restart after a
    /// reboot), so the same SN with other content is another alarm, while a re-sent alarm is one.
    static func draft(_ body: MANSCDPBody, deviceID: String, zone: TimeZone, overrides: [String: EventKind], channelName: String?) -> EventDraft {
        let method = body.text("AlarmMethod") ?? ""
        let type = body.text("Info", "AlarmType") ?? body.text("AlarmType")
        let priority = body.text("AlarmPriority")
        let time = body.text("AlarmTime")
        let description = body.text("AlarmDescription")
        let eventType = body.text("Info", "AlarmTypeParam", "EventType")
        let kind = kind(method: method, type: type, overrides: overrides)
        var attributes: [String: JSONValue] = ["alarmMethod": .string(method)]
        if let type { attributes["alarmType"] = .string(type) }
        if let priority { attributes["alarmPriority"] = .string(priority) }
        if let description { attributes["description"] = .string(description) }
        if let eventType { attributes["eventType"] = .string(eventType) }
        if method.hasPrefix("5"), let type, let analytic = analytics[type] { attributes["analytic"] = .string(analytic) }
        if let channelName { attributes["pointName"] = .string(channelName) }
        let content = [body.deviceID, priority ?? "", method, type ?? "", time ?? "", description ?? "", eventType ?? ""].joined(separator: "|")
        let digest = SHA256.hash(data: Data(content.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
        var occurredAt: Timestamp?
        var timeIssue: String?
        if let time {
            occurredAt = DeviceTimeParser.parse(time, zone: zone)
            if occurredAt == nil { timeIssue = "AlarmTime '\(time.prefix(40))' is not a time" }
        }
        return EventDraft(
            kind: kind, occurredAt: occurredAt, deviceTime: time, point: body.deviceID.isEmpty ? nil : body.deviceID,
            priority: (priority == "1" || priority == "2") ? .alarm : nil, attributes: attributes,
            dedupKey: "gb28181:\(deviceID):\(body.deviceID):\(body.sn):\(digest)", timeIssue: timeIssue)
    }
}
