import Crypto
import Foundation
import GatehouseCore
import GatehouseProfiles
import Synchronization

/// Pictures kept on disk when the site sets `images.store: true`: each written once under
/// `<directory>/<first 2 hex>/<sha256>`, fsynced before the event that names it is committed,
/// within `images.max_bytes` (its own budget, beside the queue's `disk_budget_bytes`).
final class ImageStore: Sendable {
    struct Reference: Sendable, Equatable {
        var sha256: String
        var size: Int
        var contentType: String

        var json: JSONValue {
            .object(["sha256": .string(sha256), "size": .number(Double(size)), "contentType": .string(contentType)])
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Bytes stored per directory, counted once from the disk and then kept up to date.
    private let used = Mutex<[String: Int64]>([:])

    /// Stores the parts (each once) and returns their references, in order.
    func store(_ parts: [ImagePart], settings: ImageSettings) throws(Failure) -> [Reference] {
        var references: [Reference] = []
        for part in parts {
            let sha = SHA256.hash(data: part.body).map { String(format: "%02x", $0) }.joined()
            let folder = (settings.directory as NSString).appendingPathComponent(String(sha.prefix(2)))
            let path = (folder as NSString).appendingPathComponent(sha)
            let reference = Reference(sha256: sha, size: part.body.count, contentType: part.contentType)
            if FileManager.default.fileExists(atPath: path) {
                references.append(reference)
                continue
            }
            try reserve(Int64(part.body.count), settings: settings)
            do {
                try Self.writeDurably(part.body, to: path, folder: folder)
            } catch {
                used.withLock { $0[settings.directory, default: 0] -= Int64(part.body.count) }
                throw error
            }
            references.append(reference)
        }
        return references
    }

    private func reserve(_ size: Int64, settings: ImageSettings) throws(Failure) {
        let current = used.withLock { $0[settings.directory] } ?? Self.measure(settings.directory)
        let ok = used.withLock { table -> Bool in
            let now = table[settings.directory] ?? current
            guard now + size <= settings.maxBytes else {
                table[settings.directory] = now
                return false
            }
            table[settings.directory] = now + size
            return true
        }
        guard ok else {
            throw Failure(description: "image of \(size) bytes not stored: \(settings.directory) holds \(current) of images.max_bytes \(settings.maxBytes)")
        }
    }

    /// Deletes pictures written more than `settings.retentionDays` before `now` (file
    /// modification time); returns how many. Nothing happens without a retention.
    @discardableResult
    func sweep(settings: ImageSettings, now: Date) -> Int {
        guard let days = settings.retentionDays,
            let walker = FileManager.default.enumerator(atPath: settings.directory)
        else { return 0 }
        let cutoff = now.addingTimeInterval(-days * 86_400)
        var deleted = 0
        while let name = walker.nextObject() as? String {
            let path = (settings.directory as NSString).appendingPathComponent(name)
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                attributes[.type] as? FileAttributeType == .typeRegular,
                let modified = attributes[.modificationDate] as? Date, modified < cutoff
            else { continue }
            if (try? FileManager.default.removeItem(atPath: path)) != nil { deleted += 1 }
        }
        // Measured again from the disk on the next store.
        if deleted > 0 { _ = used.withLock { $0.removeValue(forKey: settings.directory) } }
        return deleted
    }

    static func measure(_ directory: String) -> Int64 {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return 0 }
        var total: Int64 = 0
        while let name = walker.nextObject() as? String {
            let attributes = try? FileManager.default.attributesOfItem(atPath: (directory as NSString).appendingPathComponent(name))
            if attributes?[.type] as? FileAttributeType == .typeRegular { total += (attributes?[.size] as? Int64) ?? 0 }
        }
        return total
    }

    /// Temporary file, fsync, rename, fsync of the folder: a crash leaves the whole picture or none.
    static func writeDurably(_ bytes: [UInt8], to path: String, folder: String) throws(Failure) {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw Failure(description: "cannot create \(folder): \(error.localizedDescription)")
        }
        do {
            try DurableFile.replace(path, with: bytes)
        } catch {
            throw Failure(description: error.description)
        }
    }
}
