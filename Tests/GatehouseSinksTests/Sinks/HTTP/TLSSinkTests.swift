import Foundation
import GatehouseCore
import GatehouseQueue
import GatehouseTesting
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import Synchronization
import Testing

@testable import GatehouseSinks

/// The HTTP sink against a real TLS server that trusts only our CA and requires a client certificate.
@Suite("HTTP sink over mutual TLS")
struct TLSSinkTests {
    /// A throwaway CA, a server certificate for 127.0.0.1 and a client certificate (GatehouseTesting).
    typealias Certificates = TestCertificates

    struct TLSTestError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// Lines the test server received, shared with its route.
    final class Counter: Sendable {
        let value = Mutex(0)
    }

    /// A TLS server that answers 200 and counts the NDJSON lines it received.
    static func server(_ certs: Certificates) async throws -> (Task<Void, any Error>, Int, Counter) {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certs.serverCert).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: certs.serverKey, format: .pem)))
        tls.certificateVerification = .noHostnameVerification  // require a client certificate signed by…
        tls.trustRoots = .file(certs.ca)  // …our CA only
        let received = Counter()
        let router = Router()
        router.post("/events") { request, _ -> HTTPResponse.Status in
            let body = try await request.body.collect(upTo: 1 << 20)
            let lines = String(buffer: body).split(separator: "\n").count
            received.value.withLock { $0 += lines }
            return .ok
        }
        let port = Mutex<Int?>(nil)
        var logger = Logger(label: "tls-server")
        logger.logLevel = .critical
        let app = Application(
            router: router, server: try .tls(tlsConfiguration: tls),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } }, logger: logger)
        let task = Task { try await app.runService() }
        for _ in 0..<200 {
            if let bound = port.withLock({ $0 }) { return (task, bound, received) }
            try await Task.sleep(for: .milliseconds(25))
        }
        task.cancel()
        throw TLSTestError("TLS server did not start")
    }

    static func batch() -> SinkBatch {
        let events = (1...3).map { index in
            StoredEvent(seq: Int64(index), priority: .access, body: Data(#"{"id":"e\#(index)","kind":"door.opened"}"#.utf8))
        }
        return SinkBatch(events: events, idempotencyKey: "tls-test-1")
    }

    @Test("with our CA and a client certificate the batch is delivered; without either it is not")
    func mutualTLS() async throws {
        let certs = try await Certificates()
        defer { try? FileManager.default.removeItem(atPath: certs.directory) }
        let (server, port, received) = try await Self.server(certs)
        defer { server.cancel() }
        var logger = Logger(label: "tls-sink")
        logger.logLevel = .critical
        let url = "https://127.0.0.1:\(port)/events"

        let full = try HTTPSink(
            name: "central",
            config: HTTPSinkConfig(url: url, gzip: false, caFile: certs.ca, clientCertificateFile: certs.clientCert, clientKeyFile: certs.clientKey, connectTimeoutSeconds: 5, requestTimeoutSeconds: 10),
            logger: logger)
        let delivered = await full.send(Self.batch())
        await full.shutdown()
        #expect(delivered == .delivered, "\(delivered)")
        #expect(received.value.withLock { $0 } == 3)

        let noClientCertificate = try HTTPSink(
            name: "central", config: HTTPSinkConfig(url: url, gzip: false, caFile: certs.ca, connectTimeoutSeconds: 5, requestTimeoutSeconds: 10),
            logger: logger)
        let refused = await noClientCertificate.send(Self.batch())
        await noClientCertificate.shutdown()
        #expect(refused != .delivered, "a server requiring a client certificate must not accept the batch without one")

        let systemTrust = try HTTPSink(
            name: "central",
            config: HTTPSinkConfig(url: url, gzip: false, clientCertificateFile: certs.clientCert, clientKeyFile: certs.clientKey, connectTimeoutSeconds: 5, requestTimeoutSeconds: 10),
            logger: logger)
        let untrusted = await systemTrust.send(Self.batch())
        await systemTrust.shutdown()
        #expect(untrusted != .delivered, "a server certificate from an unknown CA must be refused")
        #expect(received.value.withLock { $0 } == 3, "nothing more arrived")
    }
}
