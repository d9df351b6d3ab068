import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// The listener's edge before any route: answers `Expect: 100-continue`, refuses a declared
/// body over `max_body_bytes` at once, and ends the connection after a refusal that leaves a
/// body unread.
///
/// - A `Content-Length` over the limit gets `413` straight from here, without `100 Continue`
///   (a client waiting for it would otherwise send the body for nothing) and without the route
///   running.
/// - After a `413` or `408` from a route (a chunked body that grew past the limit, a stalled
///   body), the rest of the body is not wanted: the reply says `Connection: close` and the
///   connection ends instead of waiting for the idle timeout while the server drains it.
/// - Otherwise `Expect: 100-continue` gets `100 Continue`, so cameras posting images and curl
///   do not stall; credential checks still run on the whole request.
final class ExpectContinueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// How long a refused client may still read its reply after we stop writing, before the
    /// connection is closed outright: closing at once with its body unread would reset the
    /// connection, and a reset can discard the reply before the client reads it.
    static let lingerSeconds: Int64 = 2

    /// `max_body_bytes` now (a reload may change it).
    let maxBodyBytes: @Sendable () -> Int
    /// Set once the connection is ending: what the client still sends is dropped.
    private var ending = false
    private var closeAfterResponse = false

    init(maxBodyBytes: @escaping @Sendable () -> Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if ending { return }
        if case .head(let head) = unwrapInboundIn(data) {
            let limit = maxBodyBytes()
            if let declared = head.headerFields[.contentLength].flatMap(Int.init), declared > limit {
                refuse(Rejection(.contentTooLarge, "body-too-large", "body of \(declared) bytes exceeds the limit of \(limit) bytes"), context: context)
                return
            }
            if head.headerFields[.expect]?.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var response) where response.status == .contentTooLarge || response.status == .requestTimeout:
            closeAfterResponse = true
            response.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(response)), promise: promise)
        case .end where closeAfterResponse:
            context.writeAndFlush(data, promise: promise)
            endConnection(context: context)
        default:
            context.write(data, promise: promise)
        }
    }

    /// Replies with `rejection` before any route runs and ends the connection.
    private func refuse(_ rejection: Rejection, context: ChannelHandlerContext) {
        rejection.count()
        let body = rejection.jsonBody
        var fields = rejection.headerFields(contentType: "application/json")
        fields[.connection] = "close"
        fields[.contentLength] = String(body.count)
        context.write(wrapOutboundOut(.head(HTTPResponse(status: rejection.status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(ByteBuffer(bytes: body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        endConnection(context: context)
    }

    /// Stops writing (the client reads the reply, then end of stream) and closes for good after
    /// a short linger.
    private func endConnection(context: ChannelHandlerContext) {
        ending = true
        context.close(mode: .output, promise: nil)
        let channel = context.channel
        context.eventLoop.scheduleTask(in: .seconds(Self.lingerSeconds)) { channel.close(promise: nil) }
    }
}
