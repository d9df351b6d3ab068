import GatehouseQueue
import ServiceLifecycle

/// Runs the queue's group committer. Listed first in the service group, so it stops last:
/// by then ingest has stopped and every in-flight commit has been answered.
struct QueueService: Service {
    let queue: EventQueue

    func run() async throws {
        await withGracefulShutdownHandler {
            await queue.run()
        } onGracefulShutdown: {
            queue.close()
        }
    }
}
