import NIOCore

/// Vendor payloads for `http --profile`: Zhenshi AlarmInfoPlate JSON or Hikvision ANPR multipart
/// (XML part + one JPEG part of `imageBytes`), each request a new plate read (unique record id,
/// so dedup keeps every one). Static fragments and one precomputed picture keep the generator cheap.
struct ProfileBodyBuilder {
    enum Brand: String, CaseIterable {
        case zhenshi = "zhenshi-lpr", hikvision = "hikvision-anpr"
    }

    let brand: Brand
    private let jpeg: [UInt8]
    private let runID: UInt64
    private var seq: UInt64 = 0
    static let boundary = "benchboundary7d2f"

    init(brand: Brand, imageBytes: Int, seed: UInt64) {
        self.brand = brand
        self.runID = seed % 100_000
        var picture: [UInt8] = [0xFF, 0xD8]
        var state = seed | 1
        for _ in 0..<max(0, imageBytes - 4) {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            picture.append(UInt8(truncatingIfNeeded: state >> 56))
        }
        picture += [0xFF, 0xD9]
        self.jpeg = picture
    }

    var contentType: String {
        switch brand {
        case .zhenshi: "application/json"
        case .hikvision: "multipart/form-data; boundary=\(Self.boundary)"
        }
    }

    var eventCount: UInt64 { seq }

    mutating func makeBody(allocator: ByteBufferAllocator, epochSeconds: Int) -> ByteBuffer {
        seq += 1
        let record = runID * 10_000_000 + seq
        let plate = "川A" + String(100_000 + Int(seq % 900_000)).suffix(5)
        switch brand {
        case .zhenshi:
            var buffer = allocator.buffer(capacity: 512)
            buffer.writeStaticString(#"{"AlarmInfoPlate":{"channel":0,"deviceName":"bench","serialno":"bench-serial","result":{"PlateResult":{"license":""#)
            buffer.writeString(plate)
            buffer.writeStaticString(#"","colorType":1,"type":1,"confidence":95,"triggerType":8,"plateid":"#)
            buffer.writeString(String(record))
            buffer.writeStaticString(#","isoffline":0,"gioouts":[{"ionum":0,"ctrltype":0}],"timeStamp":{"Timeval":{"sec":"#)
            buffer.writeString(String(epochSeconds))
            buffer.writeStaticString(#","usec":0}}}}}}"#)
            return buffer
        case .hikvision:
            var buffer = allocator.buffer(capacity: jpeg.count + 1400)
            buffer.writeString("--\(Self.boundary)\r\nContent-Disposition: form-data; name=\"anpr.xml\"; filename=\"anpr.xml\"\r\nContent-Type: application/xml; charset=\"UTF-8\"\r\n\r\n")
            buffer.writeStaticString(#"<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema"><macAddress>44:19:b6:10:22:7e</macAddress><channelID>1</channelID><dateTime>"#)
            buffer.writeString(Self.rfc3339(epochSeconds))
            buffer.writeStaticString(#"</dateTime><eventType>ANPR</eventType><eventState>active</eventState><ANPR><licensePlate>"#)
            buffer.writeString(plate)
            buffer.writeStaticString(#"</licensePlate><line>1</line><direction>forward</direction><confidenceLevel>95</confidenceLevel><plateColor>blue</plateColor><pictureInfoList><pictureInfo><fileName>licensePlatePicture.jpg</fileName></pictureInfo></pictureInfoList></ANPR><UUID>bench-"#)
            buffer.writeString(String(record))
            buffer.writeStaticString("</UUID><isDataRetransmission>false</isDataRetransmission></EventNotificationAlert>\r\n")
            buffer.writeString("--\(Self.boundary)\r\nContent-Disposition: form-data; name=\"licensePlatePicture.jpg\"; filename=\"licensePlatePicture.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n")
            buffer.writeBytes(jpeg)
            buffer.writeString("\r\n--\(Self.boundary)--\r\n")
            return buffer
        }
    }

    static func rfc3339(_ seconds: Int) -> String {
        // Civil date from days since the epoch (Howard Hinnant's algorithm), UTC.
        let days = seconds / 86_400
        let rest = seconds % 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(year)-\(two(month))-\(two(day))T\(two(rest / 3600)):\(two(rest / 60 % 60)):\(two(rest % 60))Z"
    }
}
