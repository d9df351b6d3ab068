import ArgumentParser
import Foundation
import GatehouseSimulation
import Logging

/// `gatehouse-sim hikvision-acs`: a Hikvision access terminal that serves AcsEvent search
/// (Digest) and/or pushes AccessControllerEvent alerts to the gateway.
struct HikvisionACSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hikvision-acs",
        abstract: "Play a Hikvision access terminal: serve AcsEvent search with Digest auth, or push AccessControllerEvent alerts.")
    @Option(help: "Records to put in the log (poll) or to push.") var records = 20
    @Option(help: "Port to serve ISAPI on (127.0.0.1; 0 picks one).") var port = 0
    @Option(help: "Push each record to this gateway URL instead of serving, e.g. http://127.0.0.1:8080/v1/hikvision-acs/lobby.") var pushURL: String?
    @Option(help: "Push body format: json or multipart.") var format = "json"
    @Option(help: "ISAPI username.") var username = "admin"
    @Option(help: "ISAPI password.") var password = "hik12345"
    @Option(help: "Seconds to keep serving before exiting (0: until interrupted).") var seconds = 0

    func run() async throws {
        var logger = Logger(label: "hikvision-terminal")
        logger.logLevel = .warning
        let terminal = HikvisionTerminal(username: username, password: password, logger: logger)
        let added = terminal.record(count: max(0, records))
        if let pushURL {
            guard let host = URL(string: pushURL)?.host else { throw ValidationError("bad --push-url \(pushURL)") }
            try GatehouseSim.requireLoopback(host)
            guard let pushFormat = HikvisionTerminal.PushFormat(rawValue: format) else {
                throw ValidationError("--format must be json or multipart (got \(format))")
            }
            let statuses = await terminal.push(added, to: pushURL, format: pushFormat)
            await terminal.shutdown()
            let ok = statuses.filter { $0 == 200 }.count
            print("pushed \(statuses.count) alerts, \(ok) answered 200")
            if ok != statuses.count { throw ExitCode(1) }
            return
        }
        let server = Task { try await terminal.run(port: port) }
        let bound = try await terminal.waitUntilRunning()
        print("AcsEvent search on http://127.0.0.1:\(bound)/ISAPI/AccessControl/AcsEvent?format=json (digest \(username)), \(added.count) records")
        if seconds > 0 {
            try await Task.sleep(for: .seconds(seconds))
            server.cancel()
        }
        _ = try? await server.value
        await terminal.shutdown()
        print("searches \(terminal.figures.searches), challenges \(terminal.figures.challenges)")
    }
}
