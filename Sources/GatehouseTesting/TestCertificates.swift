import Foundation

/// A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, made with the
/// openssl CLI in a temporary directory: the TLS tests of the http, postgres and mqtt sinks and
/// of the mqtt driver. Two instances are two unrelated CAs (a "wrong CA" test).
public struct TestCertificates: Sendable {
    public let directory: String
    public var ca: String { directory + "/ca.pem" }
    public var serverCert: String { directory + "/server.pem" }
    public var serverKey: String { directory + "/server.key" }
    public var clientCert: String { directory + "/client.pem" }
    public var clientKey: String { directory + "/client.key" }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public init() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-tls-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try """
            subjectAltName = IP:127.0.0.1
            """.write(toFile: directory + "/san.cnf", atomically: true, encoding: .utf8)
        let steps = [
            "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=gatehouse-test-ca",
            "req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1",
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.cnf",
            "req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=gatehouse-test-client",
            "x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2",
        ]
        for step in steps {
            let result = try await ChildProcess.run("/usr/bin/openssl", step.split(separator: " ").map(String.init), directory: directory)
            guard result.status == 0 else { throw Failure(description: "openssl \(step) failed: \(result.stderr.suffix(500))") }
        }
    }

    public func remove() { try? FileManager.default.removeItem(atPath: directory) }
}
