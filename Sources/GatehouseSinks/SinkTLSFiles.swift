import Foundation
import GatehouseCore
import NIOSSL

/// The `tls:` section the network sinks share: a private CA and an optional client certificate.
/// Read once here so every sink checks the files the same way and names the same keys.
struct SinkTLSFiles: Sendable, Equatable {
    var caFile: String?
    var clientCertificateFile: String?
    var clientKeyFile: String?

    var isEmpty: Bool { caFile == nil && clientCertificateFile == nil && clientKeyFile == nil }

    /// Reads the three file keys of `tls`; the files must be readable now, not at the first send.
    /// `extra` reads any further keys of the section before unknown keys are reported.
    static func read(_ map: YAMLMapping, extra: (YAMLMapping) -> Void = { _ in }) -> SinkTLSFiles {
        let tls = map.mapping("tls")
        defer { tls?.finish() }
        if let tls { extra(tls) }
        var files: [String: String] = [:]
        for key in ["ca_file", "client_certificate_file", "client_key_file"] {
            guard let path = tls?.filePath(key) else { continue }
            if !FileManager.default.isReadableFile(atPath: path) {
                map.log.report(tls?.node(key), key: "\(tls?.path ?? "tls").\(key)", "cannot read '\(path)' (expected a readable PEM file)")
            }
            files[key] = path
        }
        if (files["client_certificate_file"] == nil) != (files["client_key_file"] == nil) {
            map.log.report(tls?.node("client_certificate_file") ?? tls?.node("client_key_file"), key: tls?.path ?? "tls", "client_certificate_file and client_key_file go together")
        }
        return SinkTLSFiles(caFile: files["ca_file"], clientCertificateFile: files["client_certificate_file"], clientKeyFile: files["client_key_file"])
    }

    /// A client configuration trusting `caFile` (instead of the system roots) and presenting the
    /// client certificate; throws a message naming the files when one cannot be loaded.
    func clientConfiguration() throws(SinkTLSError) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            if let caFile {
                // A private CA replaces the system roots: the central store is ours, not the web's.
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            }
            if let clientCertificateFile, let clientKeyFile {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(clientCertificateFile).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: clientKeyFile, format: .pem))
            }
        } catch {
            throw SinkTLSError(
                description: "cannot load TLS files (ca_file \(caFile ?? "-"), client_certificate_file "
                    + "\(clientCertificateFile ?? "-"), client_key_file \(clientKeyFile ?? "-")): \(error)")
        }
        return tls
    }
}

/// A TLS file named in a sink's config could not be loaded.
struct SinkTLSError: Error, CustomStringConvertible {
    let description: String
}
