import GatehouseCore

/// NDJSON files, rotated by size (`type: file`).
public struct FileSinkConfig: SinkSettings {
    public static let typeName = "file"

    public var path: String
    public var rotateBytes: Int64
    public var keepFiles: Int

    public init(path: String, rotateBytes: Int64 = 64 << 20, keepFiles: Int = 10) {
        self.path = path
        self.rotateBytes = rotateBytes
        self.keepFiles = keepFiles
    }

    /// Reads the keys of a `type: file` section; a relative path is resolved against the config file.
    static func read(_ map: YAMLMapping, environment: [String: String]) -> FileSinkConfig? {
        let path = map.filePath("path", required: true, expected: "a file path such as /var/lib/gatehouse/outbox/events.ndjson")
        let rotateBytes = map.bytes("rotate_bytes", default: 64 << 20, minimum: 4096)
        let keepFiles = map.int("keep_files", default: 10, range: 1...10_000)
        return path.map { FileSinkConfig(path: $0, rotateBytes: rotateBytes, keepFiles: keepFiles) }
    }
}
