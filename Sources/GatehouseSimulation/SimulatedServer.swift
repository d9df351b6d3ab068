import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// Runs a simulator's HTTP responder on a loopback address and reports the port it bound, so
/// tests can start it on port 0 and wait for it.
final class SimulatedServer: Sendable {
    private let bound = Mutex<(port: Int?, failure: String?)>((nil, nil))
    let name: String

    init(name: String) { self.name = name }

    /// Serves until the task is cancelled, then shuts down gracefully (at most 5 s, then cancelled):
    /// a server task cancelled while an accepted connection waits to be served drops that
    /// connection's NIOAsyncChannel unclosed, which traps the whole process ("Deinited
    /// NIOAsyncWriter without calling finish()", swift-nio #2637; seen once in a loaded test run).
    /// A failure to start is also kept for `waitUntilRunning`.
    func run(host: String, port: Int, logger: Logger, respond: @escaping @Sendable (Request) async -> Response) async throws {
        let app = Application(
            responder: CallbackResponder<BasicRequestContext> { request, _ in await respond(request) },
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: name),
            onServerRunning: { channel in
                let port = channel.localAddress?.port
                self.bound.withLock { $0.port = port }
            },
            logger: logger)
        var configuration = ServiceGroupConfiguration(services: [app], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(5)
        let group = ServiceGroup(configuration: configuration)
        // Its own task, which the caller's cancellation does not reach: the handler turns it into a shutdown.
        let serving = Task { try await group.run() }
        do {
            try await withTaskCancellationHandler {
                try await serving.value
            } onCancel: {
                Task { await group.triggerGracefulShutdown() }
            }
        } catch {
            bound.withLock { $0.failure = "\(error)" }
            throw error
        }
    }

    /// The bound port once listening; `makeError` words the failure for the simulator's own error type.
    /// Callers give a generous limit (60 s by default): on a machine shared with other work a
    /// bind can take seconds, and the limit only bounds a wait, it asserts nothing about speed.
    func waitUntilRunning(timeout: Duration, makeError: (String) -> any Error) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let (port, failure) = bound.withLock { ($0.port, $0.failure) }
            if let port { return port }
            if let failure { throw makeError("\(name) failed to start: \(failure)") }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw makeError("\(name) did not start listening within \(timeout)")
    }
}
