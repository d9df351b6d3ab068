import Hummingbird
import NIOCore

/// Request context of the ingest listener: Hummingbird's core storage plus the peer address,
/// which allow-lists and rate limits need.
public struct IngestRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The peer's IP address as text, e.g. `127.0.0.1` or `::1`.
    public var remoteIP: String? { remoteAddress?.ipAddress }
}
