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
    @Test("after the malloc settings, a batch-sized buffer is mapped on its own and goes back to the kernel when freed")
    func largeBuffersAreMapped() throws {
        #expect(AllocatorTuning.apply())
        let size = 4 * Int(AllocatorTuning.mapThresholdBytes)
        let buffer = try #require(malloc(size))
        defer { free(buffer) }
        // glibc's chunk header, just before the pointer, has bit 1 (IS_MMAPPED) set for chunks
        // that are their own mapping (malloc.c, "chunk representations").
        let header = UnsafeRawPointer(buffer).load(fromByteOffset: -MemoryLayout<Int>.size, as: Int.self)
        #expect(header & 2 == 2)
        // Below the threshold it comes from the heap as usual.
        let small = try #require(malloc(Int(AllocatorTuning.mapThresholdBytes) / 4))
        defer { free(small) }
        #expect(UnsafeRawPointer(small).load(fromByteOffset: -MemoryLayout<Int>.size, as: Int.self) & 2 == 0)
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
