import Foundation
import GatehouseCore
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import GatehouseIngest

/// The request/response client against a scripted loopback responder.
@Suite("uhppote client")
struct UHPPOTEClientTests {
    static let serial: UInt32 = 423_187_757

    /// A queue and one `uhppote` device, `controller-1`, with `serial` at 127.0.0.1:`port`.
    static func fixture(port: Int) throws -> IngestFixture {
        try IngestFixture(
            devices: """
                  - id: controller-1
                    driver: uhppote
                    type: door-controller
                    serial: "\(serial)"
                    address: 127.0.0.1:\(port)
                """)
    }

    /// Answers each request with the datagrams `script` returns for it.
    static func responder(_ script: @escaping @Sendable ([UInt8]) -> [[UInt8]]) async throws -> (any Channel, SocketAddress) {
        let holder = Mutex<(any Channel)?>(nil)
        let channel = try await UDPSocket.bind(host: "127.0.0.1", port: 0) { datagram in
            guard let channel = holder.withLock({ $0 }) else { return }
            for reply in script(datagram.bytes) {
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: datagram.from, data: ByteBuffer(bytes: reply)), promise: nil)
            }
        }
        holder.withLock { $0 = channel }
        return (channel, try #require(channel.localAddress))
    }

    /// Answers every request with a get-time reply whose date is not BCD: an answer, but not a legible one.
    static func illegibleResponder() async throws -> (any Channel, SocketAddress) {
        try await responder { _ in
            var reply = UHPPOTEResponse.time(nil).encode(serial: serial)
            reply[8] = 0x20
            reply[9] = 0x2F  // not BCD
            return [reply]
        }
    }

    @Test("foreign and malformed datagrams are counted and skipped; the matching reply is taken")
    func skipsNoise() async throws {
        let status = UHPPOTEResponse.time(UHPPOTEDateTime(year: 2025, month: 3, day: 14, hour: 8, minute: 31, second: 7))
        let (responder, address) = try await Self.responder { _ in
            [
                Array(repeating: 0x17, count: 10),  // wrong length
                UHPPOTEResponse.time(nil).encode(serial: 999),  // another controller
                UHPPOTEResponse.eventIndex(3).encode(serial: Self.serial),  // another function
                status.encode(serial: Self.serial),
            ]
        }
        defer { responder.close(promise: nil) }
        let rejections = UHPPOTERejections()
        let reply = try await UHPPOTEClient.with(bindHost: "127.0.0.1", rejections: rejections, logger: Logger(label: "t")) { client in
            try await client.request(.getTime, serial: Self.serial, to: address, timeout: .seconds(2), retries: 0)
        }
        #expect(reply == status)
        #expect(rejections.count(.length) == 1 && rejections.count(.serial) == 1 && rejections.count(.function) == 1)
    }

    @Test("no reply: every attempt times out, bounded, and the error says how many")
    func timeout() async throws {
        let asked = Atomic<Int>(0)
        let (responder, address) = try await Self.responder { _ in
            asked.add(1, ordering: .relaxed)
            return []
        }
        defer { responder.close(promise: nil) }
        let started = ContinuousClock.now
        await #expect(throws: UHPPOTENoReply.self) {
            try await UHPPOTEClient.with(bindHost: "127.0.0.1", rejections: UHPPOTERejections(), logger: Logger(label: "t")) { client in
                try await client.request(.getStatus, serial: Self.serial, to: address, timeout: .milliseconds(100), retries: 2)
            }
        }
        let elapsed = ContinuousClock.now - started
        // Three attempts of 100 ms each: at least 300 ms. The upper bound only proves it ends (a loaded
        // CI machine stretches wall-clock time, so it is generous on purpose).
        #expect(elapsed >= .milliseconds(300) && elapsed < .seconds(30), "\(elapsed)")
        #expect(asked.load(ordering: .relaxed) == 3)
    }

    @Test("a reply with a garbage date is an unreadable reply, not a timeout")
    func badReply() async throws {
        let (responder, address) = try await Self.illegibleResponder()
        defer { responder.close(promise: nil) }
        let rejections = UHPPOTERejections()
        await #expect(throws: UHPPOTEBadReply.self) {
            try await UHPPOTEClient.with(bindHost: "127.0.0.1", rejections: rejections, logger: Logger(label: "t")) { client in
                try await client.request(.getTime, serial: Self.serial, to: address, timeout: .seconds(2), retries: 0)
            }
        }
        #expect(rejections.count(.bcd) == 1)
    }
}
