import GatehouseCore
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL

/// `admin.tls`: the admin listener (status, metrics and the console) speaks HTTPS only, so
/// console logins and session cookies can cross a network. Lives beside the console because
/// the console is why the listener needs it.
public enum AdminTLS {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Plain HTTP/1.1 without `files`; with them, TLS from the PEM certificate chain and key.
    /// Throws a message naming the file that could not be loaded.
    public static func serverBuilder(_ files: AdminTLSFiles?) throws -> HTTPServerBuilder {
        guard let files else { return .http1() }
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificateFile)
        } catch {
            throw Failure(description: "admin.tls.certificate: cannot load '\(files.certificateFile)' as a PEM certificate chain: \(error)")
        }
        do {
            key = try NIOSSLPrivateKey(file: files.keyFile, format: .pem)
        } catch {
            throw Failure(description: "admin.tls.key: cannot load '\(files.keyFile)' as a PEM private key: \(error)")
        }
        guard !chain.isEmpty else { throw Failure(description: "admin.tls.certificate: '\(files.certificateFile)' holds no certificate") }
        let configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        return try .tls(tlsConfiguration: configuration)
    }
}
