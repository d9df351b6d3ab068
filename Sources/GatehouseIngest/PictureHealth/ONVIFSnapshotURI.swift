import AsyncHTTPClient
import Foundation
import GatehouseCore

/// Asks an ONVIF camera where its snapshot is, with the onvif driver's SOAP client (WS-Security
/// signed on the camera's clock, HTTP Digest on top when the camera asks, addresses the camera
/// hands out rewritten to the configured host): GetSystemDateAndTime for the clock offset,
/// GetServices (or GetCapabilities) for the media service, GetProfiles, then GetSnapshotUri of
/// the first profile. The monitor caches the answer and asks again after a failed snapshot.
enum ONVIFSnapshotURI {
    static func resolve(
        deviceServiceURL: String, credentials: (username: String, password: String)?, zone: TimeZone, http: HTTPClient,
        clock: any DriverClock, timeout: Duration
    ) async throws(ONVIFError) -> String {
        let client = ONVIFClient(
            http: http, credentials: credentials.map { ONVIFSOAP.Credentials(username: $0.username, password: $0.password) },
            configuredHost: URLComponents(string: deviceServiceURL)?.host)
        // The camera clock, without credentials (the spec allows it); some firmware wants them.
        var body: ONVIFElement
        do {
            body = try await client.call(
                .getSystemDateAndTime, body: ONVIFSOAP.getSystemDateAndTime, to: deviceServiceURL, gatewayNow: clock.now, timeout: timeout,
                authenticated: false)
        } catch .fault, .unauthorized {
            body = try await client.call(.getSystemDateAndTime, body: ONVIFSOAP.getSystemDateAndTime, to: deviceServiceURL, gatewayNow: clock.now, timeout: timeout)
        }
        let gatewayNow = clock.now
        client.offsetMilliseconds = ONVIFSOAP.systemDateAndTime(body, zone: zone).map { $0.milliseconds - gatewayNow.milliseconds } ?? 0
        var media: String?
        do {
            media = ONVIFSOAP.mediaAddress(try await client.call(.getServices, body: ONVIFSOAP.getServices, to: deviceServiceURL, gatewayNow: clock.now, timeout: timeout))
        } catch .fault, .malformed {
            media = nil
        }
        if media == nil {
            media = ONVIFSOAP.mediaAddress(
                try await client.call(.getCapabilities, body: ONVIFSOAP.getMediaCapabilities, to: deviceServiceURL, gatewayNow: clock.now, timeout: timeout))
        }
        guard let media else { throw .malformed("neither GetServices nor GetCapabilities names a media service") }
        let mediaURL = client.normalize(media)
        let profiles = ONVIFSOAP.profileTokens(try await client.call(.getProfiles, body: ONVIFSOAP.getProfiles, to: mediaURL, gatewayNow: clock.now, timeout: timeout))
        guard let profile = profiles.first else { throw .malformed("GetProfiles named no profile") }
        let reply = try await client.call(.getSnapshotUri, body: ONVIFSOAP.getSnapshotUri(profile: profile), to: mediaURL, gatewayNow: clock.now, timeout: timeout)
        guard let uri = ONVIFSOAP.snapshotURI(reply) else { throw .malformed("GetSnapshotUri gave no MediaUri/Uri") }
        return client.normalize(uri)
    }
}
