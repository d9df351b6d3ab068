import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseDaemon
import GatehouseProfiles
import GatehouseQueue
import Logging

extension AdaptersCommand {
    /// `gatehouse adapters scaffold --from-quarantine DEVICE OUT_DIR`: a draft profile folder from
    /// the payloads a capture device kept in quarantine.
    struct Scaffold: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a draft profile folder from a device's quarantined (captured) payloads.")
        @Option(name: .customLong("from-quarantine"), help: "The device whose quarantined payloads to use.")
        var device: String
        @Argument(help: "The folder to write; its name becomes the profile name (e.g. adapters/acme-lpr).")
        var outDir: String
        @Option(name: .shortAndLong, help: "The config file naming the queue (state_directory).")
        var config: String = defaultConfigPath
        @Option(help: "At most this many payloads, newest first.") var limit = 50
        @Flag(help: "Also use entries already replayed.") var all = false

        func run() async throws {
            let name = ((outDir as NSString).standardizingPath as NSString).lastPathComponent
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
                throw ValidationError("OUT_DIR's last part '\(name)' becomes the profile name: use letters, digits, '-' and '_' (e.g. acme-lpr)")
            }
            let (loaded, queue) = try openQueue(configPath: config)
            let entries = try await queue.quarantineEntries(limit: limit, pendingOnly: !all, deviceID: device)
                .filter { !$0.driver.hasPrefix("sink:") }.reversed()
            guard !entries.isEmpty else {
                let known = Set(try await queue.quarantineEntries(limit: 1000, pendingOnly: !all).compactMap(\.deviceID)).sorted()
                throw ValidationError("no quarantined payloads from device '\(device)' (devices with some: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
            }
            let payloads = entries.map {
                CapturedPayload(body: Array($0.payload), contentType: $0.contentType, route: $0.route, receivedAt: $0.receivedAt.rfc3339, quarantineID: $0.id)
            }
            let scaffold = ProfileScaffold(
                name: name, deviceID: device, timeZone: loaded.device(device)?.timeZone.identifier, payloads: payloads)
            do {
                try scaffold.write(to: outDir)
            } catch {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                throw ExitCode(1)
            }
            print("wrote \(outDir): profile.yaml (draft), README.md, \(payloads.count) samples (\(scaffold.redactions) personal values replaced by stand-ins)")
            for field in scaffold.inventory.fields where field.role != nil {
                print("  GUESS \(field.role?.rawValue ?? ""): \(field.path) — \(field.why ?? "")")
            }
            do {
                _ = try ProfileLoader.load(directory: outDir)
            } catch {
                print("the draft does not load yet:\n\(error)")
            }
            print("next: edit profile.yaml, run `gatehouse adapters test --directory \((outDir as NSString).deletingLastPathComponent) \(name) --write-missing`, review expected/")
        }
    }
}
