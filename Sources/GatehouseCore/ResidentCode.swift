#if canImport(Glibc)
import Glibc
#endif

/// Gives back the pages of code and read-only data the daemon touched once and no longer runs:
/// start-up code (config reading, migrations, every module's initialisation) and, every 15 s,
/// whatever was not needed since the last time. Most of an idle daemon's resident memory is such
/// pages (the binary's `.text` is over 20 MB), and the kernel maps each touched page's 64 KB
/// neighbourhood with it (fault-around; `MADV_RANDOM` does not stop that, measured on 6.18).
///
/// `MADV_DONTNEED` on a private file mapping only unmaps its pages from this process; the file's
/// pages stay in the page cache, so code still in use comes back with a minor fault (no disk
/// read) the next time it runs. Only mappings with no private copies (`Anonymous: 0` in smaps)
/// are advised: a relocated read-only page (RELRO) or a breakpoint is a private copy that the
/// advice would throw away, so a mapping holding any (resident or swapped out) is left alone.
/// Only the executable's and shared libraries' mappings are advised: the loader maps them and
/// only `dlclose` (which the daemon never calls) unmaps them, so none can be replaced by other
/// memory between reading smaps and the advice, as a file mapped for reading and then unmapped could.
public enum ResidentCode {
    /// What one release did, from `/proc/self/smaps` before and just after the advice.
    public struct Release: Sendable, Equatable, CustomStringConvertible {
        /// File-backed, read-only, private mappings without private copies that were advised.
        public var mappings: Int
        /// Their resident bytes before and right after the advice (code running meanwhile on
        /// other threads may already have faulted some back).
        public var residentBeforeBytes: Int
        public var residentAfterBytes: Int

        public var releasedBytes: Int { max(0, residentBeforeBytes - residentAfterBytes) }

        public var description: String {
            // One decimal of MiB without Foundation's formatters.
            let mib = { (bytes: Int) in "\(bytes * 10 / 1_048_576 / 10).\(bytes * 10 / 1_048_576 % 10)" }
            return "code pages released: \(mappings) mappings, resident \(mib(residentBeforeBytes)) → \(mib(residentAfterBytes)) MiB"
        }
    }

    /// Advises every eligible mapping of this process; nil where `/proc/self/smaps` cannot be read.
    @discardableResult
    public static func release() -> Release? {
        #if canImport(Glibc)
        guard let before = FileMapping.current() else { return nil }
        let executable = FileMapping.executablePath()
        var advised: [FileMapping] = []
        for mapping in before where mapping.holdsOnlyFilePages && mapping.isLoadedCode(executable: executable) {
            guard let start = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
            if madvise(start, Int(mapping.end - mapping.start), MADV_DONTNEED) == 0 { advised.append(mapping) }
        }
        let after = Dictionary((FileMapping.current() ?? []).map { ($0.start, $0.residentBytes) }, uniquingKeysWith: { first, _ in first })
        return Release(
            mappings: advised.count,
            residentBeforeBytes: advised.reduce(0) { $0 + $1.residentBytes },
            residentAfterBytes: advised.reduce(0) { $0 + (after[$1.start] ?? 0) })
        #else
        return nil
        #endif
    }
}

/// One mapping of `/proc/self/smaps` with the figures the release needs.
struct FileMapping: Equatable {
    var start: UInt
    var end: UInt
    var permissions: String
    var path: String
    var residentBytes = 0
    var anonymousBytes = 0
    /// Private copies swapped out are not counted as `Anonymous` but are just as much lost by the advice.
    var swappedBytes = 0

    /// Readable, not writable, private, backed by a regular file, and every resident page is the
    /// file's own page: dropping them loses nothing the file cannot give back.
    var holdsOnlyFilePages: Bool {
        let flags = Array(permissions)
        return flags.count == 4 && flags[0] == "r" && flags[1] == "-" && flags[3] == "p"
            && path.hasPrefix("/") && !path.hasPrefix("/dev/") && anonymousBytes == 0 && swappedBytes == 0 && residentBytes > 0
    }

    /// The executable or a shared library (`name.so`, `name.so.1.2`), as the loader mapped them.
    func isLoadedCode(executable: String?) -> Bool {
        if let executable, path == executable { return true }
        let name = path.split(separator: "/").last ?? ""
        return name.hasSuffix(".so") || name.contains(".so.")
    }

    /// `/proc/self/exe`'s target, written as smaps writes the executable's path.
    static func executablePath() -> String? {
        #if canImport(Glibc)
        var buffer = [CChar](repeating: 0, count: 4097)
        let length = readlink("/proc/self/exe", &buffer, 4096)
        guard length > 0 else { return nil }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #else
        return nil
        #endif
    }

    /// The mappings of this process, or nil if smaps cannot be read.
    static func current() -> [FileMapping]? {
        #if canImport(Glibc)
        guard let file = fopen("/proc/self/smaps", "r") else { return nil }
        defer { fclose(file) }
        var lines: [String] = []
        var buffer: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(buffer) }
        while getline(&buffer, &capacity, file) > 0, let buffer {
            lines.append(String(cString: buffer))
        }
        return parse(lines)
        #else
        return nil
        #endif
    }

    /// Parses smaps text: a header line per mapping (`start-end perms offset dev inode [path]`)
    /// followed by `Key:   value kB` lines.
    static func parse<Lines: Sequence<String>>(_ lines: Lines) -> [FileMapping] {
        var mappings: [FileMapping] = []
        for line in lines {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.hasSuffix(":") {
                guard !mappings.isEmpty, fields.count >= 2, let kilobytes = Int(fields[1]) else { continue }
                switch first {
                case "Rss:": mappings[mappings.count - 1].residentBytes = kilobytes * 1024
                case "Anonymous:": mappings[mappings.count - 1].anonymousBytes = kilobytes * 1024
                case "Swap:": mappings[mappings.count - 1].swappedBytes = kilobytes * 1024
                default: break
                }
                continue
            }
            let bounds = first.split(separator: "-")
            guard fields.count >= 5, bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16) else {
                continue
            }
            // The path may contain spaces; it is everything after the inode field.
            let path = fields.count > 5 ? fields[5...].joined(separator: " ").trimmingTrailingNewline() : ""
            mappings.append(FileMapping(start: start, end: end, permissions: String(fields[1]), path: path))
        }
        return mappings
    }
}

extension String {
    fileprivate func trimmingTrailingNewline() -> String {
        var text = self
        while text.last == "\n" { text.removeLast() }
        return text
    }
}
