import Foundation
import GatehouseCore
import Yams

/// One test vector of a profile: `samples/<case>.<ext>`, optional `samples/<case>.meta.yaml`
/// (content type, headers, source address, device), and `expected/<case>.json` or `.err`.
public struct VectorCase: Sendable {
    public var name: String
    public var sample: String
    public var meta: String?
    public var expected: String?

    /// The cases of a profile folder, by sample name.
    public static func all(in directory: String) -> [VectorCase] {
        let samples = (directory as NSString).appendingPathComponent("samples")
        let expected = (directory as NSString).appendingPathComponent("expected")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: samples)) ?? []
        return files.filter { !$0.hasSuffix(".meta.yaml") && !$0.hasPrefix(".") }.sorted().map { file in
            let name = (file as NSString).deletingPathExtension
            let meta = (samples as NSString).appendingPathComponent(name + ".meta.yaml")
            let json = (expected as NSString).appendingPathComponent(name + ".json")
            let err = (expected as NSString).appendingPathComponent(name + ".err")
            let fm = FileManager.default
            return VectorCase(
                name: name, sample: (samples as NSString).appendingPathComponent(file),
                meta: fm.fileExists(atPath: meta) ? meta : nil,
                expected: fm.fileExists(atPath: json) ? json : fm.fileExists(atPath: err) ? err : nil)
        }
    }

    /// The request and device the sample stands for.
    func request() throws(MappingError) -> (ProfileRequest, ProfileDevice) {
        guard let data = FileManager.default.contents(atPath: sample) else { throw MappingError("cannot read \(sample)") }
        let ext = (sample as NSString).pathExtension.lowercased()
        var contentType: String? = switch ext {
        case "json": "application/json"
        case "xml": "application/xml"
        case "form": "application/x-www-form-urlencoded"
        default: nil
        }
        var headers: [String: String] = [:]
        var remoteIP: String?
        var device = ProfileDevice(id: "test-device", serial: nil, timeZone: TimeZone(identifier: "Asia/Shanghai") ?? .gmt)
        if let meta {
            guard let text = FileManager.default.contents(atPath: meta).flatMap({ String(data: $0, encoding: .utf8) }),
                case .mapping(let map)? = try? YAMLDocument.compose(text)
            else { throw MappingError("\(meta) is not a YAML mapping") }
            for (key, value) in map {
                switch (key.string, value) {
                case ("content_type", _): contentType = value.string
                case ("remote_ip", _): remoteIP = value.string
                // Written by `adapters scaffold` for the reader; not used to build the request.
                case ("route", _), ("received_at", _): break
                case ("headers", .mapping(let h)):
                    for (name, v) in h { if let n = name.string, let s = v.string { headers[n] = s } }
                case ("device", .mapping(let d)):
                    for (name, v) in d {
                        switch (name.string, v) {
                        case ("id", _): device.id = v.string ?? device.id
                        case ("serial", _): device.serial = v.string
                        case ("time_zone", _):
                            guard let zone = v.string.flatMap(TimeZone.init(identifier:)) else { throw MappingError("\(meta): unknown time_zone") }
                            device.timeZone = zone
                        case ("options", .mapping(let o)):
                            for (k, ov) in o { if let k = k.string, let s = ov.string { device.options[k] = s } }
                        default: throw MappingError("\(meta): unknown key device.\(name.string ?? "?") (valid: id, serial, time_zone, options)")
                        }
                    }
                default: throw MappingError("\(meta): unknown key '\(key.string ?? "?")' (valid: content_type, headers, remote_ip, device, route, received_at)")
                }
            }
        }
        if let contentType { headers["content-type"] = contentType }
        return (ProfileRequest(body: Array(data), contentType: contentType, headers: headers, remoteIP: remoteIP), device)
    }
}
