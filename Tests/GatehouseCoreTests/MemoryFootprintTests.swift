import Testing
import Yams

#if canImport(Glibc)
import Glibc
#endif

@testable import GatehouseCore

@Suite("Memory footprint: YAML without regex tag resolution, malloc settings")
struct MemoryFootprintTests {
    @Test("config YAML is read without resolving tags, and scalars still read as the readers expect")
    func yamlWithoutResolver() throws {
        let text = """
            on: yes
            off: OFF
            hex: 0x1F
            grouped: 1_000
            ratio: 2.5
            tilde: ~
            quoted_null: 'null'
            zone: "+08:00"
            date: 2026-12-01
            """
        let root = try #require(try YAMLDocument.compose(text))
        let map = try #require(root.mapping)
        func node(_ key: String) throws -> Node { try #require(map.first { $0.key.string == key }?.value) }
        #expect(try node("on").bool == true)
        #expect(try node("off").bool == false)
        #expect(try node("hex").int == 31)
        #expect(try node("grouped").int == 1000)
        #expect(try node("ratio").float == 2.5)
        #expect(try node("tilde").null != nil)
        #expect(try node("quoted_null").null == nil)
        #expect(try node("quoted_null").string == "null")
        #expect(try node("zone").string == "+08:00")
        #expect(try node("date").string == "2026-12-01")
        // No resolver ran: a plain `123` keeps the plain string tag instead of `int`, which would
        // have taken Yams' default resolver and its ICU regular expressions.
        #expect(try #require(try YAMLDocument.compose("123")).tag.description == "tag:yaml.org,2002:str")
    }

    @Test("a YAML syntax error is still reported with its line")
    func yamlSyntaxError() throws {
        #expect {
            _ = try YAMLDocument.compose("site: a\n  - b\nc: [\n")
        } throws: { error in
            // The flow sequence opened on line 3 is still open at the end of the text, line 4.
            guard let error = error as? YamlError else { return false }
            return "\(error)".hasPrefix("4:1:")
        }
    }

    #if canImport(Glibc)
    /// Runs in a child process of its own: in this one, other tests' threads free big buffers into
    /// the heap, and glibc serves a request from a free chunk of the heap before it considers the
    /// mapping threshold, so a mapped buffer could not be expected here.
    @Test("after the malloc settings, a batch-sized buffer is mapped on its own and one between glibc's default threshold and ours is not")
    func largeBuffersAreMapped() async {
        await #expect(processExitsWith: .success) {
            func isMapped(_ size: Int) -> Bool {
                guard let buffer = malloc(size) else { exit(3) }
                // glibc's chunk header, just before the pointer, has bit 1 (IS_MMAPPED) set for
                // chunks that are their own mapping (malloc.c, "chunk representations").
                let mapped = UnsafeRawPointer(buffer).load(fromByteOffset: -MemoryLayout<Int>.size, as: Int.self) & 2 == 2
                free(buffer)
                return mapped
            }
            guard AllocatorTuning.apply() else { exit(2) }
            // glibc's own threshold is 128 KiB: 192 KiB would be mapped under the defaults.
            guard isMapped(8 * Int(AllocatorTuning.mapThresholdBytes)) else { exit(4) }
            guard !isMapped(192 * 1024) else { exit(5) }
            exit(0)
        }
    }
    #endif

    @Test("releaseFreeMemory gives free pages in the middle of the heap back: resident before, mostly not after")
    func trimReleasesFreePages() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        // 8 MiB in 2 KiB blocks (below the mapping threshold, so from the heap), each written so its
        // pages are resident, then one block above them so freeing them cannot shrink the heap's top.
        let blocks = (0..<4096).compactMap { _ in malloc(2048) }
        try #require(blocks.count == 4096)
        for block in blocks { memset(block, 0x5A, 2048) }
        let pin = try #require(malloc(2048))
        defer { free(pin) }
        // The pages the blocks lie on: once freed they coalesce, and all but the free chunk's first
        // page (its header) can be given back.
        let pages = Set(blocks.map { Int(bitPattern: $0) / page * page })
        for block in blocks { free(block) }
        func resident(_ pages: Set<Int>) -> Int {
            var vector: UInt8 = 0
            return pages.filter { start in
                mincore(UnsafeMutableRawPointer(bitPattern: start), page, &vector) == 0 && vector & 1 == 1
            }.count
        }
        let candidates = pages.filter { resident([$0]) == 1 }
        try #require(candidates.count >= 1000, "\(candidates.count) resident free pages to start with")
        #expect(AllocatorTuning.releaseFreeMemory())
        // Other tests' threads may take some of the freed blocks again; most pages must have gone.
        #expect(resident(candidates) < candidates.count / 2, "\(resident(candidates)) of \(candidates.count) still resident")
    }
}
