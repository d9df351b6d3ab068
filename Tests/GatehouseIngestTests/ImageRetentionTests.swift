import Foundation
import GatehouseCore
@testable import GatehouseProfiles
import Testing

@testable import GatehouseIngest

/// `privacy.images: keep N days`: the sweep deletes pictures older than the retention, judged
/// against the clock it is given (no waiting in the test).
@Suite("Image retention")
struct ImageRetentionTests {
    @Test("pictures older than the retention are deleted, newer ones kept; the budget is measured again")
    func sweep() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-images-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var settings = ImageSettings(store: true, directory: directory, maxBytes: 1 << 20, retentionDays: 7)
        let store = ImageStore()
        let old = try store.store([ImagePart(name: "a", contentType: "image/jpeg", body: [0xFF, 0xD8, 1, 0xFF, 0xD9])], settings: settings)
        let fresh = try store.store([ImagePart(name: "b", contentType: "image/jpeg", body: [0xFF, 0xD8, 2, 0xFF, 0xD9])], settings: settings)
        let path = { (reference: ImageStore.Reference) in "\(directory)/\(reference.sha256.prefix(2))/\(reference.sha256)" }
        let written = Date(timeIntervalSince1970: 1_750_000_000)
        try FileManager.default.setAttributes([.modificationDate: written], ofItemAtPath: path(old[0]))
        try FileManager.default.setAttributes([.modificationDate: written.addingTimeInterval(6 * 86_400)], ofItemAtPath: path(fresh[0]))

        // Seven days and one second after the first was written: only it is past the retention.
        #expect(store.sweep(settings: settings, now: written.addingTimeInterval(7 * 86_400 + 1)) == 1)
        #expect(!FileManager.default.fileExists(atPath: path(old[0])))
        #expect(FileManager.default.fileExists(atPath: path(fresh[0])))
        #expect(ImageStore.measure(directory) == 5)

        // Without a retention (images: keep) nothing is ever swept.
        settings.retentionDays = nil
        #expect(store.sweep(settings: settings, now: written.addingTimeInterval(3650 * 86_400)) == 0)
        #expect(FileManager.default.fileExists(atPath: path(fresh[0])))
    }
}
