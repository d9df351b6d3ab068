import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseDaemon
import GatehouseProfiles

/// `gatehouse adapters list|test`: the vendor profiles under the adapters directory and their
/// test vectors. Needs no daemon and no network.
struct AdaptersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapters", abstract: "List vendor profiles and run their test vectors.",
        subcommands: [List.self, Test.self, Scaffold.self])

    struct Location: ParsableArguments {
        @Option(name: .shortAndLong, help: "The adapters directory (default: adapters_directory of --config, else ./adapters).")
        var directory: String?

        @Option(name: .shortAndLong, help: "A config file whose adapters_directory to use.")
        var config: String?

        func resolve() throws -> String {
            if let directory { return directory }
            if let config {
                do {
                    return try GatehouseDaemon.loadConfig(path: config).adaptersDirectory
                } catch {
                    FileHandle.standardError.write(Data("\(error)\n".utf8))
                    throw ExitCode(2)
                }
            }
            return "adapters"
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List profiles, with load errors.")
        @OptionGroup var location: Location

        func run() throws {
            let directory = try location.resolve()
            let set = ProfileSet.load(directory: directory)
            if set.names.isEmpty { print("no profiles under \(directory)") }
            for name in set.names {
                if let profile = set.profiles[name] {
                    let cases = VectorCase.all(in: profile.directory).count
                    print("\(name)\t\(profile.vendor)\t\(cases) samples\t\(profile.summary ?? "")")
                } else if let failure = set.failures[name] {
                    print("\(name)\tNOT LOADED\n\(failure.diagnostics.map { "  \($0)" }.joined(separator: "\n"))")
                }
            }
            if !set.failures.isEmpty { throw ExitCode(1) }
        }
    }

    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run each profile against its samples; exit 1 on any failure.")
        @OptionGroup var location: Location
        @Argument(help: "Only this profile.") var name: String?
        @Flag(help: "Write the actual output to expected/<case>.json where no expected file exists (review before committing).")
        var writeMissing = false

        func run() throws {
            let directory = try location.resolve()
            let set = ProfileSet.load(directory: directory)
            let names = name.map { [$0] } ?? set.names
            var failed = 0
            var passed = 0
            for name in names {
                if let failure = set.failures[name] {
                    print("FAIL \(name): \(failure)")
                    failed += 1
                    continue
                }
                guard let profile = set.profiles[name] else {
                    print("FAIL \(name): no profile \(name) under \(directory) (profiles: \(set.names.joined(separator: ", ")))")
                    failed += 1
                    continue
                }
                for result in VectorRunner.run(profile) {
                    if result.passed {
                        passed += 1
                        print("ok   \(name)/\(result.caseName)")
                        continue
                    }
                    if writeMissing, let written = try writeExpected(profile: profile, caseName: result.caseName) {
                        print("new  \(name)/\(result.caseName) → \(written)")
                        continue
                    }
                    failed += 1
                    print("FAIL \(name)/\(result.caseName)\n\(result.detail.split(separator: "\n").map { "     \($0)" }.joined(separator: "\n"))")
                }
            }
            print("\(passed) passed, \(failed) failed")
            if failed > 0 { throw ExitCode(1) }
        }

        func writeExpected(profile: Profile, caseName: String) throws -> String? {
            guard let vector = VectorCase.all(in: profile.directory).first(where: { $0.name == caseName }), vector.expected == nil else { return nil }
            let result = VectorRunner.produce(vector, profile: profile)
            let folder = (profile.directory as NSString).appendingPathComponent("expected")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let path = (folder as NSString).appendingPathComponent(caseName + (result.isError ? ".err" : ".json"))
            try (result.text + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
    }
}
