import ArgumentParser
import Foundation
import GatehouseIngest
import Logging
import NIOCore

/// `gatehouse discover uhppote`: finds controllers that answer a broadcast and prints a config snippet.
struct DiscoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "discover", abstract: "Find devices on the local network.", subcommands: [UHPPOTE.self])

    struct UHPPOTE: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "uhppote",
            abstract: "Broadcast a UHPPOTE/WeiGeng get-controller request and list who answers.",
            discussion: "Routers, VPNs and Docker bridges drop broadcasts: configure each controller's unicast address when nothing answers.")

        @Option(help: "Broadcast (or unicast) address to ask, e.g. 192.168.1.255.") var broadcast = "255.255.255.255"
        @Option(help: "Controller UDP port.") var port = 60000
        @Option(help: "Seconds to wait for answers.") var timeout: Double = 2

        func run() async throws {
            guard (0.1...60).contains(timeout) else { throw ValidationError("--timeout \(timeout) is out of range (expected 0.1–60 seconds)") }
            let target: SocketAddress
            do {
                target = try SocketAddress(ipAddress: broadcast, port: port)
            } catch {
                throw ValidationError("--broadcast '\(broadcast)' is not an IPv4 address (expected e.g. 192.168.1.255)")
            }
            var logger = Logger(label: "gatehouse.discover")
            logger.logLevel = .warning
            let bindHost = broadcast.hasPrefix("127.") ? "127.0.0.1" : "0.0.0.0"
            let found = try await UHPPOTEClient.with(bindHost: bindHost, broadcast: true, rejections: UHPPOTERejections(), logger: logger) { client in
                try await client.gather(.getController, to: target, for: .milliseconds(Int(timeout * 1000)))
            }
            var seen: Set<UInt32> = []
            let controllers = found.compactMap { answer -> (UInt32, String, UHPPOTEControllerInfo)? in
                guard case .controller(let info) = answer.response, seen.insert(answer.serial).inserted else { return nil }
                return (answer.serial, answer.from.ipAddress ?? info.address.description, info)
            }
            guard !controllers.isEmpty else {
                print("no UHPPOTE controller answered on \(broadcast):\(port) within \(timeout) s")
                throw ExitCode(1)
            }
            print("SERIAL       ADDRESS          VERSION  RELEASED    MAC")
            for (serial, address, info) in controllers {
                let cells = [String(serial), address, info.version, info.released ?? "-", info.macText]
                print(zip(cells, [13, 17, 9, 12, 0]).map { $0.padding(toLength: max($1, $0.count), withPad: " ", startingAt: 0) }.joined())
            }
            print("\n# config snippet")
            print("devices:")
            for (serial, address, _) in controllers {
                print("""
                      - id: door-\(serial)
                        driver: uhppote
                        type: door-controller
                        vendor: uhppote
                        serial: "\(serial)"
                        address: \(address):\(port)
                    """)
            }
        }
    }
}
