import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// The listener's edge before any route: answers `Expect: 100-continue`, refuses a declared
/// body over `max_body_bytes` at once, and ends the connection after a refusal that leaves a
/// body unread.
///
/// - A client that waits for `100 Continue` with a `Content-Length` over the limit gets `413`
///   straight from here, without `100 Continue` and without the route running; it sends nothing
///   more, so its connection ends at once. (Without `Expect`, the route refuses the declared
///   length before reading the body.)
/// - After a `413` or `408` from a route for a body without a declared length (a chunked body
///   that grew past the limit, or stalled), the reply says `Connection: close`: such a body has
///   no end the server could read up to.
/// - A refused body still on its way is read to its end (the server drops it), then the
///   connection is closed ("lingering close", as nginx does): closing while a client is still
///   sending would reset the connection, and many clients then lose the reply. This holds too
///   when the server closes after replying because the client sent `Connection: close`. A sender
///   that goes silent for `lingerSeconds`, or still sends after `lingerLimitSeconds`, is closed
///   on, never left for the idle timeout.
/// - Otherwise `Expect: 100-continue` gets `100 Continue`, so cameras posting images and curl
///   do not stall; credential checks still run on the whole request.
final class ExpectContinueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Silence after which a refused sender's connection is closed.
    static let lingerSeconds: Int64 = 5
    /// How long a refused sender may go on sending before its connection is closed anyway.
    static let lingerLimitSeconds: Int64 = 30

    /// `max_body_bytes` now (a reload may change it).
    let maxBodyBytes: @Sendable () -> Int
    /// Whether the current request's end has been read.
    private var requestComplete = true
    /// Whether it declared its length: the server then reads a refused body to its end and the
    /// connection stays usable, as clients that upload a whole body before reading expect.
    private var requestHasLength = false
    private var closeAfterResponse = false
    /// Set once refused: the connection closes when what the client still sends ends, or it goes silent.
    private var draining = false
    /// While draining, whether the rest still goes to the server (which reads a refused body to
    /// its end) or is dropped here (refused before the server saw the request).
    private var forwarding = true
    /// Read on the event loop's clock (tests move it).
    private var lastRead = NIODeadline.uptimeNanoseconds(0)
    private var drainStarted = NIODeadline.uptimeNanoseconds(0)

    init(maxBodyBytes: @escaping @Sendable () -> Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if draining {
            lastRead = context.eventLoop.now
            if case .end = part {
                if forwarding { context.fireChannelRead(data) }
                context.close(promise: nil)
            } else if forwarding {
                context.fireChannelRead(data)
            }
            return
        }
        switch part {
        case .head(let head):
            requestComplete = false
            requestHasLength = head.headerFields[.contentLength] != nil
            if head.headerFields[.expect]?.lowercased() == "100-continue" {
                let limit = maxBodyBytes()
                if let declared = head.headerFields[.contentLength].flatMap(Int.init), declared > limit {
                    refuse(Rejection(.contentTooLarge, "body-too-large", "body of \(declared) bytes exceeds the limit of \(limit) bytes"), context: context)
                    return
                }
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
            }
        case .end:
            requestComplete = true
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // What is dropped here reaches no consumer that would ask for more: ask for it.
        if draining && !forwarding { context.read() }
        context.fireChannelReadComplete()
    }

    /// The server closing while the body is still arriving (it replied to a request that asked
    /// for `Connection: close` without reading the body): the rest of the body is read and
    /// dropped, then the connection closes. The output stays open until then, although the reply
    /// is out: AsyncHTTPClient fails a request whose connection ends while it still sends, even
    /// with the whole reply read.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode != .input, !requestComplete, context.channel.isActive else {
            context.close(mode: mode, promise: promise)
            return
        }
        // Already draining after a 413 or 408 to a chunked body: the server now stops reading it.
        if !draining {
            draining = true
            drain(context: context)
        }
        forwarding = false
        if mode == .output {
            promise?.succeed()
        } else {
            promise.map { context.channel.closeFuture.cascade(to: $0) }
        }
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var response) where !requestHasLength && (response.status == .contentTooLarge || response.status == .requestTimeout):
            closeAfterResponse = true
            response.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(response)), promise: promise)
        case .end where closeAfterResponse:
            context.writeAndFlush(data, promise: promise)
            if requestComplete {
                context.close(promise: nil)
            } else {
                draining = true
                drain(context: context)
            }
        default:
            context.write(data, promise: promise)
        }
    }

    /// Replies with `rejection` before any route runs, to a client waiting for `100 Continue`.
    private func refuse(_ rejection: Rejection, context: ChannelHandlerContext) {
        rejection.count()
        let body = rejection.jsonBody
        var fields = rejection.headerFields(contentType: "application/json")
        fields[.connection] = "close"
        fields[.contentLength] = String(body.count)
        context.write(wrapOutboundOut(.head(HTTPResponse(status: rejection.status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(ByteBuffer(bytes: body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        // It sends no body: it sees the end of the stream at once (and a body sent anyway is dropped).
        context.close(mode: .output, promise: nil)
        draining = true
        forwarding = false
        drain(context: context)
    }

    /// Closes when the client's request ends or it goes silent.
    private func drain(context: ChannelHandlerContext) {
        lastRead = context.eventLoop.now
        drainStarted = lastRead
        scheduleSilenceCheck(context: context)
    }

    private func scheduleSilenceCheck(context: ChannelHandlerContext) {
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .seconds(Self.lingerSeconds)) {
            let context = boundContext.value
            guard context.channel.isActive else { return }
            let now = context.eventLoop.now
            if now - handler.value.lastRead >= .seconds(Self.lingerSeconds)
                || now - handler.value.drainStarted >= .seconds(Self.lingerLimitSeconds) {
                context.close(promise: nil)
            } else {
                handler.value.scheduleSilenceCheck(context: context)
            }
        }
    }
}
