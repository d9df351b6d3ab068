import GatehouseCore
import Testing

@testable import GatehouseIngest

@Suite("zkteco command queue")
struct ZKTecoCommandQueueTests {
    @Test("queued commands go out once as C:<id>:<command> lines and finish with the device's report")
    func roundTrip() throws {
        let queue = ZKTecoCommandQueue(firstID: 318)
        let open = try queue.enqueue("CONTROL DEVICE 01020103", for: "panel")
        let info = try queue.enqueue("INFO", for: "panel")
        #expect(open == 318 && info == 319)
        #expect(queue.take(for: "panel").map(\.line) == ["C:318:CONTROL DEVICE 01020103", "C:319:INFO"])
        #expect(queue.take(for: "panel").isEmpty, "a sent command is not sent again before its report is overdue")
        #expect(queue.take(for: "other").isEmpty)
        let (results, errors) = ZKTecoCommandQueue.parseResults("ID=318&Return=0&CMD=CONTROL DEVICE\nID=319&Return=-1002&CMD=INFO\ngarbage")
        #expect(errors.count == 1 && errors[0].contains("garbage"))
        #expect(queue.record(results, from: "panel").count == 2)
        let commands = queue.commands(for: "panel")
        #expect(commands.map(\.state) == [.done, .done])
        #expect(commands[0].result?.succeeded == true && commands[1].result?.returnCode == -1002)
    }

    @Test("an overdue command is handed out again with the same id, then expires")
    func redelivery() throws {
        var settings = ZKTecoCommandQueue.Settings()
        settings.redeliverAfterSeconds = 60
        settings.maxDeliveries = 2
        let queue = ZKTecoCommandQueue(settings: settings, firstID: 1)
        try queue.enqueue("REBOOT", for: "d", now: Timestamp(milliseconds: 0))
        #expect(queue.take(for: "d", now: Timestamp(milliseconds: 0)).map(\.id) == [1])
        #expect(queue.take(for: "d", now: Timestamp(milliseconds: 30_000)).isEmpty)
        #expect(queue.take(for: "d", now: Timestamp(milliseconds: 61_000)).map(\.line) == ["C:1:REBOOT"])
        #expect(queue.take(for: "d", now: Timestamp(milliseconds: 200_000)).isEmpty)
        #expect(queue.commands(for: "d").first?.state == .expired)
    }

    @Test("commands that would break the line format, and backlogs beyond the limit, are refused")
    func refusals() throws {
        var settings = ZKTecoCommandQueue.Settings()
        settings.maxPending = 2
        let queue = ZKTecoCommandQueue(settings: settings)
        #expect(throws: ZKTecoCommandError.self) { try queue.enqueue("INFO\nC:1:REBOOT", for: "d") }
        #expect(throws: ZKTecoCommandError.self) { try queue.enqueue("   ", for: "d") }
        try queue.enqueue("INFO", for: "d")
        try queue.enqueue("CHECK", for: "d")
        do {
            try queue.enqueue("REBOOT", for: "d")
            Issue.record("third command accepted")
        } catch {
            #expect(error.description.contains("already has 2 commands waiting (at most 2)"))
        }
    }
}
