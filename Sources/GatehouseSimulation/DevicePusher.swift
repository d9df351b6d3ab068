import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Plays a device that pushes generic-JSON events to the gateway over HTTP, and remembers
/// exactly what the gateway acknowledged — the oracle of the end-to-end and crash tests.
public final class DevicePusher: Sendable {
    /// The gateway's answer to one push.
    public struct Reply: Sendable {
        public var status: Int
        public var body: String
        /// Ids from a 200 reply (stored or duplicate), in the order of the events sent.
        public var ids: [String]
        public var error: String?
    }

    let client: HTTPClient
    let baseURL: String

    /// `baseURL` like `http://127.0.0.1:8080`.
    public init(baseURL: String, timeoutSeconds: Int64 = 10) {
        self.baseURL = baseURL
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(2), read: .seconds(timeoutSeconds))
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// POSTs `body` for `deviceID`; never throws, failures come back in `Reply`.
    public func push(deviceID: String, token: String?, body: [UInt8], contentType: String = "application/json") async -> Reply {
        var request = HTTPClientRequest(url: "\(baseURL)/v1/devices/\(deviceID)/events")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: contentType)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: .seconds(15))
            let data = try await response.body.collect(upTo: 4 << 20)
            let text = String(buffer: data)
            var ids: [String] = []
            if response.status == .ok,
                let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                let results = object["results"] as? [[String: Any]]
            {
                ids = results.compactMap { $0["id"] as? String }
            }
            return Reply(status: Int(response.status.code), body: text, ids: ids, error: nil)
        } catch {
            return Reply(status: 0, body: "", ids: [], error: "\(error)")
        }
    }

    public func shutdown() async {
        try? await client.shutdown()
    }
}
