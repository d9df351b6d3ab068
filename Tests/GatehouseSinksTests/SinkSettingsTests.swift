import Foundation
import GatehouseCore
import GatehouseSinks
import GatehouseTesting
import Testing

/// Reload compares sink configs: equal settings keep a sink running, any difference restarts it.
@Suite struct SinkSettingsTests {
    @Test func configsDifferWhenTheirOwnSettingsOrTypeDiffer() {
        let outbox = SinkConfig(name: "outbox", settings: FileSinkConfig(path: "/tmp/a.ndjson"))
        #expect(outbox == SinkConfig(name: "outbox", settings: FileSinkConfig(path: "/tmp/a.ndjson")))
        #expect(outbox != SinkConfig(name: "outbox", settings: FileSinkConfig(path: "/tmp/a.ndjson", keepFiles: 3)))
        #expect(outbox != SinkConfig(name: "outbox", batchMaxEvents: 7, settings: FileSinkConfig(path: "/tmp/a.ndjson")))
        #expect(outbox != SinkConfig(name: "outbox", settings: HTTPSinkConfig(url: "http://127.0.0.1:1/")))
        #expect(outbox.typeName == "file")
    }

    /// A sink folder without its registry line would be dead code that no config can select.
    @Test func everySinkFolderHasOneRegistryLineAndNamesAreUnique() {
        let names = SinkRegistry.all.map(\.name)
        #expect(Set(names).count == names.count, "\(names)")
        let sinks = repositoryRoot.appendingPathComponent("Sources/GatehouseSinks/Sinks").path
        let folders = ((try? FileManager.default.contentsOfDirectory(atPath: sinks)) ?? []).map { $0.lowercased() }
        #expect(folders.count >= 2, "no sink folders under \(sinks)")
        #expect(folders.sorted() == names.sorted(), "folders \(folders) vs registered \(names)")
    }
}
