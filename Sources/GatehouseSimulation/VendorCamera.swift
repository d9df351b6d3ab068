import AsyncHTTPClient
import Foundation
import GatehouseCore
import NIOCore

/// A simulated vendor camera that posts its brand's own payloads to `/v1/push/{profile}`, the
/// way the real firmware does: Zhenshi AlarmInfoPlate JSON (with retries and offline replays),
/// Hikvision ANPR multipart with picture parts, and a legacy controller's GBK form.
public struct VendorCamera: Sendable {
    /// The brands this simulator speaks.
    public enum Brand: String, Sendable, CaseIterable {
        case zhenshi, hikvision, legacyGBK = "legacy-gbk"

        public var profile: String {
            switch self {
            case .zhenshi: "zhenshi-lpr"
            case .hikvision: "hikvision-anpr"
            case .legacyGBK: "legacy-parking-gbk"
            }
        }
    }

    /// One post and the gateway's answer.
    public struct Exchange: Sendable {
        public var status: Int
        public var reply: String
    }

    public var brand: Brand
    /// The vendor identity written into payloads (Zhenshi serialno, Hikvision MAC, controller sn).
    public var serial: String
    public var baseURL: String

    public init(brand: Brand, serial: String, baseURL: String) {
        self.brand = brand
        self.serial = serial
        self.baseURL = baseURL
    }

    /// The payload of plate read `record` and its Content-Type; `offline` marks a replayed record.
    /// `lane` is the Hikvision `line` and the legacy `lane` field (Zhenshi firmware has one channel).
    public func payload(plate: String, record: Int, at time: Date, offline: Bool = false, imageBytes: Int = 4096, lane: Int = 1) -> (body: [UInt8], contentType: String) {
        let seconds = Int(time.timeIntervalSince1970)
        switch brand {
        case .zhenshi:
            let json = """
                {"AlarmInfoPlate":{"channel":0,"deviceName":"sim","serialno":"\(serial)","result":{"PlateResult":{\
                "license":"\(plate)","colorType":1,"type":1,"confidence":95,"triggerType":8,"plateid":\(record),\
                "isoffline":\(offline ? 1 : 0),"gioouts":[{"ionum":0,"ctrltype":\(offline ? 2 : 0)}],\
                "timeStamp":{"Timeval":{"sec":\(seconds),"usec":0}}}}}}
                """
            return (Array(json.utf8), "application/json")
        case .hikvision:
            let local = Self.compactLocal(time)
            let xml = """
                <EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">\
                <macAddress>\(serial)</macAddress><channelID>1</channelID><dateTime>\(Timestamp(time).rfc3339)</dateTime>\
                <eventType>ANPR</eventType><eventState>active</eventState><ANPR><licensePlate>\(plate)</licensePlate>\
                <line>\(lane)</line><direction>forward</direction><confidenceLevel>95</confidenceLevel><plateColor>blue</plateColor>\
                <pictureInfoList><pictureInfo><fileName>licensePlatePicture.jpg</fileName><absTime>\(local)</absTime></pictureInfo></pictureInfoList>\
                </ANPR><UUID>\(local)\(serial.filter(\.isHexDigit))\(record)</UUID>\
                <isDataRetransmission>\(offline)</isDataRetransmission></EventNotificationAlert>
                """
            let boundary = "boundary"
            var body: [UInt8] = []
            func part(_ name: String, _ type: String, _ bytes: [UInt8]) {
                body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(name)\"\r\nContent-Type: \(type)\r\n\r\n".utf8)
                body += bytes + Array("\r\n".utf8)
            }
            part("anpr.xml", "application/xml; charset=\"UTF-8\"", Array(xml.utf8))
            let jpeg: [UInt8] = [0xFF, 0xD8] + (0..<max(0, imageBytes - 4)).map { UInt8(truncatingIfNeeded: $0 &* 31) } + [0xFF, 0xD9]
            part("licensePlatePicture.jpg", "image/jpeg", jpeg)
            body += Array("--\(boundary)--\r\n".utf8)
            return (body, "multipart/form-data; boundary=\(boundary)")
        case .legacyGBK:
            let gbk = TextDecoding.encode(plate, as: .gbk) ?? Array(plate.utf8)
            let encoded = gbk.map { String(format: "%%%02X", $0) }.joined()
            let local = Self.wallClock(time)
            let form = "plate=\(encoded)&time=\(local.replacingOccurrences(of: " ", with: "+").replacingOccurrences(of: ":", with: "%3A"))&lane=\(lane)&type=1&open=1&sn=\(serial)&rid=\(record)"
            return (Array(form.utf8), "application/x-www-form-urlencoded")
        }
    }

    /// Posts one payload and returns the reply.
    public func post(_ payload: (body: [UInt8], contentType: String), client: HTTPClient = .shared) async -> Exchange {
        var request = HTTPClientRequest(url: "\(baseURL)/v1/push/\(brand.profile)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: payload.contentType)
        request.body = .bytes(ByteBuffer(bytes: payload.body))
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 1 << 20)
            return Exchange(status: Int(response.status.code), reply: String(buffer: body))
        } catch {
            return Exchange(status: 0, reply: "\(error)")
        }
    }

    static func wallClock(_ time: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "Asia/Shanghai")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: time)
    }

    static func compactLocal(_ time: Date) -> String {
        wallClock(time).filter(\.isNumber) + "000"
    }
}
