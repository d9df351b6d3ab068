import Foundation
import GatehouseCore
import NIOCore
import NIOPosix

/// One RTSP OPTIONS or DESCRIBE on a short connection of its own, never SETUP or PLAY (no media,
/// no session slot on cameras that allow a few clients), closed as soon as the reply is read.
/// A 401 is answered with Digest when offered (also when Basic is offered beside it: some Tapo
/// firmware fails on Basic, and Basic shows the password on the LAN), Basic otherwise; a stale
/// nonce is retried once; a server that closes after its 401 gets the answer on a new connection.
struct RTSPProbe: Sendable {
    enum Method: String, Sendable { case options = "OPTIONS", describe = "DESCRIBE" }

    let url: String
    let method: Method
    /// nil: none configured, or withheld after the camera refused them (lockout pitfall).
    let credentials: (username: String, password: String)?
    let connectTimeout: TimeAmount

    /// The reply that ended the exchange, and whether credentials went with the request it answered.
    struct Exchange: Sendable {
        var response: RTSPCodec.Response
        var sentCredentials: Bool
    }

    enum Failure: Error, Equatable, CustomStringConvertible {
        case unreachable(String)
        case protocolError(String)
        var description: String {
            switch self {
            case .unreachable(let text), .protocolError(let text): text
            }
        }
    }

    private enum Step {
        case reply(RTSPCodec.Response, sentCredentials: Bool)
        /// The server closed after a 401: answer it on a new connection.
        case reconnect
    }

    /// Runs the exchange; no deadline of its own beyond the connect timeout (the caller's).
    func run() async throws -> Exchange {
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty else {
            throw Failure.protocolError("'\(url)' is not an rtsp:// URL with a host")
        }
        let port = components.port ?? 554
        var authorization: String?
        var staleRetried = false
        var cseq = 0
        for _ in 0..<3 {
            // Past the deadline no new connection is opened.
            try Task.checkCancellation()
            let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
            do {
                channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(connectTimeout)
                    .connect(host: host, port: port) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                        }
                    }
            } catch {
                throw Failure.unreachable("cannot connect to \(host):\(port): \(Self.describe(error))")
            }
            let step: Step = try await channel.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                var buffer: [UInt8] = []
                var answered = false
                while true {
                    cseq += 1
                    var headers: [RTSPCodec.Header] = []
                    if method == .describe { headers.append(.init(name: "Accept", value: "application/sdp")) }
                    if let authorization { headers.append(.init(name: "Authorization", value: authorization)) }
                    do {
                        try await outbound.write(ByteBuffer(bytes: RTSPCodec.request(method.rawValue, url: url, cseq: cseq, headers: headers)))
                    } catch {
                        // Closed after its 401 before we could answer on this connection: answer on a new one.
                        if answered { return .reconnect }
                        throw error
                    }
                    let response: RTSPCodec.Response
                    do {
                        guard let read = try await Self.read(&iterator, buffer: &buffer) else {
                            // Closed after the 401 it sent on this connection: reconnect and answer there.
                            if answered { return .reconnect }
                            throw Failure.protocolError("the server closed the connection without a reply")
                        }
                        response = read
                    } catch let error as RTSPCodec.ProtocolError {
                        throw Failure.protocolError(error.description)
                    } catch {
                        // Reset after the 401 it sent: our answer crossed its close (seen on a loaded
                        // machine). Answer on a new connection, as when the close came first.
                        if answered { return .reconnect }
                        throw error
                    }
                    guard response.cseq == cseq else {
                        throw Failure.protocolError("reply CSeq \(response.values("CSeq").first ?? "missing") to request CSeq \(cseq)")
                    }
                    let sent = authorization != nil
                    guard response.status == 401, let credentials else { return .reply(response, sentCredentials: sent) }
                    let challenges = response.values("WWW-Authenticate")
                    let digest = challenges.lazy.compactMap(HikvisionDigestClient.challenge).first
                    let stale = challenges.contains { text in
                        let lower = text.lowercased()
                        return lower.hasPrefix("digest") && (lower.contains("stale=\"true\"") || lower.contains("stale=true"))
                    }
                    // Answered once already: refused, unless the nonce only went stale (one retry).
                    if sent {
                        guard stale, !staleRetried, digest != nil else { return .reply(response, sentCredentials: true) }
                        staleRetried = true
                    }
                    if let digest {
                        // `uri` is the request-line URL byte for byte (notes §2).
                        authorization = HikvisionDigestClient.authorization(
                            digest, method: method.rawValue, uri: url, username: credentials.username, password: credentials.password,
                            cnonce: HikvisionDigestClient.newCnonce(), nc: 1)
                    } else if challenges.contains(where: { $0.lowercased().hasPrefix("basic") }) {
                        authorization = HikvisionDigestClient.basic(username: credentials.username, password: credentials.password)
                    } else {
                        return .reply(response, sentCredentials: sent)
                    }
                    answered = true
                    if response.closes { return .reconnect }
                }
            }
            switch step {
            case .reply(let response, let sent): return Exchange(response: response, sentCredentials: sent)
            case .reconnect: continue
            }
        }
        throw Failure.protocolError("the server closed the connection after every 401")
    }

    /// The next complete reply, nil when the server closed first.
    private static func read(
        _ iterator: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, buffer: inout [UInt8]
    ) async throws -> RTSPCodec.Response? {
        while true {
            if let (response, consumed) = try RTSPCodec.response(in: buffer) {
                buffer.removeFirst(consumed)
                return response
            }
            guard let chunk = try await iterator.next() else { return nil }
            buffer.append(contentsOf: chunk.readableBytesView)
        }
    }

    static func describe(_ error: any Error) -> String {
        if let connection = error as? NIOConnectionError, let first = connection.connectionErrors.first {
            return "\(first.error)"
        }
        return "\(error)"
    }
}
