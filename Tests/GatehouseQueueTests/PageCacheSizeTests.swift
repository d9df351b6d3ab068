import GRDB
import GatehouseTesting
import Testing

@testable import GatehouseQueue

@Suite("Queue page cache size")
struct PageCacheSizeTests {
    @Test("the writer and the readers run with the queue's page cache sizes, not SQLite's 2 MB default")
    func cacheSizes() async throws {
        let fixture = try QueueFixture()
        defer { fixture.remove() }
        let queue = fixture.queue
        let writer = try await queue.pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA cache_size") }
        #expect(writer == -EventQueue.writerCacheKiB)
        // Several reads at once, so that more than one reader connection is opened.
        let readers = try await withThrowingTaskGroup(of: Int?.self) { group in
            for _ in 0..<4 {
                group.addTask { try await queue.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA cache_size") } }
            }
            return try await group.reduce(into: [Int?]()) { $0.append($1) }
        }
        #expect(readers.allSatisfy { $0 == -EventQueue.readerCacheKiB }, "\(readers)")
        #expect(EventQueue.readerCacheKiB < EventQueue.writerCacheKiB && EventQueue.writerCacheKiB < 2000)
    }
}
