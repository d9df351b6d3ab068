import GatehouseCore
import Glibc
import Synchronization
import Testing

/// The committer's executor: tasks that prefer it run on its one thread, one job at a time (on
/// the cooperative pool, which has a thread per core, the probe would see two).
@Suite("Thread executor")
struct ThreadExecutorTests {
    /// What the jobs saw: their threads, and how many ran at once at most.
    final class Probe: Sendable {
        private struct State {
            var threads: Set<UInt> = []
            var running = 0
            var mostAtOnce = 0
        }
        private let state = Mutex(State())

        func enter() {
            state.withLock {
                $0.threads.insert(UInt(pthread_self()))
                $0.running += 1
                $0.mostAtOnce = max($0.mostAtOnce, $0.running)
            }
            // Long enough for another thread to enter meanwhile, if the executor allowed it.
            usleep(200)
            state.withLock { $0.running -= 1 }
        }

        var threads: Int { state.withLock { $0.threads.count } }
        var mostAtOnce: Int { state.withLock { $0.mostAtOnce } }
    }

    @Test("tasks that prefer the executor run on its one thread, one job at a time")
    func oneThreadOneJobAtATime() async {
        let executor = ThreadExecutor()
        let probe = Probe()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask(executorPreference: executor) {
                    for _ in 0..<20 {
                        probe.enter()
                        await Task.yield()
                    }
                }
            }
        }
        #expect(probe.threads == 1)
        #expect(probe.mostAtOnce == 1)
    }
}
