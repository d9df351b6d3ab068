import Foundation
import GatehouseTesting
import Testing

@testable import GatehouseIngest

/// Adding a protocol touches one driver folder and one registry line; this keeps the three in step.
@Suite("driver registry")
struct DriverRegistryTests {
    static let root = repositoryRoot

    static var folders: [String] {
        let drivers = root.appendingPathComponent("Sources/GatehouseIngest/Drivers").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: drivers)) ?? []).sorted()
    }

    static func key(_ name: String) -> String { name.lowercased().filter { $0.isLetter || $0.isNumber } }

    @Test("every driver folder has a README naming its driver, a registry line and tests")
    func foldersAreComplete() throws {
        #expect(Self.folders.count >= 2, "no driver folders found under \(Self.root.path)")
        let registered = Set(DriverRegistry.names.map(Self.key))
        let testFiles = ["Tests/GatehouseIngestTests", "Tests/GatehouseEndToEndTests"].flatMap { folder -> [String] in
            let path = Self.root.appendingPathComponent(folder).path
            return (FileManager.default.enumerator(atPath: path)?.allObjects as? [String]) ?? []
        }.map(Self.key)
        for folder in Self.folders {
            let readme = Self.root.appendingPathComponent("Sources/GatehouseIngest/Drivers/\(folder)/README.md").path
            let text = (try? String(contentsOfFile: readme, encoding: .utf8)) ?? ""
            #expect(!text.isEmpty, "Drivers/\(folder) has no README.md")
            #expect(registered.contains(Self.key(folder)), "Drivers/\(folder) has no line in DriverRegistry.makers")
            #expect(testFiles.contains { $0.contains(Self.key(folder)) }, "Drivers/\(folder) has no tests named after it")
        }
    }

    @Test("each daemon run, config check and replay gets its own driver instances; the registry keeps none")
    func runsGetFreshInstances() {
        let first = DriverRegistry.makeAll()
        let second = DriverRegistry.makeAll()
        #expect(first.map(\.name) == second.map(\.name))
        #expect(Set(first.map(\.name)) == DriverRegistry.names)
        let profiles = [first, second].compactMap { set in set.lazy.compactMap { $0 as? ProfileDriver }.first }
        #expect(profiles.count == 2)
        #expect(Set(profiles.map(ObjectIdentifier.init)).count == 2, "loaded profiles must not leak from one run into another")
    }

    @Test("driver names are unique and every registered driver has a folder")
    func namesAreUnique() {
        let names = DriverRegistry.makeAll().map(\.name)
        #expect(Set(names).count == names.count, "\(names)")
        let folders = Set(Self.folders.map(Self.key))
        for name in names { #expect(folders.contains(Self.key(name)), "driver \(name) has no folder under Drivers/") }
    }
}
