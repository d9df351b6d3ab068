import Foundation
import Testing

@testable import GatehouseCore

@Suite("durable file")
struct DurableFileTests {
    @Test("replace puts the whole new text in place with the mode asked for and leaves no temporary file")
    func replaces() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-durable-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/gatehouse.yaml"
        try DurableFile.replace(path, with: Array("site: old\n".utf8))
        try DurableFile.replace(path, with: Array("site: new\n".utf8), permissions: 0o600)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "site: new\n")
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["gatehouse.yaml"])
    }

    @Test("a folder that is not there is an error naming the path, and nothing is left behind")
    func missingFolder() throws {
        let path = "/nonexistent-\(UUID().uuidString.prefix(8))/gatehouse.yaml"
        let error = #expect(throws: DurableDirectory.Failure.self) { try DurableFile.replace(path, with: Array("x".utf8)) }
        #expect(error?.description.contains(path) == true && error?.description.contains("No such file") == true, "\(error?.description ?? "")")
    }
}
