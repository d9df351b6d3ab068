import AsyncHTTPClient

/// Runs `body` with an HTTP client that is shut down however `body` ends: a client dropped
/// without `shutdown()` is a fatal error that stops the whole test process, so a failed request
/// must not skip it.
public func withHTTPClient<T>(
    configuration: HTTPClient.Configuration = .init(), _ body: (HTTPClient) async throws -> T
) async throws -> T {
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    let result: T
    do {
        result = try await body(client)
    } catch {
        try? await client.shutdown()
        throw error
    }
    try await client.shutdown()
    return result
}
