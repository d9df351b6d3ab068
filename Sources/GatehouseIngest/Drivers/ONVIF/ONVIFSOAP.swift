import Crypto
import Foundation
import GatehouseCore

/// What went wrong talking to a camera, worded for the status log.
enum ONVIFError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The reply is not a SOAP envelope we can read (kept in quarantine by the caller).
    case malformed(String)
    /// A SOAP fault: `code` and `subcode` by local name (`Sender`, `NotAuthorized`, `ResourceUnknownFault`).
    case fault(ONVIFFault)
    /// The camera refused the credentials after an authenticated attempt.
    case unauthorized(String)
    /// HTTP went wrong: a status without a fault, a refused connection, a timeout.
    case transport(String)

    var description: String {
        switch self {
        case .malformed(let why): "unreadable reply: \(why)"
        case .fault(let fault): "SOAP fault \(fault)"
        case .unauthorized(let why): why
        case .transport(let why): why
        }
    }
}

/// A SOAP 1.2 (or 1.1) fault, by local names.
struct ONVIFFault: Sendable, Equatable, CustomStringConvertible {
    var code: String
    var subcodes: [String]
    var reason: String
    /// Local names of the elements under `Detail` (`PullMessagesFaultResponse`, `ResourceUnknownFault`).
    var detail: [String]
    /// `MaxTimeout` and `MaxMessageLimit` of a `PullMessagesFaultResponse`.
    var maxTimeout: String?
    var maxMessageLimit: Int?

    var description: String {
        ([code] + subcodes).joined(separator: "/") + (reason.isEmpty ? "" : " (\(reason))")
    }

    /// `ter:NotAuthorized` (a wrong password, or a `Created` outside the camera's window).
    var isNotAuthorized: Bool { subcodes.contains("NotAuthorized") || reason.lowercased().contains("not authorized") }
}

/// The SOAP envelopes the PullPoint driver sends and the replies it reads.
///
/// Pure functions over strings and bytes: the nonce and the camera-corrected time come in as
/// arguments, so the WS-Security digest can be pinned by the notes' test vector.
enum ONVIFSOAP {
    static let soap = "http://www.w3.org/2003/05/soap-envelope"
    static let addressing = "http://www.w3.org/2005/08/addressing"
    static let wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    static let wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
    static let device = "http://www.onvif.org/ver10/device/wsdl"
    static let events = "http://www.onvif.org/ver10/events/wsdl"
    static let notification = "http://docs.oasis-open.org/wsn/b-2"
    static let schema = "http://www.onvif.org/ver10/schema"
    static let media = "http://www.onvif.org/ver10/media/wsdl"

    /// The operations, with the action URI each is posted with.
    enum Operation: String, Sendable, CaseIterable {
        case getSystemDateAndTime = "http://www.onvif.org/ver10/device/wsdl/GetSystemDateAndTime"
        case getDeviceInformation = "http://www.onvif.org/ver10/device/wsdl/GetDeviceInformation"
        case getServices = "http://www.onvif.org/ver10/device/wsdl/GetServices"
        case getCapabilities = "http://www.onvif.org/ver10/device/wsdl/GetCapabilities"
        case createPullPointSubscription = "http://www.onvif.org/ver10/events/wsdl/EventPortType/CreatePullPointSubscriptionRequest"
        case pullMessages = "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription/PullMessagesRequest"
        case renew = "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/RenewRequest"
        case unsubscribe = "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeRequest"
        case getProfiles = "http://www.onvif.org/ver10/media/wsdl/GetProfiles"
        case getSnapshotUri = "http://www.onvif.org/ver10/media/wsdl/GetSnapshotUri"

        var action: String { rawValue }

        /// Event operations carry WS-Addressing; device calls must not (some firmware breaks on it).
        var usesAddressing: Bool {
            switch self {
            case .createPullPointSubscription, .pullMessages, .renew, .unsubscribe: true
            default: false
            }
        }

        /// The body element's local name, as the simulator dispatches on it.
        var bodyElement: String {
            switch self {
            case .getSystemDateAndTime: "GetSystemDateAndTime"
            case .getDeviceInformation: "GetDeviceInformation"
            case .getServices: "GetServices"
            case .getCapabilities: "GetCapabilities"
            case .createPullPointSubscription: "CreatePullPointSubscription"
            case .pullMessages: "PullMessages"
            case .renew: "Renew"
            case .unsubscribe: "Unsubscribe"
            case .getProfiles: "GetProfiles"
            case .getSnapshotUri: "GetSnapshotUri"
            }
        }
    }

    struct Credentials: Sendable, Equatable {
        var username: String
        var password: String
    }

    /// One UsernameToken: the nonce's raw bytes and the `Created` text (camera time, `Z`).
    struct Token: Sendable {
        var nonce: [UInt8]
        var created: String

        static func fresh(cameraTime: Timestamp) -> Token {
            Token(nonce: (0..<16).map { _ in UInt8.random(in: 0...255) }, created: ONVIFSOAP.created(cameraTime))
        }
    }

    // MARK: - Building

    /// `Base64(SHA1(nonce ‖ created ‖ password))`: the raw nonce bytes, not their Base64 text.
    static func passwordDigest(nonce: [UInt8], created: String, password: String) -> String {
        var hasher = Insecure.SHA1()
        hasher.update(data: nonce)
        hasher.update(data: Array(created.utf8))
        hasher.update(data: Array(password.utf8))
        return Data(hasher.finalize()).base64EncodedString()
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`: whole seconds and `Z` (Hikvision refuses `+00:00`, some refuse fractions).
    static func created(_ time: Timestamp) -> String {
        let text = time.rfc3339
        return String(text.prefix(19)) + "Z"
    }

    /// A complete envelope. `to` and `referenceParameters` are used by event operations only.
    static func envelope(
        _ operation: Operation, body: String, to url: String, credentials: Credentials?, token: Token?,
        referenceParameters: [ONVIFElement] = [], messageID: String = "urn:uuid:" + UUID().uuidString.lowercased()
    ) -> String {
        var header = ""
        if operation.usesAddressing {
            header += "<wsa:Action>\(escape(operation.action))</wsa:Action>"
            header += "<wsa:MessageID>\(escape(messageID))</wsa:MessageID>"
            header += "<wsa:ReplyTo><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address></wsa:ReplyTo>"
            header += "<wsa:To>\(escape(url))</wsa:To>"
            // Echoed verbatim with IsReferenceParameter, or Axis answers InvalidArgs.
            for parameter in referenceParameters { header += parameter.xml(extraAttributes: " wsa:IsReferenceParameter=\"true\"") }
        }
        if let credentials, let token {
            let digest = passwordDigest(nonce: token.nonce, created: token.created, password: credentials.password)
            header += """
                <wsse:Security s:mustUnderstand="1" xmlns:wsse="\(wsse)" xmlns:wsu="\(wsu)"><wsse:UsernameToken>\
                <wsse:Username>\(escape(credentials.username))</wsse:Username>\
                <wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">\(digest)</wsse:Password>\
                <wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">\(Data(token.nonce).base64EncodedString())</wsse:Nonce>\
                <wsu:Created>\(token.created)</wsu:Created></wsse:UsernameToken></wsse:Security>
                """
        }
        return """
            <?xml version="1.0" encoding="UTF-8"?>\
            <s:Envelope xmlns:s="\(soap)" xmlns:wsa="\(addressing)" xmlns:tds="\(device)" xmlns:tev="\(events)" xmlns:wsnt="\(notification)" xmlns:tt="\(schema)">\
            <s:Header>\(header)</s:Header><s:Body>\(body)</s:Body></s:Envelope>
            """
    }

    static var getSystemDateAndTime: String { "<tds:GetSystemDateAndTime/>" }
    static var getDeviceInformation: String { "<tds:GetDeviceInformation/>" }
    static var getServices: String { "<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>" }
    static var getCapabilities: String { "<tds:GetCapabilities><tds:Category>Events</tds:Category></tds:GetCapabilities>" }
    static var getMediaCapabilities: String { "<tds:GetCapabilities><tds:Category>Media</tds:Category></tds:GetCapabilities>" }
    // The media namespace is declared on the body element: only these two calls use it.
    static var getProfiles: String { "<trt:GetProfiles xmlns:trt=\"\(media)\"/>" }
    static func getSnapshotUri(profile: String) -> String {
        "<trt:GetSnapshotUri xmlns:trt=\"\(media)\"><trt:ProfileToken>\(escape(profile))</trt:ProfileToken></trt:GetSnapshotUri>"
    }

    /// `termination` is a duration (`PT600S`, `PT10M`) or a UTC time; it is always sent (Tapo refuses the call without it).
    static func createPullPointSubscription(termination: String) -> String {
        "<tev:CreatePullPointSubscription><tev:InitialTerminationTime>\(escape(termination))</tev:InitialTerminationTime></tev:CreatePullPointSubscription>"
    }

    static func pullMessages(timeoutSeconds: Int, messageLimit: Int) -> String {
        "<tev:PullMessages><tev:Timeout>PT\(timeoutSeconds)S</tev:Timeout><tev:MessageLimit>\(messageLimit)</tev:MessageLimit></tev:PullMessages>"
    }

    static func renew(termination: String) -> String {
        "<wsnt:Renew><wsnt:TerminationTime>\(escape(termination))</wsnt:TerminationTime></wsnt:Renew>"
    }

    static var unsubscribe: String { "<wsnt:Unsubscribe/>" }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }

    // MARK: - Reading

    /// The body's first element, or the fault it carries as `.fault`.
    static func body(_ bytes: [UInt8]) throws(ONVIFError) -> ONVIFElement {
        let root = try ONVIFXML.parse(bytes)
        guard root.name == "Envelope", let body = root.child("Body") else {
            throw .malformed("no SOAP Envelope/Body (root element '\(root.name)')")
        }
        if let fault = body.child("Fault") { throw .fault(parseFault(fault)) }
        guard let first = body.children.first else { return ONVIFElement(name: "", attributes: [:], children: [], text: "") }
        return first
    }

    /// The fault in a reply, if it is one.
    static func fault(in bytes: [UInt8]) -> ONVIFFault? {
        do {
            _ = try body(bytes)
            return nil
        } catch {
            if case .fault(let fault) = error { return fault }
            return nil
        }
    }

    /// SOAP 1.2 `Code/Value`, `Subcode/Value…`, `Reason/Text`; SOAP 1.1 `faultcode`, `faultstring`.
    static func parseFault(_ fault: ONVIFElement) -> ONVIFFault {
        func local(_ text: String) -> String {
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            return trimmed.firstIndex(of: ":").map { String(trimmed[trimmed.index(after: $0)...]) } ?? trimmed
        }
        var code = local(fault.path("Code", "Value")?.text ?? fault.child("faultcode")?.text ?? "")
        var subcodes: [String] = []
        var sub = fault.path("Code", "Subcode")
        while let current = sub {
            if let value = current.child("Value") { subcodes.append(local(value.text)) }
            sub = current.child("Subcode")
        }
        if code.isEmpty { code = "Fault" }
        let reason = (fault.path("Reason", "Text")?.trimmedText ?? fault.child("faultstring")?.trimmedText ?? "")
        let detail = fault.child("Detail") ?? fault.child("detail")
        let pullFault = detail?.descendant("PullMessagesFaultResponse")
        return ONVIFFault(
            code: code, subcodes: subcodes, reason: String(reason.prefix(300)), detail: detail?.children.map(\.name) ?? [],
            maxTimeout: pullFault?.child("MaxTimeout")?.trimmedText,
            maxMessageLimit: pullFault?.child("MaxMessageLimit").flatMap { Int($0.trimmedText) })
    }

    /// `GetSystemDateAndTimeResponse`: the camera's UTC clock (`UTCDateTime`), else its local
    /// one read in `zone`; nil when neither is a time (a reset clock may read 0000-00-00).
    static func systemDateAndTime(_ body: ONVIFElement, zone: TimeZone) -> Timestamp? {
        guard let time = body.descendant("SystemDateAndTime") else { return nil }
        func read(_ element: ONVIFElement?) -> DeviceTimeParser.WallClock? {
            guard let element, let date = element.child("Date"), let clock = element.child("Time"),
                let year = Int(date.child("Year")?.trimmedText ?? ""), let month = Int(date.child("Month")?.trimmedText ?? ""),
                let day = Int(date.child("Day")?.trimmedText ?? ""), let hour = Int(clock.child("Hour")?.trimmedText ?? ""),
                let minute = Int(clock.child("Minute")?.trimmedText ?? ""), let second = Int(clock.child("Second")?.trimmedText ?? "")
            else { return nil }
            let text = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", year, month, day, hour, minute, second)
            return DeviceTimeParser.parseWallClock(text)
        }
        if let utc = read(time.child("UTCDateTime")) {
            return DeviceTimeParser.parse(String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second), zone: zone)
        }
        if let local = read(time.child("LocalDateTime")) {
            return DeviceTimeParser.parse(String(format: "%04d-%02d-%02dT%02d:%02d:%02d", local.year, local.month, local.day, local.hour, local.minute, local.second), zone: zone)
        }
        return nil
    }

    struct DeviceInformation: Sendable, Equatable {
        var manufacturer: String
        var model: String
        var firmware: String
    }

    static func deviceInformation(_ body: ONVIFElement) -> DeviceInformation {
        DeviceInformation(
            manufacturer: body.child("Manufacturer")?.trimmedText ?? "", model: body.child("Model")?.trimmedText ?? "",
            firmware: body.child("FirmwareVersion")?.trimmedText ?? "")
    }

    /// The events service address from `GetServicesResponse` or `GetCapabilitiesResponse`.
    static func eventsAddress(_ body: ONVIFElement) -> String? {
        for service in body.children("Service") where service.child("Namespace")?.trimmedText == events {
            if let address = service.child("XAddr")?.trimmedText, !address.isEmpty { return address }
        }
        if let address = body.descendant("Events")?.child("XAddr")?.trimmedText, !address.isEmpty { return address }
        return nil
    }

    /// The media service address from `GetServicesResponse` or `GetCapabilitiesResponse`.
    static func mediaAddress(_ body: ONVIFElement) -> String? {
        for service in body.children("Service") where service.child("Namespace")?.trimmedText == media {
            if let address = service.child("XAddr")?.trimmedText, !address.isEmpty { return address }
        }
        if let address = body.descendant("Media")?.child("XAddr")?.trimmedText, !address.isEmpty { return address }
        return nil
    }

    /// The profile tokens of `GetProfilesResponse`, in the camera's order (the first is the main stream).
    static func profileTokens(_ body: ONVIFElement) -> [String] {
        body.children("Profiles").compactMap { $0.attributes["token"] }.filter { !$0.isEmpty }
    }

    /// `GetSnapshotUriResponse/MediaUri/Uri`.
    static func snapshotURI(_ body: ONVIFElement) -> String? {
        guard let uri = body.path("MediaUri", "Uri")?.trimmedText, !uri.isEmpty else { return nil }
        return uri
    }

    /// A subscription as `CreatePullPointSubscriptionResponse` gives it.
    struct Subscription: Sendable, Equatable {
        var address: String
        var referenceParameters: [ONVIFElement]
        var currentTime: Timestamp?
        var terminationTime: Timestamp?
    }

    static func subscription(_ body: ONVIFElement) throws(ONVIFError) -> Subscription {
        guard let reference = body.child("SubscriptionReference"), let address = reference.child("Address")?.trimmedText,
            !address.isEmpty
        else { throw .malformed("CreatePullPointSubscriptionResponse without SubscriptionReference/Address") }
        return Subscription(
            address: address, referenceParameters: reference.child("ReferenceParameters")?.children ?? [],
            currentTime: body.child("CurrentTime").flatMap { DeviceTimeParser.parseRFC3339($0.trimmedText) },
            terminationTime: body.child("TerminationTime").flatMap { DeviceTimeParser.parseRFC3339($0.trimmedText) })
    }

    /// `CurrentTime` and `TerminationTime` of a Renew or PullMessages reply.
    static func times(_ body: ONVIFElement) -> (current: Timestamp?, termination: Timestamp?) {
        (body.child("CurrentTime").flatMap { DeviceTimeParser.parseRFC3339($0.trimmedText) },
         body.child("TerminationTime").flatMap { DeviceTimeParser.parseRFC3339($0.trimmedText) })
    }

    /// An `xs:duration` of the `PnDTnHnMnS` kind in seconds (`PT60S`, `PT1M`, `PT1M30.5S`); nil when not one.
    static func durationSeconds(_ text: String) -> Double? {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces).uppercased())
        guard rest.hasPrefix("P") else { return nil }
        rest = rest.dropFirst()
        var total = 0.0
        var inTime = false
        var number = ""
        var any = false
        for character in rest {
            switch character {
            case "T": inTime = true
            case "0"..."9", ".": number.append(character)
            case "D", "H", "M", "S":
                guard let value = Double(number) else { return nil }
                number = ""
                any = true
                switch (character, inTime) {
                case ("D", false): total += value * 86_400
                case ("H", true): total += value * 3600
                case ("M", true): total += value * 60
                case ("S", true): total += value
                default: return nil
                }
            default: return nil
            }
        }
        return any && number.isEmpty ? total : nil
    }
}
