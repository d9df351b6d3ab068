import Foundation
import GatehouseCore
import GatehouseQueue
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Appends each batch as NDJSON to a local file, fsynced before the batch counts as delivered,
/// and rotates the file by size (`path` → `path.1` → … → `path.<keepFiles>`).
public final class FileSink: RegisteredSink {
    public let name: String
    private let config: FileSinkConfig
    private let logger: Logger
    /// write and fsync block for milliseconds on a slow card; keep them off the cooperative pool.
    private let io: DispatchQueue
    private let file = Mutex<OpenFile?>(nil)

    private struct OpenFile {
        var descriptor: Int32
        var size: Int64
    }

    /// Does no I/O: the directory and file are created by the first `send`.
    public init(name: String, config: FileSinkConfig, logger: Logger) {
        self.name = name
        self.config = config
        var logger = logger
        logger[metadataKey: "sink.name"] = "\(name)"
        self.logger = logger
        self.io = DispatchQueue(label: "gatehouse.sink.file.\(name)")
    }

    public func send(_ batch: SinkBatch) async -> DeliveryResult {
        await withCheckedContinuation { continuation in
            io.async {
                continuation.resume(returning: self.file.withLock { self.append(batch.events, to: &$0) })
            }
        }
    }

    public func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            io.async {
                self.file.withLock { state in
                    if let descriptor = state?.descriptor { close(descriptor) }
                    state = nil
                }
                continuation.resume()
            }
        }
    }

    // MARK: - On the I/O queue

    private func append(_ events: [StoredEvent], to state: inout OpenFile?) -> DeliveryResult {
        do {
            var current = try state ?? openFile()
            state = current
            var chunk: [UInt8] = []
            for event in events {
                let line = event.body.count + 1
                let projected = current.size + Int64(chunk.count)
                // Rotate between events, never inside one, so every file holds whole lines.
                if config.rotateBytes > 0, projected > 0, projected + Int64(line) > config.rotateBytes {
                    try writeAll(&chunk, to: &current)
                    try fsyncOrThrow(current.descriptor, what: config.path)
                    state = nil
                    current = try rotate(closing: current)
                    state = current
                }
                chunk.append(contentsOf: event.body)
                chunk.append(0x0A)
            }
            try writeAll(&chunk, to: &current)
            // The runner advances the cursor when this returns .delivered: the bytes must be on disk.
            try fsyncOrThrow(current.descriptor, what: config.path)
            state = current
            return .delivered
        } catch {
            // Start from a freshly opened file next time; a partly written batch is written again
            // whole (at least once: readers drop repeated event ids).
            if let descriptor = state?.descriptor { close(descriptor) }
            state = nil
            logger.debug("file sink \(name): \(error)")
            return .retryable(after: nil, reason: "\(error)")
        }
    }

    private func openFile() throws -> OpenFile {
        let directory = (config.path as NSString).deletingLastPathComponent
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw FileSinkError("cannot create directory \(directory): \(error.localizedDescription)")
            }
        }
        let descriptor = open(config.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw FileSinkError.posix("open", config.path) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let error = FileSinkError.posix("fstat", config.path)
            close(descriptor)
            throw error
        }
        // A new directory entry is durable only once its directory is synced.
        syncDirectory()
        return OpenFile(descriptor: descriptor, size: Int64(info.st_size))
    }

    private func rotate(closing current: OpenFile) throws -> OpenFile {
        close(current.descriptor)
        let keep = max(0, config.keepFiles)
        if keep == 0 {
            try removeIfPresent(config.path)
        } else {
            try removeIfPresent("\(config.path).\(keep)")
            for index in stride(from: keep - 1, through: 1, by: -1) {
                try renameIfPresent("\(config.path).\(index)", to: "\(config.path).\(index + 1)")
            }
            try renameIfPresent(config.path, to: "\(config.path).1")
        }
        logger.info("file sink \(name): rotated \(config.path)")
        return try openFile()
    }

    private func writeAll(_ bytes: inout [UInt8], to file: inout OpenFile) throws {
        var offset = 0
        try bytes.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            while offset < buffer.count {
                let written = write(file.descriptor, base + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw FileSinkError.posix("write", config.path)
                }
                offset += written
                file.size += Int64(written)
            }
        }
        bytes.removeAll(keepingCapacity: true)
    }

    private func fsyncOrThrow(_ descriptor: Int32, what path: String) throws {
        guard fsync(descriptor) == 0 else { throw FileSinkError.posix("fsync", path) }
    }

    private func syncDirectory() {
        let directory = (config.path as NSString).deletingLastPathComponent
        let descriptor = open(directory.isEmpty ? "." : directory, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        close(descriptor)
    }

    private func removeIfPresent(_ path: String) throws {
        if unlink(path) != 0, errno != ENOENT { throw FileSinkError.posix("unlink", path) }
    }

    private func renameIfPresent(_ from: String, to: String) throws {
        if rename(from, to) != 0, errno != ENOENT { throw FileSinkError.posix("rename to \(to)", from) }
    }
}

extension FileSink {
    package static func readSettings(_ map: YAMLMapping, environment: [String: String]) -> FileSinkConfig? {
        FileSinkConfig.read(map, environment: environment)
    }
}
