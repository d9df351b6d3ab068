import Foundation
import GatehouseCore
import GatehouseTesting
import Logging
import Testing

@testable import GatehouseIngest

/// The driver over mqtts against a real mosquitto with a TLS listener (certificates made by
/// openssl in the test); test devices publish on the broker's plain listener.
@Suite(
    "mqtt driver over TLS against mosquitto", .serialized,
    .enabled(if: MosquittoBroker.available, "mosquitto is not installed (scripts/test installs it)"))
struct MQTTDriverTLSTests {
    static let sample: String = {
        let text = try? String(contentsOfFile: shippedAdapters + "/mqtt-alarm-sensor/samples/panic-button.json", encoding: .utf8)
        return (text ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }()

    /// One `hub` device on the broker's TLS listener; `options` and `auth` are YAML flow-map entries.
    static func fixture(
        broker: MosquittoBroker, options: String, auth: String? = nil, clock: any DriverClock = SystemClock(),
        logger: Logger = Logger(label: "mqtt-tls-tests")
    ) throws -> IngestFixture {
        let tlsPort = try #require(broker.tlsPort)
        return try IngestFixture(
            devices: """
                  - id: hub
                    driver: mqtt
                    type: alarm-panel
                    address: mqtts://127.0.0.1:\(tlsPort)
                \(auth.map { "    auth: {\($0)}" } ?? "")
                    options: {profile: mqtt-alarm-sensor, topic: "sensors/{device}/+", \(options)}
                """, extra: "adapters_directory: \(shippedAdapters)", clock: clock, logger: logger)
    }

    /// Runs the hub, publishes the panic-button sample on the plain listener and waits for its
    /// event in the queue and the driver's PUBACK (sent only after the commit) at the broker.
    static func deliversOverTLS(
        _ fixture: IngestFixture, broker: MosquittoBroker, clientID: String, username: String? = nil, password: String? = nil
    ) async throws {
        let device = try #require(fixture.context.device(id: "hub"))
        let run = Task { try? await MQTTDriver().run(device: device, context: fixture.context) }
        // The device's address is the TLS listener, which speaks nothing else: subscribed means over TLS.
        #expect(await eventually { broker.log.contains("\(clientID) 1 sensors/hub/+") }, "\(broker.log.suffix(2000))")
        #expect(
            try await MosquittoPublisher.publish(
                port: broker.port, topic: "sensors/hub/sos", lines: [sample], username: username, password: password) == 0)
        #expect(await eventually { (try? await fixture.events().contains { $0.kind == .alarmPanic }) == true })
        #expect(await eventually { broker.log.contains("Received PUBACK from \(clientID)") }, "\(broker.log.suffix(2000))")
        run.cancel()
        await run.value
    }

    @Test("mqtts with the broker's CA in ca_file: messages arrive over the TLS listener, are committed and acknowledged")
    func messagesOverTLS() async throws {
        let certificates = try await TestCertificates()
        defer { certificates.remove() }
        let broker = try MosquittoBroker(tls: .init(certificates))
        try await broker.start()
        defer { broker.stop() }
        let fixture = try Self.fixture(broker: broker, options: "client_id: gatehouse-tls, ca_file: \(certificates.ca)")
        try await Self.deliversOverTLS(fixture, broker: broker, clientID: "gatehouse-tls")
        await fixture.finish()
    }

    @Test("a CA that did not sign the broker's certificate: the device is down with 'certificate verify failed', one log line, the next attempt only after refused_retry_seconds")
    func wrongCA() async throws {
        let certificates = try await TestCertificates()
        let unrelated = try await TestCertificates()
        defer {
            certificates.remove()
            unrelated.remove()
        }
        let broker = try MosquittoBroker(tls: .init(certificates))
        try await broker.start()
        defer { broker.stop() }
        let tlsPort = try #require(broker.tlsPort)
        let clock = ManualClock()
        let (logger, lines) = CapturingLogHandler.logger()
        let fixture = try Self.fixture(
            broker: broker, options: "client_id: gatehouse-wrong-ca, ca_file: \(unrelated.ca), refused_retry_seconds: 300", clock: clock,
            logger: logger)
        // The broker's side of each handshake the driver tried (the fixture's readiness probe sends no certificate check).
        func attempts() -> Int { broker.log.components(separatedBy: "tlsv1 alert unknown ca").count - 1 }
        let device = try #require(fixture.context.device(id: "hub"))
        let run = Task { try? await MQTTDriver().run(device: device, context: fixture.context) }
        // The driver's line and the device-down line (the status log's reason), each once.
        func failures() -> [CapturingLogHandler.Line] { lines.all.filter { $0.message.contains("certificate verify failed") } }

        #expect(await eventually { failures().count == 2 && clock.pendingTimers > 0 }, "\(lines.all.map(\.message))")
        // The driver knows of the failed handshake before the broker has written it to its log.
        #expect(await eventually { attempts() == 1 }, "\(broker.log)")
        let reason = fixture.pipeline.devices.healthSnapshot.first { $0.id == "hub" }?.reason ?? ""
        #expect(reason.contains("TLS with 127.0.0.1:\(tlsPort) failed: certificate verify failed") && reason.contains("options.ca_file"), "\(reason)")
        clock.advance(by: .seconds(299))
        #expect(attempts() == 1)
        clock.advance(by: .seconds(1))
        #expect(await eventually { attempts() == 2 && clock.pendingTimers > 0 }, "\(broker.log)")
        #expect(failures().count == 2, "\(lines.all.map(\.message))")
        #expect(failures().filter { $0.message.hasPrefix("mqtt:") }.count == 1)
        run.cancel()
        clock.advance(by: .seconds(300))
        await run.value
        await fixture.finish()
    }

    @Test("a broker that requires a client certificate: with client_certificate_file and client_key_file messages arrive; without, the device is down with the broker's 'certificate required' or a hint at the client certificate")
    func clientCertificate() async throws {
        let certificates = try await TestCertificates()
        defer { certificates.remove() }
        let broker = try MosquittoBroker(tls: .init(certificates, requireClientCertificate: true))
        try await broker.start()
        defer { broker.stop() }

        let withCertificate = try Self.fixture(
            broker: broker,
            options: "client_id: gatehouse-client-cert, ca_file: \(certificates.ca), client_certificate_file: \(certificates.clientCert), client_key_file: \(certificates.clientKey)")
        try await Self.deliversOverTLS(withCertificate, broker: broker, clientID: "gatehouse-client-cert")
        await withCertificate.finish()

        let clock = ManualClock()
        let without = try Self.fixture(broker: broker, options: "client_id: gatehouse-no-cert, ca_file: \(certificates.ca)", clock: clock)
        let device = try #require(without.context.device(id: "hub"))
        let run = Task { try? await MQTTDriver().run(device: device, context: without.context) }
        func reason() -> String { without.pipeline.devices.healthSnapshot.first { $0.id == "hub" }?.reason ?? "" }
        // The broker's alert when it is read; when the CONNECT written after the handshake meets the
        // closed socket first, the alert is lost and the reason says what to check.
        #expect(
            await eventually {
                (reason().contains("certificate required") || reason().contains("lost before CONNACK") && reason().contains("options.client_certificate_file"))
                    && clock.pendingTimers > 0
            }, "\(reason())")
        #expect(!broker.log.contains("as gatehouse-no-cert"))
        run.cancel()
        clock.advance(by: .seconds(300))
        await run.value
        await without.finish()
    }

    @Test("username and password from a secret file, over TLS: the broker admits the user; the password is in no log line")
    func credentialsFromASecret() async throws {
        let certificates = try await TestCertificates()
        defer { certificates.remove() }
        let broker = try MosquittoBroker(users: ["sensor-hub": "tls-s3cret"], tls: .init(certificates))
        try await broker.start()
        defer { broker.stop() }
        let secret = certificates.directory + "/mqtt-password"
        try "tls-s3cret\n".write(toFile: secret, atomically: true, encoding: .utf8)
        let (logger, lines) = CapturingLogHandler.logger()
        let fixture = try Self.fixture(
            broker: broker, options: "client_id: gatehouse-secret, ca_file: \(certificates.ca)",
            auth: "username: sensor-hub, password: {file: \(secret)}", logger: logger)
        try await Self.deliversOverTLS(fixture, broker: broker, clientID: "gatehouse-secret", username: "sensor-hub", password: "tls-s3cret")
        #expect(broker.log.contains("as gatehouse-secret (p5, c0, k30, u'sensor-hub')"), "\(broker.log.suffix(2000))")
        #expect(!lines.all.contains { $0.message.contains("tls-s3cret") })
        await fixture.finish()
    }
}
