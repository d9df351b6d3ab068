import Synchronization

/// Holds whoever calls `pass()` until `open()`: a test holds the queue's group committer with it
/// (`EventQueue.beforeCommit`) to fill the line of waiting appends without depending on speed.
public final class Gate: Sendable {
    private let state = Mutex<(open: Bool, held: [CheckedContinuation<Void, Never>])>((false, []))

    public init() {}

    /// Callers waiting in `pass()` now.
    public var holding: Int { state.withLock { $0.held.count } }

    public func pass() async {
        await withCheckedContinuation { continuation in
            let resume = state.withLock { s -> Bool in
                if s.open { return true }
                s.held.append(continuation)
                return false
            }
            if resume { continuation.resume() }
        }
    }

    public func open() {
        let held = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.open = true
            defer { s.held = [] }
            return s.held
        }
        for continuation in held { continuation.resume() }
    }
}
