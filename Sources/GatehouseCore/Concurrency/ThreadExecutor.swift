import Glibc

/// A task executor on one thread of its own, for work that blocks by design: the queue's group
/// committer runs its SQLite transaction (and its fsync) synchronously there, where GRDB's
/// asynchronous write would hand the task to GRDB's writer thread and back to the cooperative
/// pool, two thread switches per commit on the path of every reply. Jobs run one at a time, in
/// the order they were enqueued. The thread is started by the first job and lives as long as the
/// process, so executors are made once (`committer`), not per use.
public final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    /// The executor the queue's group committers run on (one thread for every queue of the process).
    public static let committer = ThreadExecutor()

    // Guarded by `mutex`.
    private var jobs: [UnownedJob] = []
    private var waiting = false
    private var started = false

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        pthread_mutex_lock(mutex)
        jobs.append(job)
        if !started {
            started = true
            if !startThread() {
                // No thread to be had (a process at its thread limit): the job runs on the global pool instead.
                started = false
                jobs.removeLast()
                pthread_mutex_unlock(mutex)
                job.runSynchronously(on: globalConcurrentExecutor.asUnownedTaskExecutor())
                return
            }
        } else if waiting {
            pthread_cond_signal(condition)
        }
        pthread_mutex_unlock(mutex)
    }

    /// Called with the lock held; the thread takes the lock once it runs.
    private func startThread() -> Bool {
        startDetachedThread { [self] in run() }
    }

    private func run() {
        let executor = asUnownedTaskExecutor()
        var batch: [UnownedJob] = []
        while true {
            pthread_mutex_lock(mutex)
            while jobs.isEmpty {
                waiting = true
                pthread_cond_wait(condition, mutex)
                waiting = false
            }
            swap(&batch, &jobs)
            pthread_mutex_unlock(mutex)
            for job in batch { job.runSynchronously(on: executor) }
            batch.removeAll(keepingCapacity: true)
        }
    }
}
