import CJPEGShim
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Plays a camera's HTTP snapshot URL on 127.0.0.1 behind Digest (MD5, qop=auth, as in the
/// Dahua-style sample of the camera notes), Basic, or nothing: `GET /cgi-bin/snapshot.cgi` and
/// `GET /ISAPI/Streaming/channels/101/picture` answer a freshly encoded JPEG (libjpeg's compress
/// API, through the same C target the gateway decodes with) of the picture chosen now: sharp,
/// blurred, dark, covered (uniform) or frozen. Every sharp, blurred and dark frame differs from the
/// previous one (a moving block and sensor noise), as a live camera's does; frozen repeats the last
/// frame byte for byte. `POST /control/picture?mode=…` switches it at run time from outside, and
/// `POST /control/answers?mode=hold|normal` makes it hang (take requests, answer none) and come back.
public final class SnapshotCamera: Sendable {
    public enum Picture: String, Sendable, CaseIterable {
        case sharp, blurred, dark, covered, frozen
    }

    /// How the snapshot URL is protected: Digest (most cameras), Basic only (old boards), or not at
    /// all (some recorders' picture setting).
    public enum Authentication: String, Sendable, CaseIterable {
        case digest, basic, none
    }

    public let username: String
    public let password: String
    public let realm = "Login to 4L0C7E1PAZ"
    public let width: Int
    public let height: Int
    public let authentication: Authentication
    private let digest: SimulatedDigest
    private let server = SimulatedServer(name: "snapshot camera simulator")
    private let logger: Logger
    private let state: Mutex<(picture: Picture, frame: Int, last: [UInt8]?, served: Int, refused: Int)>
    /// Snapshot requests being answered now, in all and per request target (one target per
    /// simulated channel), the most ever seen, and whether answers are held back.
    private let flight = Mutex<(now: Int, most: Int, perTarget: [String: Int], mostPerTarget: Int, held: Bool)>((0, 0, [:], 0, false))

    public init(
        username: String = "viewer", password: String = "Cam!2025", width: Int = 640, height: Int = 360, picture: Picture = .sharp,
        authentication: Authentication = .digest, logger: Logger
    ) {
        self.authentication = authentication
        self.username = username
        self.password = password
        self.width = width
        self.height = height
        self.logger = logger
        digest = SimulatedDigest(username: username, password: password, realm: realm)
        state = Mutex((picture, 0, nil, 0, 0))
    }

    /// What the next snapshots show.
    public var picture: Picture {
        get { state.withLock { $0.picture } }
        set { state.withLock { $0.picture = newValue } }
    }

    /// Snapshots answered with a picture.
    public var snapshotsServed: Int { state.withLock { $0.served } }
    /// Requests refused with 401 although they carried credentials.
    public var refusedCredentials: Int { state.withLock { $0.refused } }

    /// Snapshot requests in flight now (the gateway's requests, counted from arrival to answer).
    public var snapshotsInFlight: Int { flight.withLock { $0.now } }
    /// The most snapshot requests ever in flight at once, and the most for one request target.
    public var mostInFlight: (all: Int, oneTarget: Int) { flight.withLock { ($0.most, $0.mostPerTarget) } }

    /// Holds every snapshot answer until `releaseSnapshots()`, so a test sees the gateway's
    /// requests pile up without depending on timing.
    public func holdSnapshots() { flight.withLock { $0.held = true } }
    public func releaseSnapshots() { flight.withLock { $0.held = false } }

    public func run(port: Int = 0) async throws {
        try await server.run(host: "127.0.0.1", port: port, logger: logger) { request in await self.respond(to: request) }
    }

    public func waitUntilRunning(timeout: Duration = .seconds(60)) async throws -> Int {
        try await server.waitUntilRunning(timeout: timeout) { SnapshotCameraError(description: $0) }
    }

    func respond(to request: Request) async -> Response {
        if request.method == .post, request.uri.path == "/control/picture" {
            guard let mode = request.uri.queryParameters.get("mode").flatMap(Picture.init(rawValue:)) else {
                return Response(status: .badRequest, body: .init(byteBuffer: ByteBuffer(string: "mode must be one of \(Picture.allCases.map(\.rawValue).joined(separator: ", "))\n")))
            }
            picture = mode
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "picture \(mode.rawValue)\n")))
        }
        if request.method == .post, request.uri.path == "/control/answers" {
            // A camera that hangs (network gone, firmware stuck): requests are taken, never answered.
            switch request.uri.queryParameters.get("mode") {
            case "hold": holdSnapshots()
            case "normal": releaseSnapshots()
            default: return Response(status: .badRequest, body: .init(byteBuffer: ByteBuffer(string: "mode must be one of hold, normal\n")))
            }
            return Response(status: .ok)
        }
        guard request.method == .get, ["/cgi-bin/snapshot.cgi", "/ISAPI/Streaming/channels/101/picture"].contains(request.uri.path) else {
            return Response(status: .notFound)
        }
        let target = request.uri.description
        flight.withLock { f in
            f.now += 1
            f.most = max(f.most, f.now)
            f.perTarget[target, default: 0] += 1
            f.mostPerTarget = max(f.mostPerTarget, f.perTarget[target] ?? 0)
        }
        defer {
            flight.withLock { f in
                f.now -= 1
                f.perTarget[target, default: 1] -= 1
            }
        }
        while flight.withLock({ $0.held }), !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(5))
        }
        guard authorized(request.headers[.authorization], uri: request.uri.description) else {
            if request.headers[.authorization] != nil { state.withLock { $0.refused += 1 } }
            var headers = HTTPFields()
            headers[.wwwAuthenticate] = authentication == .basic
                ? "Basic realm=\"\(realm)\""
                : "Digest realm=\"\(realm)\", qop=\"auth\", nonce=\"\(digest.nonce())\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
            return Response(status: .unauthorized, headers: headers)
        }
        guard let jpeg = nextSnapshot() else { return Response(status: .internalServerError) }
        var headers = HTTPFields()
        headers[.contentType] = "image/jpeg"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: jpeg)))
    }

    private func authorized(_ header: String?, uri: String) -> Bool {
        switch authentication {
        case .none: return true
        case .digest: return header.map { digest.verify($0, method: "GET", uri: uri) } ?? false
        case .basic: return header == "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
        }
    }

    /// The JPEG the camera serves now.
    public func nextSnapshot() -> [UInt8]? {
        let (picture, frame, last) = state.withLock { s -> (Picture, Int, [UInt8]?) in
            s.frame += 1
            return (s.picture, s.frame, s.last)
        }
        let jpeg: [UInt8]?
        if picture == .frozen, let last {
            jpeg = last
        } else {
            jpeg = try? Self.encode(rgb: Self.scene(picture == .frozen ? .sharp : picture, frame: frame, width: width, height: height), width: width, height: height)
        }
        state.withLock {
            if jpeg != nil { $0.served += 1 }
            if picture != .frozen { $0.last = jpeg }
        }
        return jpeg
    }

    /// RGB samples of `picture`: a grid of bars (square-edged when sharp, sine-smooth when blurred),
    /// a block that moves with `frame`, and a little noise that differs per frame.
    public static func scene(_ picture: Picture, frame: Int, width: Int, height: Int) -> [UInt8] {
        var grey = [UInt8](repeating: 0, count: width * height)
        var noise = UInt32(truncatingIfNeeded: frame &* 2_654_435_761 &+ 12345)
        let period = 32.0
        for y in 0..<height {
            let sy = sin(2 * Double.pi * Double(y) / period)
            for x in 0..<width {
                noise = noise &* 1_664_525 &+ 1_013_904_223
                let jitter = Double(Int(noise >> 29)) - 3.5  // -3.5 … 3.5: sensor noise
                let sx = sin(2 * Double.pi * Double(x) / period)
                let value: Double
                switch picture {
                case .sharp, .frozen: value = 128 + 80 * (sx * sy >= 0 ? 1 : -1) + jitter
                case .blurred: value = 128 + 60 * sx * sy + jitter / 4
                case .dark: value = 14 + 9 * (sx * sy >= 0 ? 1 : -1) + jitter / 2
                case .covered: value = 118 + jitter / 4
                }
                grey[y * width + x] = UInt8(max(0, min(255, value)))
            }
        }
        if picture != .covered {
            // The moving block: a passer-by, so consecutive frames of a live camera differ.
            let side = height / 6
            let left = (frame * side) % max(1, width - side)
            let top = height / 3
            let level: UInt8 = picture == .dark ? 40 : 250
            for y in top..<(top + side) {
                for x in left..<(left + side) { grey[y * width + x] = level }
            }
        }
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for index in 0..<(width * height) {
            rgb[index * 3] = grey[index]
            rgb[index * 3 + 1] = grey[index]
            rgb[index * 3 + 2] = UInt8(Double(grey[index]) * 0.9)  // a colour cast, so the decoder's colour-to-grey path is used
        }
        return rgb
    }

    /// Baseline JPEG of RGB (`components` 3) or grey (1) samples, through libjpeg's compress API.
    public static func encode(rgb pixels: [UInt8], width: Int, height: Int, components: Int = 3, quality: Int = 85) throws -> [UInt8] {
        var output: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let code = pixels.withUnsafeBufferPointer { buffer in
            gh_jpeg_encode(buffer.baseAddress, Int32(width), Int32(height), Int32(components), Int32(quality), &output, &size, &message, message.count)
        }
        defer { gh_jpeg_free(output) }
        guard code == 0, let output else {
            throw SnapshotCameraError(description: "JPEG encoder: \(String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
        }
        return Array(UnsafeBufferPointer(start: output, count: size))
    }
}

public struct SnapshotCameraError: Error, CustomStringConvertible {
    public var description: String
}
