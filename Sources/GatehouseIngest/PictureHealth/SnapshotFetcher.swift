import AsyncHTTPClient
import GatehouseCore
import NIOCore

/// Fetches a camera's snapshot over HTTP with the device's credentials: unauthenticated first
/// (some recorders serve pictures without), then Digest when offered (the project's Digest
/// client, as the Hikvision drivers use it), Basic only when Digest is not offered.
struct SnapshotFetcher: Sendable {
    let client: HTTPClient
    let timeout: TimeAmount
    let maxBytes: Int

    struct Failure: Error, CustomStringConvertible {
        var description: String
        /// The HTTP status that ended the fetch, when one did (liveness classifies by it).
        var status: UInt? = nil
    }

    func fetch(_ url: String, username: String?, password: String?) async throws -> [UInt8] {
        var response = try await get(url, authorization: nil)
        if response.status == .unauthorized, let username, let password {
            let offered = response.headers["WWW-Authenticate"]
            let authorization: String
            if let challenge = offered.lazy.compactMap(HikvisionDigestClient.challenge).first {
                authorization = HikvisionDigestClient.authorization(
                    challenge, method: "GET", uri: Self.requestTarget(url), username: username, password: password,
                    cnonce: HikvisionDigestClient.newCnonce(), nc: 1)
            } else if offered.contains(where: { $0.lowercased().hasPrefix("basic") }) {
                authorization = HikvisionDigestClient.basic(username: username, password: password)
            } else {
                throw Failure(description: "401 without a Digest or Basic challenge", status: 401)
            }
            response = try await get(url, authorization: authorization)
            if response.status == .unauthorized { throw Failure(description: "credentials refused (401 after authenticating)", status: 401) }
        }
        guard response.status == .ok else {
            throw Failure(
                description: "HTTP \(response.status.code)\(response.status == .unauthorized ? " (the device has no username/password in auth:)" : "")",
                status: response.status.code)
        }
        do {
            return Array(buffer: try await response.body.collect(upTo: maxBytes))
        } catch is NIOTooManyBytesError {
            throw Failure(description: "snapshot larger than picture_health.max_snapshot_bytes (\(maxBytes) bytes)")
        }
    }

    private func get(_ url: String, authorization: String?) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: url)
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        let response = try await client.execute(request, timeout: timeout)
        if response.status != .ok {
            // Read the (small) error body so the connection can be reused for the retry.
            _ = try? await response.body.collect(upTo: 64 << 10)
        }
        return response
    }

    /// The request-line target (path and query, byte for byte) Digest's `uri` must repeat.
    static func requestTarget(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url }
        let rest = url[schemeEnd.upperBound...]
        guard let slash = rest.firstIndex(of: "/") else { return "/" }
        return String(rest[slash...])
    }
}
