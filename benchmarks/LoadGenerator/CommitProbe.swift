import Foundation
import GatehouseCore
import Synchronization

/// Times each event's arrival in a local file sink the daemon writes (`gatehouse-bench cameras
/// --commit-probe`): the file is read every millisecond as it grows, and each line is stamped
/// when it appeared. A sink only ever reads what was committed, and the line is visible after its
/// `write`, before the sink's own fsync, so the arrival is the commit plus the sink's wake-up,
/// read and write: an upper bound of the delay to commit, without the HTTP forward.
final class CommitProbe: Sendable {
    let path: String
    private let lines = Mutex<[(line: Data, at: Date)]>([])

    init(path: String) { self.path = path }

    /// The sink's config lines (under `sinks:`).
    var sinkConfig: [String] {
        [
            "  - name: commit-probe",
            "    type: file",
            "    path: \(path)",
            "    rotate_bytes: 4GiB",
            "    batch_max_events: 2000",
            "    backoff_max_seconds: 0.2",
        ]
    }

    /// Reads until cancelled.
    func run() async {
        var handle: FileHandle?
        var pending = Data()
        while !Task.isCancelled {
            if handle == nil { handle = FileHandle(forReadingAtPath: path) }
            if let data = try? handle?.readToEnd(), !data.isEmpty {
                let now = Date()
                pending.append(data)
                var complete: [(line: Data, at: Date)] = []
                while let newline = pending.firstIndex(of: 0x0A) {
                    complete.append((Data(pending[pending.startIndex..<newline]), now))
                    pending.removeSubrange(pending.startIndex...newline)
                }
                lines.withLock { $0 += complete }
            }
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    /// When each event (by id) first appeared.
    func arrivals() -> [String: Date] {
        let decoder = JSONDecoder()
        var first: [String: Date] = [:]
        for (line, at) in lines.withLock({ $0 }) {
            guard let event = try? decoder.decode(Event.self, from: line) else { continue }
            first[event.id.description] = first[event.id.description] ?? at
        }
        return first
    }
}
