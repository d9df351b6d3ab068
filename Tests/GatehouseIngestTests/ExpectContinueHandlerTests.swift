import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing

@testable import GatehouseIngest

/// The lingering close on the event loop's clock, which the test moves: a refused sender is
/// read until its body ends, until it is silent for `lingerSeconds`, or at most for
/// `lingerLimitSeconds`, and the server's close is held back until then.
@Suite("listener linger")
struct ExpectContinueHandlerTests {
    /// A channel that has read the head of a request with a body over the limit (declared, or
    /// chunked), and whose server then closed after its reply (as for a request with
    /// `Connection: close`).
    static func refusedSender(declared: Bool = true) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(handler: ExpectContinueHandler(maxBodyBytes: { 1024 }))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        var head = HTTPRequest(method: .post, scheme: nil, authority: "x", path: "/v1/push")
        head.headerFields[declared ? .contentLength : .transferEncoding] = declared ? "100000000" : "chunked"
        try channel.writeInbound(HTTPRequestPart.head(head))
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .contentTooLarge)))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        channel.close(promise: nil)
        channel.embeddedEventLoop.run()
        return channel
    }

    @Test("the server's close waits for the refused body's end, declared or chunked", arguments: [true, false])
    func closesAtTheBodysEnd(declared: Bool) throws {
        let channel = try Self.refusedSender(declared: declared)
        #expect(channel.isActive, "closed on a sender that still sends")
        try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(repeating: 0x20, count: 4096)))
        #expect(channel.isActive)
        try channel.writeInbound(HTTPRequestPart.end(nil))
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
        // What the server no longer reads is dropped here, not handed on.
        #expect(try channel.readInbound(as: HTTPRequestPart.self).map { if case .head = $0 { true } else { false } } == true)
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == nil)
    }

    @Test("a refused sender that goes silent is closed on after lingerSeconds")
    func closesOnSilence() throws {
        let channel = try Self.refusedSender()
        channel.embeddedEventLoop.advanceTime(by: .seconds(ExpectContinueHandler.lingerSeconds - 1))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    @Test("a refused sender that keeps trickling is closed on after lingerLimitSeconds")
    func closesAtTheLimit() throws {
        let channel = try Self.refusedSender()
        let step = ExpectContinueHandler.lingerSeconds - 1
        var elapsed: Int64 = 0
        while elapsed + step < ExpectContinueHandler.lingerLimitSeconds {
            channel.embeddedEventLoop.advanceTime(by: .seconds(step))
            elapsed += step
            #expect(channel.isActive, "closed after \(elapsed) s on a sender that never went silent")
            try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(repeating: 0x20, count: 16)))
        }
        channel.embeddedEventLoop.advanceTime(by: .seconds(ExpectContinueHandler.lingerLimitSeconds - elapsed + step))
        #expect(!channel.isActive)
    }
}
