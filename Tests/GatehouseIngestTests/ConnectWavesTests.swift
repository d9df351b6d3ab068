import GatehouseTesting
import Synchronization
import Testing

@testable import GatehouseIngest

/// `connect_concurrency`: never more devices connecting than the limit, the rest in arrival
/// order, a cancelled waiter leaving its place, and one wave-end report when the last one is done.
/// Devices "connect" until the test lets them through a `Gate`, so nothing depends on speed.
@Suite("connect waves")
struct ConnectWavesTests {
    @Test("with a limit of 2, 6 devices connect 2 at a time in arrival order; the wave ends once, when all are done")
    func boundedWaves() async throws {
        let seen = Connects()
        let connectWaves = ConnectWaves(limit: 2) { wave in seen.ended(wave) }
        let gates = (0..<6).map { _ in Gate() }
        let devices = Task {
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<6 {
                    // Each device asks only once the one before it waits or connects: the arrival order is known.
                    _ = await eventually { connectWaves.figures.connecting + connectWaves.figures.waiting == index }
                    group.addTask {
                        guard let slot = await connectWaves.enter() else { return }
                        seen.entered(index)
                        await gates[index].pass()
                        seen.left()
                        slot.end()
                    }
                }
            }
        }
        #expect(await eventually { seen.order == [0, 1] })
        #expect(await eventually { connectWaves.figures.waiting == 4 })
        // One finishes: exactly one more gets in, the next in line.
        gates[1].open()
        #expect(await eventually { seen.order == [0, 1, 2] })
        #expect(connectWaves.figures.connecting == 2 && connectWaves.figures.waiting == 3)
        #expect(seen.waves.isEmpty, "the wave ended while devices were still connecting")
        for gate in gates { gate.open() }
        await devices.value
        #expect(seen.order == [0, 1, 2, 3, 4, 5])
        #expect(seen.mostInside == 2)
        #expect(seen.waves == [ConnectWaves.Wave(connects: 6, mostAtOnce: 2)])
        #expect(connectWaves.figures.total == ConnectWaves.Wave(connects: 6, mostAtOnce: 2))
    }

    /// What the test's devices saw: who got in, in which order, how many at once, and the waves reported.
    final class Connects: Sendable {
        private let state = Mutex<(inside: Int, most: Int, order: [Int], waves: [ConnectWaves.Wave])>((0, 0, [], []))

        func entered(_ index: Int) {
            state.withLock {
                $0.inside += 1
                $0.most = max($0.most, $0.inside)
                $0.order.append(index)
            }
        }

        func left() { state.withLock { $0.inside -= 1 } }
        func ended(_ wave: ConnectWaves.Wave) { state.withLock { $0.waves.append(wave) } }
        var order: [Int] { state.withLock { $0.order } }
        var mostInside: Int { state.withLock { $0.most } }
        var waves: [ConnectWaves.Wave] { state.withLock { $0.waves } }
    }

    @Test("a device cancelled while waiting gives up its place (nil), and the next one gets the slot")
    func cancelledWhileWaiting() async throws {
        let connectWaves = ConnectWaves(limit: 1)
        guard let first = await connectWaves.enter() else { Issue.record("no slot with nobody connecting"); return }
        let cancelled = Task { await connectWaves.enter() }
        #expect(await eventually { connectWaves.figures.waiting == 1 })
        let next = Task { await connectWaves.enter() }
        #expect(await eventually { connectWaves.figures.waiting == 2 })
        cancelled.cancel()
        #expect(await cancelled.value == nil)
        #expect(connectWaves.figures.waiting == 1)
        first.end()
        first.end()  // ending twice frees one slot, not two
        let second = await next.value
        #expect(second != nil)
        #expect(connectWaves.figures.connecting == 1 && connectWaves.figures.waiting == 0)
        second?.end()
        #expect(connectWaves.figures.connecting == 0)
    }

    @Test("a raised limit lets waiting devices in at once; a lowered one applies to the next that asks")
    func reloadedLimit() async throws {
        let connectWaves = ConnectWaves(limit: 1)
        guard let first = await connectWaves.enter() else { Issue.record("no slot"); return }
        let waiting = Task { await connectWaves.enter() }
        #expect(await eventually { connectWaves.figures.waiting == 1 })
        connectWaves.update(limit: 2)
        let second = await waiting.value
        #expect(second != nil && connectWaves.figures.connecting == 2)
        connectWaves.update(limit: 1)
        let third = Task { await connectWaves.enter() }
        #expect(await eventually { connectWaves.figures.waiting == 1 })
        first.end()
        #expect(connectWaves.figures.waiting == 1, "a slot freed above the lowered limit let a device in")
        second?.end()
        let slot = await third.value
        #expect(slot != nil && connectWaves.figures.connecting == 1)
        slot?.end()
    }
}
