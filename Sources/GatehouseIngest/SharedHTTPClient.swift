import AsyncHTTPClient
import NIOCore
import Synchronization

/// One AsyncHTTPClient for all of a driver's devices. A client per device cost each held camera
/// its own connection pool and state machine (issue 10's memory aim); per-device differences
/// (timeouts, Digest answers) travel on each request instead.
///
/// Drivers have no stop hook, so the client lives while any device task uses it: the first
/// `withClient` makes it, the last one to leave shuts it down. It is therefore never shut down
/// under a running device and never outlives the last one (a reload that stops every device
/// ends it; the next start makes a fresh one).
final class SharedHTTPClient: Sendable {
    private struct State {
        var client: HTTPClient?
        var users = 0
    }

    private let configuration: HTTPClient.Configuration
    private let state = Mutex(State())

    /// The timeouts are the driver's, the same for all its devices; the connection pool is
    /// opened up so that long-lived streams and long polls never queue behind each other.
    init(connectTimeout: TimeAmount, readTimeout: TimeAmount? = nil) {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: connectTimeout, read: readTimeout)
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = Self.connectionsPerHost
        self.configuration = configuration
    }

    /// AsyncHTTPClient keeps at most `concurrentHTTP1ConnectionsPerHostSoftLimit` connections
    /// per host (8 by default) and queues further requests. Each camera is its own host, but an
    /// NVR serves many channels, each configured as a device holding a stream or long poll on
    /// the same host and port: with the default the ninth would wait forever. Not unbounded:
    /// every host's pool reserves room for this many connections up front (at 4096 that was
    /// ~100 KB per camera); 64 covers the largest NVRs' channel counts.
    static let connectionsPerHost = 64

    /// Whether a client is open now (for tests of the lifecycle).
    var isOpen: Bool { state.withLock { $0.client != nil } }

    /// Runs `body` with the shared client, which stays open at least until `body` returns.
    func withClient<T>(_ body: (HTTPClient) async throws -> T) async throws -> T {
        let client = acquire()
        let result: T
        do {
            result = try await body(client)
        } catch {
            await release()
            throw error
        }
        await release()
        return result
    }

    private func acquire() -> HTTPClient {
        state.withLock { state in
            state.users += 1
            if let client = state.client { return client }
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            state.client = client
            return client
        }
    }

    private func release() async {
        // Taken out under the lock, so a device starting now makes a fresh client rather than
        // getting this one while it shuts down.
        let closing = state.withLock { state -> HTTPClient? in
            state.users -= 1
            guard state.users == 0 else { return nil }
            defer { state.client = nil }
            return state.client
        }
        try? await closing?.shutdown()
    }
}

extension HTTPClient.Configuration {
    /// For checks that ask each camera once per interval (picture health, liveness): a kept-alive
    /// connection would sit idle until the next one, and 500 of them held the daemon's memory up
    /// (docs/benchmarks.md "Camera health": 153 → 70 MiB for picture health, 220 → see there with
    /// liveness), so a connection goes after 5 s idle.
    static var periodicChecks: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.idleTimeout = .seconds(5)
        return configuration
    }
}
