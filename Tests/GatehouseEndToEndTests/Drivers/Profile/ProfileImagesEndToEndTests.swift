import Crypto
import Foundation
import GatehouseSimulation
import GatehouseTesting
import Testing

/// Item 6 of the profiles issue: pictures are counted by default; stored on disk, content
/// addressed, only when the site asks for it.
@Suite("Profile images end to end", .serialized)
struct ProfileImagesEndToEndTests {
    static func hikvision(_ base: String, imageBytes: Int = 50_000) -> (VendorCamera, (body: [UInt8], contentType: String)) {
        let camera = VendorCamera(brand: .hikvision, serial: "44:19:b6:10:22:7e", baseURL: base)
        return (camera, camera.payload(plate: "川F20000", record: 7, at: Date(), imageBytes: imageBytes))
    }

    /// The JPEG part of a simulated Hikvision payload (between its part headers and the closing boundary).
    static func jpeg(in body: [UInt8]) throws -> [UInt8] {
        let start = try #require(body.indices.first { body[$0] == 0xFF && body[$0 + 1] == 0xD8 })
        let end = try #require(body.indices.last { $0 > start && body[$0 - 1] == 0xFF && body[$0] == 0xD9 })
        return Array(body[start...end])
    }

    static func stored(_ site: ProfileSite) -> Data {
        var stored = Data()
        for suffix in ["", "-wal", "-shm"] { stored += FileManager.default.contents(atPath: site.queueFile + suffix) ?? Data() }
        return stored
    }

    @Test("by default: the event counts the images; no file is written and no image bytes reach the queue")
    func countedNotStored() async throws {
        let site = ProfileSite()
        defer { site.remove() }
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: try site.write())
        defer { if daemon.process.isRunning { daemon.process.terminate() } }
        let (camera, payload) = Self.hikvision("http://127.0.0.1:\(ingest)")
        let exchange = await camera.post(payload)
        #expect(exchange.status == 200)
        let events = try await site.forwarded(atLeast: 1)
        #expect((events.first?["attributes"] as? [String: Any])?["images"] as? Int == 1)
        #expect(try await daemon.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: site.directory + "/state/images"))
        let jpeg = try Self.jpeg(in: payload.body)
        let stored = Self.stored(site)
        #expect(!stored.isEmpty)
        #expect(stored.range(of: Data(jpeg[1000..<1064])) == nil, "image bytes in the queue database")
    }

    @Test("images.store: written once by sha256 and fsynced; the event carries {sha256, size, contentType}")
    func storedByHash() async throws {
        var site = ProfileSite()
        site.maxBody = "1MiB"
        site.extra = """
            images:
              store: true
            """
        defer { site.remove() }
        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: try site.write())
        defer { if daemon.process.isRunning { daemon.process.terminate() } }
        let (camera, payload) = Self.hikvision("http://127.0.0.1:\(ingest)")
        #expect(await camera.post(payload).status == 200)
        // The camera's retry: the same picture is not written twice.
        #expect(await camera.post(payload).status == 200)
        let events = try await site.forwarded(atLeast: 1)
        #expect(try await daemon.stop() == 0)

        let jpeg = try Self.jpeg(in: payload.body)
        let sha = SHA256.hash(data: jpeg).map { String(format: "%02x", $0) }.joined()
        let references = try #require((events.first?["attributes"] as? [String: Any])?["images"] as? [[String: Any]], "\(events)")
        #expect(references.count == 1)
        #expect(references.first?["sha256"] as? String == sha)
        #expect(references.first?["size"] as? Int == jpeg.count)
        #expect(references.first?["contentType"] as? String == "image/jpeg")
        let directory = site.directory + "/state/images"
        let file = "\(directory)/\(sha.prefix(2))/\(sha)"
        #expect(FileManager.default.contents(atPath: file) == Data(jpeg))
        let files = FileManager.default.enumerator(atPath: directory)?.allObjects.compactMap { $0 as? String }.filter { $0.count > 3 } ?? []
        #expect(files == ["\(sha.prefix(2))/\(sha)"], "one file, no temporaries: \(files)")
        #expect(Self.stored(site).range(of: Data(jpeg[1000..<1064])) == nil, "image bytes in the queue database")
    }
}
