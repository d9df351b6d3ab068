import AsyncHTTPClient
import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseDaemon
import NIOSSL

/// `gatehouse status`: the running daemon's figures, from its admin listener.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the running daemon's status.")

    @Option(name: .shortAndLong, help: "The config file (to find the admin listener).")
    var config: String = defaultConfigPath

    @Option(help: "The admin listener URL, e.g. http://127.0.0.1:9108 (overrides --config).")
    var admin: String?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() async throws {
        let base: String
        var configuration = HTTPClient.Configuration()
        if let admin {
            base = admin
        } else {
            do {
                let loaded = try GatehouseDaemon.loadConfig(path: config)
                let host = loaded.admin.host == "0.0.0.0" ? "127.0.0.1" : loaded.admin.host
                base = "\(loaded.admin.tls == nil ? "http" : "https")://\(host):\(loaded.admin.port)"
                if let tls = loaded.admin.tls {
                    // The listener's own certificate is trusted as it is: it may be self-signed and
                    // name the box rather than the address used here.
                    var trust = TLSConfiguration.makeClientConfiguration()
                    trust.additionalTrustRoots = [.file(tls.certificateFile)]
                    trust.certificateVerification = .noHostnameVerification
                    configuration.tlsConfiguration = trust
                }
            } catch {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                throw ExitCode(2)
            }
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        defer { _ = client.shutdown() }
        let body: String
        do {
            let response = try await client.execute(HTTPClientRequest(url: base + "/status"), timeout: .seconds(5))
            body = String(buffer: try await response.body.collect(upTo: 16 << 20))
            guard response.status == .ok else { throw ValidationError("admin listener answered \(response.status): \(body)") }
        } catch {
            FileHandle.standardError.write(Data("gatehouse status: cannot reach the daemon at \(base): \(error)\n".utf8))
            throw ExitCode(1)
        }
        if json {
            print(body)
        } else {
            let report = try JSONDecoder().decode(StatusReport.self, from: Data(body.utf8))
            print(report.table)
        }
    }
}
