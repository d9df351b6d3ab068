import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import GatehouseCore

@Suite("Resident code: unused code and read-only pages given back")
struct ResidentCodeTests {
    @Test("smaps headers and the two figures the release needs are read, paths with spaces included")
    func parsesSmaps() {
        let text = """
            55d0c0000000-55d0c1000000 r-xp 00001000 fd:01 1234                       /usr/bin/gate house
            Size:              16384 kB
            Rss:                2048 kB
            Anonymous:             0 kB
            VmFlags: rd ex mr mw me
            55d0c2000000-55d0c2001000 r--p 00002000 fd:01 1234                       /usr/bin/gate house
            Rss:                   4 kB
            Anonymous:             4 kB
            55d0c3000000-55d0c3001000 r--p 00003000 fd:01 1234                       /usr/bin/gate house
            Rss:                   4 kB
            Anonymous:             0 kB
            Swap:                  4 kB
            7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]
            Rss:                  12 kB
            Anonymous:            12 kB
            """
        let mappings = FileMapping.parse(text.split(separator: "\n").map(String.init))
        #expect(mappings.count == 4)
        #expect(mappings[0] == FileMapping(start: 0x55d0_c000_0000, end: 0x55d0_c100_0000, permissions: "r-xp", path: "/usr/bin/gate house", residentBytes: 2048 * 1024))
        #expect(mappings[0].holdsOnlyFilePages)
        // A relocated read-only page is a private copy: never advised.
        #expect(!mappings[1].holdsOnlyFilePages)
        // A private copy swapped out is not `Anonymous` but just as much not the file's page.
        #expect(mappings[2].swappedBytes == 4096)
        #expect(!mappings[2].holdsOnlyFilePages)
        #expect(!mappings[3].holdsOnlyFilePages)
        // Only the executable and shared libraries are candidates.
        #expect(mappings[0].isLoadedCode(executable: "/usr/bin/gate house"))
        #expect(!mappings[0].isLoadedCode(executable: "/usr/bin/gatehouse"))
        #expect(FileMapping(start: 0, end: 1, permissions: "r-xp", path: "/usr/lib/libswiftCore.so").isLoadedCode(executable: nil))
        #expect(FileMapping(start: 0, end: 1, permissions: "r--p", path: "/usr/lib/libicudata.so.72.1").isLoadedCode(executable: nil))
        #expect(!FileMapping(start: 0, end: 1, permissions: "r--p", path: "/etc/gatehouse/site.yaml").isLoadedCode(executable: nil))
        #expect(FileMapping.executablePath()?.hasPrefix("/") == true)
    }

    #if canImport(Glibc)
    @Test("a shared library's read-only mapping is unmapped from the process and read back intact from the file")
    func releasesFilePages() throws {
        // Named and mapped as the loader maps a library's read-only segment.
        let file = try TemporaryFile(pages: 256, suffix: ".so")
        defer { file.remove() }
        let region = try file.map(protection: PROT_READ)
        defer { munmap(region, file.length) }
        let bytes = region.assumingMemoryBound(to: UInt8.self)
        var sum = 0
        for page in 0..<file.pages { sum &+= Int(bytes[page * file.pageSize]) }
        #expect(try presentPages(region, count: file.pages) == file.pages, "touched \(sum)")

        let release = try #require(ResidentCode.release())
        #expect(release.mappings >= 1)
        #expect(release.releasedBytes >= file.length)
        #expect(try presentPages(region, count: file.pages) == 0)
        // The page cache still has them: reading faults them back with the file's contents.
        for page in 0..<file.pages { #expect(bytes[page * file.pageSize] == UInt8(page % 251)) }
    }

    @Test("a file that is not a library, mapped for reading, is left alone: it could be unmapped and its range reused meanwhile")
    func keepsOtherFiles() throws {
        let file = try TemporaryFile(pages: 16, suffix: ".yaml")
        defer { file.remove() }
        let region = try file.map(protection: PROT_READ)
        defer { munmap(region, file.length) }
        var sum = 0
        for page in 0..<file.pages { sum &+= Int(region.load(fromByteOffset: page * file.pageSize, as: UInt8.self)) }
        ResidentCode.release()
        #expect(try presentPages(region, count: file.pages) == file.pages, "touched \(sum)")
    }

    @Test("a private copy in a read-only mapping (as relocations leave them) is left alone")
    func keepsPrivateCopies() throws {
        let file = try TemporaryFile(pages: 16, suffix: ".so")
        defer { file.remove() }
        let region = try file.map(protection: PROT_READ | PROT_WRITE)
        defer { munmap(region, file.length) }
        // Written once, then read-only: the dynamic loader does the same to RELRO data.
        region.storeBytes(of: 0xEE, toByteOffset: 3 * file.pageSize, as: UInt8.self)
        #expect(mprotect(region, file.length, PROT_READ) == 0)

        ResidentCode.release()
        #expect(region.load(fromByteOffset: 3 * file.pageSize, as: UInt8.self) == 0xEE)
        #expect(try presentPages(region, count: file.pages) >= 1)
    }

    /// Pages of `region` mapped in this process (`/proc/self/pagemap` bit 63), unlike `mincore`,
    /// which answers whether the page cache holds them.
    private func presentPages(_ region: UnsafeMutableRawPointer, count: Int) throws -> Int {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let descriptor = open("/proc/self/pagemap", O_RDONLY)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        var entries = [UInt64](repeating: 0, count: count)
        let offset = off_t(Int(bitPattern: region) / pageSize * 8)
        let read = entries.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, offset) }
        try #require(read == count * 8)
        return entries.filter { $0 & (1 << 63) != 0 }.count
    }
    #endif
}

#if canImport(Glibc)
/// A file of `pages` pages, page *i* filled with `i % 251`, mapped privately by the tests.
private struct TemporaryFile {
    let path: String
    let pages: Int
    let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    var length: Int { pages * pageSize }

    init(pages: Int, suffix: String) throws {
        self.pages = pages
        path = FileManager.default.temporaryDirectory.appendingPathComponent("resident-code-\(UUID().uuidString)\(suffix)").path
        var data = Data(capacity: pages * pageSize)
        for page in 0..<pages { data.append(Data(repeating: UInt8(page % 251), count: pageSize)) }
        try data.write(to: URL(fileURLWithPath: path))
    }

    func map(protection: Int32) throws -> UnsafeMutableRawPointer {
        let descriptor = open(path, O_RDONLY)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        let region = mmap(nil, length, protection, MAP_PRIVATE, descriptor, 0)
        return try #require(region == UnsafeMutableRawPointer(bitPattern: -1) ? nil : region)
    }

    func remove() { unlink(path) }
}
#endif
