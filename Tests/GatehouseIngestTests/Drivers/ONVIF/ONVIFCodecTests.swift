import Foundation
@testable import GatehouseCore
import Testing

@testable import GatehouseIngest

/// The SOAP codec: envelopes, the WS-Security digest, faults, notification messages, time stamps,
/// topics and kinds, the quirk table and the event mapper's start/stop decisions.
@Suite("onvif codec")
struct ONVIFCodecTests {
    static let utc = TimeZone(identifier: "UTC") ?? .gmt
    static let shanghai = TimeZone(identifier: "Asia/Shanghai") ?? .gmt
    static let ns = """
        xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tev="http://www.onvif.org/ver10/events/wsdl" \
        xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:tt="http://www.onvif.org/ver10/schema" \
        xmlns:tns1="http://www.onvif.org/ver10/topics" xmlns:wsa="http://www.w3.org/2005/08/addressing"
        """

    static func envelope(_ body: String) -> [UInt8] { Array("<s:Envelope \(ns)><s:Body>\(body)</s:Body></s:Envelope>".utf8) }

    /// Sample C of the notes: a motion start and a digital input.
    static let sampleC = envelope("""
        <tev:PullMessagesResponse>
         <tev:CurrentTime>2025-03-14T02:16:04Z</tev:CurrentTime><tev:TerminationTime>2025-03-14T02:26:04Z</tev:TerminationTime>
         <wsnt:NotificationMessage>
          <wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tns1:RuleEngine/CellMotionDetector/Motion</wsnt:Topic>
          <wsnt:Message><tt:Message UtcTime="2025-03-14T02:16:02Z" PropertyOperation="Changed">
           <tt:Source><tt:SimpleItem Name="VideoSourceConfigurationToken" Value="vsc_main"/>
            <tt:SimpleItem Name="VideoAnalyticsConfigurationToken" Value="va_main"/><tt:SimpleItem Name="Rule" Value="GateMotion"/></tt:Source>
           <tt:Data><tt:SimpleItem Name="IsMotion" Value="true"/></tt:Data></tt:Message></wsnt:Message>
         </wsnt:NotificationMessage>
         <wsnt:NotificationMessage>
          <wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tns1:Device/Trigger/DigitalInput</wsnt:Topic>
          <wsnt:Message><tt:Message UtcTime="2025-03-14T02:16:03Z" PropertyOperation="Changed">
           <tt:Source><tt:SimpleItem Name="InputToken" Value="DI_1"/></tt:Source>
           <tt:Data><tt:SimpleItem Name="LogicalState" Value="true"/></tt:Data></tt:Message></wsnt:Message>
         </wsnt:NotificationMessage>
        </tev:PullMessagesResponse>
        """)

    static func notification(_ topic: String, _ operation: String? = "Changed", state: String = "true", item: String = "State", time: String = "2025-03-14T02:16:02Z", source: String = "vsc_main") throws -> ONVIFNotification {
        let op = operation.map { " PropertyOperation=\"\($0)\"" } ?? ""
        let xml = "<wsnt:NotificationMessage \(ns)><wsnt:Topic>\(topic)</wsnt:Topic><wsnt:Message><tt:Message UtcTime=\"\(time)\"\(op)><tt:Source><tt:SimpleItem Name=\"VideoSourceConfigurationToken\" Value=\"\(source)\"/></tt:Source><tt:Data><tt:SimpleItem Name=\"\(item)\" Value=\"\(state)\"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>"
        return try ONVIFNotification.parse(try ONVIFXML.parse(Array(xml.utf8))).get()
    }

    @Test("PasswordDigest matches the notes' test vector; Created is whole seconds with Z")
    func digestVector() {
        let nonce: [UInt8] = [0x8f, 0x1c, 0x2a, 0x7b, 0x44, 0xe0, 0x5d, 0x99, 0x31, 0xaa, 0x6c, 0x0b, 0xe2, 0xf4, 0x7d, 0x10]
        #expect(Data(nonce).base64EncodedString() == "jxwqe0TgXZkxqmwL4vR9EA==")
        #expect(ONVIFSOAP.passwordDigest(nonce: nonce, created: "2025-03-14T02:15:30Z", password: "Demo#2025") == "HTZRSbTD1ZburIIS9hFGStkjc6E=")
        let time = DeviceTimeParser.parseRFC3339("2025-03-14T02:15:30.789Z")
        #expect(time.map(ONVIFSOAP.created) == "2025-03-14T02:15:30Z")
    }

    @Test("event envelopes carry WS-Addressing and echo reference parameters with their namespace; device calls carry none")
    func envelopes() throws {
        let axis = ONVIFElement(name: "SubscriptionId", namespace: "http://www.axis.com/2009/event", attributes: [:], children: [], text: "297")
        let token = ONVIFSOAP.Token(nonce: Array(repeating: 7, count: 16), created: "2025-03-14T02:15:30Z")
        let credentials = ONVIFSOAP.Credentials(username: "gateway", password: "Demo#2025")
        let pull = ONVIFSOAP.envelope(
            .pullMessages, body: ONVIFSOAP.pullMessages(timeoutSeconds: 50, messageLimit: 64), to: "http://192.0.2.21/onvif/services",
            credentials: credentials, token: token, referenceParameters: [axis])
        #expect(pull.contains("<wsa:Action>http://www.onvif.org/ver10/events/wsdl/PullPointSubscription/PullMessagesRequest</wsa:Action>"))
        #expect(pull.contains("<wsa:To>http://192.0.2.21/onvif/services</wsa:To>"))
        #expect(pull.contains("<SubscriptionId xmlns=\"http://www.axis.com/2009/event\" wsa:IsReferenceParameter=\"true\">297</SubscriptionId>"))
        #expect(pull.contains("<wsu:Created>2025-03-14T02:15:30Z</wsu:Created>"))
        #expect(pull.contains("<tev:Timeout>PT50S</tev:Timeout><tev:MessageLimit>64</tev:MessageLimit>"))
        // The envelope is well-formed and the parameter reads back in its namespace.
        let parsed = try ONVIFXML.parse(Array(pull.utf8))
        let echoed = try #require(parsed.path("Header", "SubscriptionId"))
        #expect(echoed.namespace == "http://www.axis.com/2009/event" && echoed.trimmedText == "297")
        #expect(echoed.attributes["IsReferenceParameter"] == "true")
        let info = ONVIFSOAP.envelope(.getDeviceInformation, body: ONVIFSOAP.getDeviceInformation, to: "http://h/onvif/device_service", credentials: credentials, token: token)
        #expect(!info.contains("wsa:Action") && info.contains("PasswordDigest"))
        let anonymous = ONVIFSOAP.envelope(.getSystemDateAndTime, body: ONVIFSOAP.getSystemDateAndTime, to: "http://h/", credentials: nil, token: nil)
        #expect(!anonymous.contains("Security"))
        // Text is escaped.
        #expect(ONVIFSOAP.createPullPointSubscription(termination: "a<b&c").contains("a&lt;b&amp;c"))
    }

    @Test("replies: clock, device information, events address from GetServices or GetCapabilities, subscription with reference parameters")
    func replies() throws {
        let clock = try ONVIFSOAP.body(Self.envelope("""
            <tds:GetSystemDateAndTimeResponse xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><tds:SystemDateAndTime><tt:UTCDateTime>\
            <tt:Time><tt:Hour>2</tt:Hour><tt:Minute>15</tt:Minute><tt:Second>30</tt:Second></tt:Time>\
            <tt:Date><tt:Year>2025</tt:Year><tt:Month>3</tt:Month><tt:Day>14</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>
            """))
        #expect(ONVIFSOAP.systemDateAndTime(clock, zone: Self.shanghai)?.rfc3339 == "2025-03-14T02:15:30.000Z")
        // A reset clock (all zeros) is no time.
        let zeros = try ONVIFSOAP.body(Self.envelope("<x:R xmlns:x=\"u\"><x:SystemDateAndTime><x:UTCDateTime><x:Time><x:Hour>0</x:Hour><x:Minute>0</x:Minute><x:Second>0</x:Second></x:Time><x:Date><x:Year>0</x:Year><x:Month>0</x:Month><x:Day>0</x:Day></x:Date></x:UTCDateTime></x:SystemDateAndTime></x:R>"))
        #expect(ONVIFSOAP.systemDateAndTime(zeros, zone: Self.utc) == nil)
        let services = try ONVIFSOAP.body(Self.envelope("""
            <GetServicesResponse xmlns="http://www.onvif.org/ver10/device/wsdl"><Service><Namespace>http://www.onvif.org/ver10/device/wsdl</Namespace><XAddr>http://h/onvif/device_service</XAddr></Service>\
            <Service><Namespace>http://www.onvif.org/ver10/events/wsdl</Namespace><XAddr>http://h:8000/onvif/Events</XAddr></Service></GetServicesResponse>
            """))
        #expect(ONVIFSOAP.eventsAddress(services) == "http://h:8000/onvif/Events")
        let capabilities = try ONVIFSOAP.body(Self.envelope("<tds:GetCapabilitiesResponse xmlns:tds=\"d\"><tds:Capabilities><tt:Events><tt:XAddr>http://h/onvif/service</tt:XAddr></tt:Events></tds:Capabilities></tds:GetCapabilitiesResponse>"))
        #expect(ONVIFSOAP.eventsAddress(capabilities) == "http://h/onvif/service")
        let created = try ONVIFSOAP.subscription(try ONVIFSOAP.body(Self.envelope("""
            <tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference><wsa:Address>http://192.0.2.21/onvif/services</wsa:Address>\
            <wsa:ReferenceParameters><dom0:SubscriptionId xmlns:dom0="http://www.axis.com/2009/event">297</dom0:SubscriptionId></wsa:ReferenceParameters></tev:SubscriptionReference>\
            <wsnt:CurrentTime>2025-03-14T02:15:31Z</wsnt:CurrentTime><wsnt:TerminationTime>2025-03-14T02:25:31Z</wsnt:TerminationTime></tev:CreatePullPointSubscriptionResponse>
            """)))
        #expect(created.address == "http://192.0.2.21/onvif/services")
        #expect(created.referenceParameters.map(\.name) == ["SubscriptionId"])
        #expect(created.referenceParameters.first?.namespace == "http://www.axis.com/2009/event")
        #expect((created.terminationTime?.milliseconds ?? 0) - (created.currentTime?.milliseconds ?? 0) == 600_000)
        #expect(throws: ONVIFError.self) { try ONVIFSOAP.subscription(try ONVIFSOAP.body(Self.envelope("<tev:CreatePullPointSubscriptionResponse/>"))) }
    }

    @Test("faults: SOAP 1.2 subcodes, SOAP 1.1 faultcode, PullMessagesFaultResponse limits, NotAuthorized")
    func faults() {
        let resourceUnknown = Self.envelope("""
            <s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>wsrf-rw:ResourceUnknownFault</s:Value></s:Subcode></s:Code>\
            <s:Reason><s:Text xml:lang="en">unknown</s:Text></s:Reason></s:Fault>
            """)
        let fault = ONVIFSOAP.fault(in: resourceUnknown)
        #expect(fault?.code == "Receiver" && fault?.subcodes == ["ResourceUnknownFault"])
        let notAuthorized = Self.envelope("<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>ter:NotAuthorized</s:Value></s:Subcode></s:Code><s:Reason><s:Text>Sender not Authorized</s:Text></s:Reason></s:Fault>")
        #expect(ONVIFSOAP.fault(in: notAuthorized)?.isNotAuthorized == true)
        let old = Array("<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode><faultstring>bad</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>".utf8)
        #expect(ONVIFSOAP.fault(in: old)?.code == "Client" && ONVIFSOAP.fault(in: old)?.reason == "bad")
        let limits = Self.envelope("""
            <s:Fault><s:Code><s:Value>s:Sender</s:Value></s:Code><s:Reason><s:Text>too long</s:Text></s:Reason>\
            <s:Detail><tev:PullMessagesFaultResponse><tev:MaxTimeout>PT20S</tev:MaxTimeout><tev:MaxMessageLimit>10</tev:MaxMessageLimit></tev:PullMessagesFaultResponse></s:Detail></s:Fault>
            """)
        #expect(ONVIFSOAP.fault(in: limits)?.maxTimeout == "PT20S" && ONVIFSOAP.fault(in: limits)?.maxMessageLimit == 10)
        #expect(ONVIFSOAP.fault(in: Self.sampleC) == nil)
    }

    @Test("garbage, truncated, empty and absurdly nested replies are errors, never crashes")
    func garbage() {
        for bytes in [Array("HTTP/1.1 200 OK".utf8), Array("<s:Envelope \(Self.ns)><s:Body><tev:PullMessagesResponse><wsnt:Notifi".utf8), [], [0xFF, 0xFE, 0x00, 0x3C],
                      Array("<html><body>401 -- Unauthorized</body></html>".utf8), Array(String(repeating: "<a>", count: 500).utf8)] {
            #expect(throws: ONVIFError.self) { _ = try ONVIFSOAP.body(bytes) }
        }
        // Entities are not expanded from outside.
        let external = Array("<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><s:Envelope \(Self.ns)><s:Body><x>&e;</x></s:Body></s:Envelope>".utf8)
        if let body = try? ONVIFSOAP.body(external) { #expect(!body.text.contains("root:")) }
    }

    @Test("sample C: two notifications with topics, operations, points, items and kinds")
    func sampleMessages() throws {
        let body = try ONVIFSOAP.body(Self.sampleC)
        let messages = ONVIFNotification.messages(in: body).map { try? $0.result.get() }
        #expect(messages.count == 2)
        let motion = try #require(messages[0])
        #expect(motion.topic == "RuleEngine/CellMotionDetector/Motion" && motion.operation == .changed && motion.state == true)
        #expect(motion.point == "vsc_main" && motion.source.count == 3 && motion.utcTime == "2025-03-14T02:16:02Z")
        let input = try #require(messages[1])
        #expect(input.point == "DI_1" && input.state == true)
        #expect(ONVIFTopics.rule(for: motion.topic)?.kind == .cameraMotion)
        #expect(ONVIFTopics.rule(for: input.topic)?.kind == .alarmInput)
        #expect(ONVIFSOAP.times(body).termination?.rfc3339 == "2025-03-14T02:26:04.000Z")
    }

    @Test("a message without Topic or with an unknown PropertyOperation is refused with a reason; its siblings are read")
    func badMessage() throws {
        let body = try ONVIFSOAP.body(Self.envelope("""
            <tev:PullMessagesResponse><wsnt:NotificationMessage><wsnt:Message><tt:Message UtcTime="2025-03-14T02:16:02Z"/></wsnt:Message></wsnt:NotificationMessage>\
            <wsnt:NotificationMessage><wsnt:Topic>tns1:VideoSource/MotionAlarm</wsnt:Topic><wsnt:Message><tt:Message PropertyOperation="Sometimes"/></wsnt:Message></wsnt:NotificationMessage>\
            <wsnt:NotificationMessage><wsnt:Topic>tns1:VideoSource/MotionAlarm</wsnt:Topic></wsnt:NotificationMessage>\
            <wsnt:NotificationMessage><wsnt:Topic>tns1:VideoSource/MotionAlarm</wsnt:Topic><wsnt:Message><tt:Message UtcTime="2025-03-14T02:16:02Z" PropertyOperation="Changed"><tt:Data><tt:SimpleItem Name="State" Value="1"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>
            </tev:PullMessagesResponse>
            """))
        let results = ONVIFNotification.messages(in: body).map(\.result)
        #expect(results.count == 4)
        #expect((try? results[0].get()) == nil)
        if case .failure(let error) = results[0] { #expect(error.reason.contains("without Topic")) }
        if case .failure(let error) = results[1] { #expect(error.reason.contains("Sometimes")) } else { Issue.record("accepted an unknown PropertyOperation") }
        if case .failure(let error) = results[2] { #expect(error.reason.contains("without Message")) } else { Issue.record("accepted a message without Message") }
        #expect((try? results[3].get())?.state == true)
    }

    @Test("topics: prefixes, trailing slashes, nested vendor prefixes, whole-segment prefix match, device kinds first")
    func topics() throws {
        #expect(ONVIFNotification.normalizedTopic("tns1:VideoSource/MotionAlarm/") == "VideoSource/MotionAlarm")
        #expect(ONVIFNotification.normalizedTopic("tns1:RuleEngine/TamperDetector/Tamper//.") == "RuleEngine/TamperDetector/Tamper")
        #expect(ONVIFNotification.normalizedTopic("tns1:Device/Trigger/tnshik:AlarmIn") == "Device/Trigger/AlarmIn")
        #expect(ONVIFTopics.rule(for: "VideoAnalytics/MotionDetection")?.kind == .cameraMotion)
        #expect(ONVIFTopics.rule(for: "Device/Trigger/AlarmIn")?.kind == .alarmInput)
        #expect(ONVIFTopics.rule(for: "VideoSource/GlobalSceneChange/ImagingService")?.kind == .cameraSceneChange)
        #expect(ONVIFTopics.rule(for: "VideoSource/ImageTooDark/ImagingService")?.priority == .telemetry)
        #expect(ONVIFTopics.rule(for: "RuleEngine/LineDetector/Crossed")?.kind == .cameraLineCrossing)
        #expect(ONVIFTopics.rule(for: "RuleEngine/FieldDetector/ObjectsInside")?.kind == .cameraIntrusion)
        #expect(ONVIFTopics.rule(for: "VideoSource/MotionAlarmX") == nil)
        #expect(ONVIFTopics.rule(for: "Monitoring/ProcessorUsage") == nil)
        var device = DeviceConfig(
            id: "cam", driver: "onvif", vendor: "generic", type: .camera, timeZone: Self.utc, allowFrom: [], offlineAfterSeconds: 60,
            enabled: true, options: DeviceOptions(configured: ["kinds": .kindTable([
                KindTableRow("tns1:RuleEngine/MyRule/Alarm", .cameraIntrusion), KindTableRow("VideoSource/MotionAlarm", .cameraPerson),
            ])], defaults: [:]))
        device.address = "127.0.0.1"
        let extra = try ONVIFOptions(device).extraRules
        #expect(extra.count == 2)
        #expect(ONVIFTopics.rule(for: "RuleEngine/MyRule/Alarm", extra: extra)?.kind == .cameraIntrusion)
        #expect(ONVIFTopics.rule(for: "VideoSource/MotionAlarm", extra: extra)?.kind == .cameraPerson)
    }

    @Test("states: true/1/active vs false/0/inactive in any case; text that is no boolean is no state")
    func states() throws {
        for (text, state) in [("true", true), ("1", true), ("TRUE", true), ("active", true), ("FALSE", false), ("0", false), ("inactive", false)] {
            #expect(try Self.notification("tns1:VideoSource/MotionAlarm", state: text).state == state, "\(text)")
        }
        #expect(try Self.notification("tns1:Monitoring/Temperature", state: "41.5", item: "Value").state == nil)
    }

    @Test("UtcTime: Z, no zone, a dash for T, overflowing fields, zero dates, local time labelled UTC")
    func utcTime() {
        #expect(ONVIFTime.parse("2025-03-14T02:16:02Z", format: .utc, zone: Self.shanghai)?.rfc3339 == "2025-03-14T02:16:02.000Z")
        #expect(ONVIFTime.parse("2025-03-14T02:16:02", format: .utc, zone: Self.shanghai)?.rfc3339 == "2025-03-14T02:16:02.000Z")
        #expect(ONVIFTime.parse("2025-03-14-02:16:02Z", format: .utc, zone: Self.shanghai)?.rfc3339 == "2025-03-14T02:16:02.000Z")
        #expect(ONVIFTime.parse("2025-03-14T10:16:02+08:00", format: .utc, zone: Self.utc)?.rfc3339 == "2025-03-14T02:16:02.000Z")
        #expect(ONVIFTime.parse("2025-03-14T00:61:16Z", format: .utc, zone: Self.utc) == nil)
        #expect(ONVIFTime.parse("0000-00-00T00:00:00Z", format: .utc, zone: Self.utc) == nil)
        #expect(ONVIFTime.parse("", format: .utc, zone: Self.utc) == nil)
        #expect(ONVIFTime.parse("2025-03-14T10:16:02Z", format: .local, zone: Self.shanghai)?.rfc3339 == "2025-03-14T02:16:02.000Z")
        #expect(ONVIFSOAP.durationSeconds("PT600S") == 600 && ONVIFSOAP.durationSeconds("PT10M") == 600 && ONVIFSOAP.durationSeconds("PT1M30.5S") == 90.5)
        #expect(ONVIFSOAP.durationSeconds("P1D") == 86_400 && ONVIFSOAP.durationSeconds("600") == nil && ONVIFSOAP.durationSeconds("PTS") == nil)
    }

    @Test("quirk table: rows by manufacturer, model refinements, options override")
    func quirkTable() throws {
        func quirks(_ manufacturer: String, _ model: String = "") -> ONVIFQuirks {
            ONVIFQuirkTable.quirks(for: .init(manufacturer: manufacturer, model: model, firmware: "V1")).0
        }
        #expect(quirks("HIKVISION").maxSubscriptions == 5)
        #expect(quirks("Dahua").renewMode == .absolute && quirks("Amcrest").renewMode == .absolute)
        #expect(quirks("AXIS").pullTimeoutSeconds == 20)
        #expect(quirks("TP-Link", "Tapo C200").oneListenerOnly && quirks("TP-Link").renewMinIntervalSeconds == 120)
        #expect(quirks("Reolink").oneListenerOnly)
        #expect(quirks("Uniview").renewUnit == .minutes)
        #expect(quirks("Acme") == ONVIFQuirks())
        var options = ONVIFOptions()
        options.renewUnit = .seconds
        options.timeFormat = .local
        options.pullTimeoutSeconds = 5
        let merged = options.applying(to: quirks("Uniview"))
        #expect(merged.renewUnit == .seconds && merged.timeFormat == .local && merged.pullTimeoutSeconds == 5)
    }

    @Test("mapper: the Initialized burst starts only what is active, once; repeats are no news; stop refers to the start")
    func initializedBurst() throws {
        var mapper = ONVIFEventMapper(deviceID: "cam", zone: Self.utc, motionQuiet: .seconds(60))
        let now = Timestamp(milliseconds: 1_741_918_562_000)
        var drafts: [EventDraft] = []
        // 20 inactive properties and one active input after subscribing: one start.
        for index in 0..<20 { drafts += mapper.drafts(for: try Self.notification("tns1:RuleEngine/TamperDetector/Tamper", "Initialized", state: "false", item: "IsTamper", source: "vs\(index)"), now: now) }
        drafts += mapper.drafts(for: try Self.notification("tns1:Device/Trigger/DigitalInput", "Initialized", state: "true", item: "LogicalState"), now: now)
        #expect(drafts.count == 1)
        #expect(drafts.first?.kind == .alarmInput && drafts.first?.state == .start && drafts.first?.alarm?.initial == true)
        // A re-subscription replays the same: nothing new.
        #expect(mapper.drafts(for: try Self.notification("tns1:Device/Trigger/DigitalInput", "Initialized", state: "true", item: "LogicalState"), now: now).isEmpty)
        // A real start, its repeat, its end; Deleted ends too.
        let start = mapper.drafts(for: try Self.notification("tns1:RuleEngine/FieldDetector/ObjectsInside", state: "1", item: "IsInside"), now: now)
        #expect(start.map(\.state) == [.start] && start.first?.kind == .cameraIntrusion && start.first?.point == "vsc_main")
        #expect(start.first?.attributes?["code"] == .string("RuleEngine/FieldDetector/ObjectsInside"))
        #expect(start.first?.attributes?["analytic"] == .string("field"))
        #expect(mapper.drafts(for: try Self.notification("tns1:RuleEngine/FieldDetector/ObjectsInside", state: "1", item: "IsInside", time: "2025-03-14T02:16:05Z"), now: now).isEmpty)
        let stop = mapper.drafts(for: try Self.notification("tns1:RuleEngine/FieldDetector/ObjectsInside", state: "0", item: "IsInside", time: "2025-03-14T02:16:09Z"), now: now)
        #expect(stop.map(\.state) == [.stop] && stop.first?.alarm?.id == start.first?.alarm?.id && stop.first?.alarm?.stopReason == .device)
        let deleted = mapper.drafts(for: try Self.notification("tns1:Device/Trigger/DigitalInput", "Deleted", state: "true", item: "LogicalState"), now: now)
        #expect(deleted.map(\.state) == [.stop])
        // A one-shot event with no boolean state is an event at an instant with a stable dedup key.
        let pulse = mapper.drafts(for: try Self.notification("tns1:Monitoring/Temperature", nil, state: "41.5", item: "Value"), now: now)
        #expect(pulse.count == 1 && pulse.first?.state == nil && pulse.first?.kind == .vendorOther && pulse.first?.dedupKey?.hasPrefix("onvif:") == true)
        #expect(pulse.first?.dedupKey == mapper.drafts(for: try Self.notification("tns1:Monitoring/Temperature", nil, state: "41.5", item: "Value"), now: now).first?.dedupKey)
    }

    @Test("mapper: motion closes after the quiet time; an input held active does not")
    func quietMotion() throws {
        var mapper = ONVIFEventMapper(deviceID: "cam", zone: Self.utc, motionQuiet: .seconds(60))
        let now = Timestamp(milliseconds: 1_741_918_562_000)
        #expect(mapper.drafts(for: try Self.notification("tns1:VideoSource/MotionAlarm"), now: now).map(\.state) == [.start])
        #expect(mapper.drafts(for: try Self.notification("tns1:Device/Trigger/DigitalInput", state: "true", item: "LogicalState"), now: now).map(\.state) == [.start])
        #expect(mapper.expire(now: now.adding(seconds: 59)).isEmpty)
        let closed = mapper.expire(now: now.adding(seconds: 61))
        #expect(closed.map(\.kind) == [.cameraMotion] && closed.first?.alarm?.stopReason == .quiet)
        #expect(mapper.expire(now: now.adding(seconds: 600)).isEmpty)
        #expect(mapper.openAlarms == 1)
        // The camera's late false edge for the closed motion is not news twice.
        #expect(mapper.drafts(for: try Self.notification("tns1:VideoSource/MotionAlarm", state: "false"), now: now.adding(seconds: 700)).isEmpty)
    }

    @Test("decode (quarantine replay) reads a kept reply or one message; garbage is refused with the reason")
    func replay() throws {
        let device = DeviceConfig(
            id: "cam", driver: "onvif", vendor: "generic", type: .camera, timeZone: Self.utc, allowFrom: [], offlineAfterSeconds: 60,
            enabled: true, options: DeviceOptions())
        let drafts = try ONVIFDriver().decode(RawPayload(body: Self.sampleC, contentType: "application/soap+xml", route: nil), device: device)
        #expect(drafts.map(\.kind) == [.cameraMotion, .alarmInput] && drafts.allSatisfy { $0.state == .start })
        #expect(throws: PayloadError.self) { _ = try ONVIFDriver().decode(RawPayload(body: Array("<s:Envelope".utf8), contentType: nil, route: nil), device: device) }
    }
}
