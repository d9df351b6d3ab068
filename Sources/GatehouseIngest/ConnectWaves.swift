import Synchronization

/// Bounds how many devices connect at once: at start, after a reload and when a whole site comes
/// back after a switch or power cut, hundreds of cameras would otherwise all open connections,
/// authenticate and subscribe in the same second. Every connect-time allocation (connection
/// buffers, HTTP parsers, Digest handshakes, SOAP replies being parsed) then peaks together, and
/// the cameras and the network take the burst too. A driver holds a slot from its first request
/// until the device is held (subscription made, stream open) or the attempt failed; the rest wait
/// their turn in order.
///
/// When a wave of connects is over (nobody connecting, nobody waiting), `onWaveEnd` runs with
/// the wave's figures: the daemon gives back the memory the wave used then, rather than at its
/// next periodic release.
public final class ConnectWaves: Sendable {
    /// One device's turn; `end()` (idempotent) lets the next device connect.
    public final class Slot: Sendable {
        private let waves: ConnectWaves
        private let ended = Atomic<Bool>(false)

        fileprivate init(_ waves: ConnectWaves) { self.waves = waves }

        public func end() {
            guard !ended.exchange(true, ordering: .relaxed) else { return }
            waves.release()
        }

        deinit { end() }
    }

    /// A wave: from the first connect after an idle moment to the next idle moment.
    public struct Wave: Sendable, Equatable {
        /// Devices that connected (or tried to) in the wave.
        public var connects = 0
        /// The most that held a slot at one time (never above the limit).
        public var mostAtOnce = 0
    }

    private struct Waiter {
        let id: Int
        let continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var limit: Int
        var inside = 0
        var waiting: [Waiter] = []
        var nextWaiter = 0
        var wave = Wave()
        /// Every wave so far, summed (for tests and the status detail).
        var total = Wave()
    }

    private let state: Mutex<State>
    private let onWaveEnd: @Sendable (Wave) -> Void

    /// `limit` devices connect at once (at least 1).
    public init(limit: Int, onWaveEnd: @escaping @Sendable (Wave) -> Void = { _ in }) {
        state = Mutex(State(limit: max(1, limit)))
        self.onWaveEnd = onWaveEnd
    }

    /// A reloaded limit applies to the next device that asks; those connecting keep their slot.
    public func update(limit: Int) {
        let admitted = state.withLock { state -> [Waiter] in
            state.limit = max(1, limit)
            return admit(&state)
        }
        for waiter in admitted { waiter.continuation.resume(returning: true) }
    }

    /// The current limit and, over every wave so far, connects and the most connecting at once.
    public var figures: (limit: Int, connecting: Int, waiting: Int, total: Wave) {
        state.withLock { ($0.limit, $0.inside, $0.waiting.count, $0.total) }
    }

    /// Waits for a slot, in arrival order; nil when the task was cancelled while waiting.
    public func enter() async -> Slot? {
        let id = state.withLock { state -> Int? in
            if state.waiting.isEmpty, state.inside < state.limit {
                take(&state)
                return nil
            }
            state.nextWaiter += 1
            return state.nextWaiter
        }
        guard let id else { return Slot(self) }
        let admitted = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let resumeNow = state.withLock { state -> Bool? in
                    if Task.isCancelled { return false }
                    // A slot may have freed between the first look and now.
                    if state.waiting.isEmpty, state.inside < state.limit {
                        take(&state)
                        return true
                    }
                    state.waiting.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let resumeNow { continuation.resume(returning: resumeNow) }
            }
        } onCancel: {
            let cancelled = state.withLock { state -> Waiter? in
                guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiting.remove(at: index)
            }
            cancelled?.continuation.resume(returning: false)
        }
        return admitted ? Slot(self) : nil
    }

    private func release() {
        let (admitted, ended) = state.withLock { state -> ([Waiter], Wave?) in
            state.inside -= 1
            let admitted = admit(&state)
            guard state.inside == 0, state.waiting.isEmpty else { return (admitted, nil) }
            defer { state.wave = Wave() }
            return (admitted, state.wave)
        }
        for waiter in admitted { waiter.continuation.resume(returning: true) }
        if let ended { onWaveEnd(ended) }
    }

    /// Lets waiters in while there is room; they are resumed outside the lock.
    private func admit(_ state: inout State) -> [Waiter] {
        var admitted: [Waiter] = []
        while state.inside < state.limit, !state.waiting.isEmpty {
            admitted.append(state.waiting.removeFirst())
            take(&state)
        }
        return admitted
    }

    private func take(_ state: inout State) {
        state.inside += 1
        state.wave.connects += 1
        state.wave.mostAtOnce = max(state.wave.mostAtOnce, state.inside)
        state.total.connects += 1
        state.total.mostAtOnce = max(state.total.mostAtOnce, state.inside)
    }
}
