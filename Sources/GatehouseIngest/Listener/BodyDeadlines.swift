import NIOCore
import NIOPosix
import Synchronization

/// The deadlines of body reads in progress (`request_timeout_seconds`), checked by one sweep every
/// `sweepInterval` while any read is registered, instead of a timer per request.
///
/// Scheduling and cancelling a NIO timer from a request's task wakes an event loop twice (an eventfd
/// write and an epoll return each) for every request, although almost no body is ever late. A
/// registration here is a dictionary insert and remove under a lock; a late body is cut at most one
/// sweep interval after its deadline, and an idle listener has no sweep running at all.
final class BodyDeadlines: Sendable {
    static let sweepInterval = TimeAmount.milliseconds(250)

    private struct Read {
        let deadline: NIODeadline
        let expire: @Sendable () -> Void
    }

    private struct State {
        var nextID: UInt64 = 0
        var reads: [UInt64: Read] = [:]
        var sweeping = false
    }

    private let state = Mutex(State())

    /// Registers a read that `expire` ends if it is still registered `timeout` from now; hand the
    /// result to `finished` when the read ends either way.
    func register(timeout: TimeAmount, expire: @escaping @Sendable () -> Void) -> UInt64 {
        let (id, startSweep) = state.withLock { s -> (UInt64, Bool) in
            s.nextID += 1
            s.reads[s.nextID] = Read(deadline: .now() + timeout, expire: expire)
            defer { s.sweeping = true }
            return (s.nextID, !s.sweeping)
        }
        if startSweep { scheduleSweep() }
        return id
    }

    func finished(_ id: UInt64) {
        _ = state.withLock { $0.reads.removeValue(forKey: id) }
    }

    /// Reads registered now (tests).
    var registered: Int { state.withLock { $0.reads.count } }

    private func scheduleSweep() {
        MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: Self.sweepInterval) { [self] in sweep() }
    }

    private func sweep() {
        let now = NIODeadline.now()
        let (late, again) = state.withLock { s -> ([Read], Bool) in
            var late: [Read] = []
            for (id, read) in s.reads where read.deadline <= now {
                late.append(read)
                s.reads.removeValue(forKey: id)
            }
            s.sweeping = !s.reads.isEmpty
            return (late, s.sweeping)
        }
        for read in late { read.expire() }
        if again { scheduleSweep() }
    }
}
