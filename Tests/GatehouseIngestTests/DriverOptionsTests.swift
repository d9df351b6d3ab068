import Foundation
import GatehouseCore
import GatehouseSinks
import GatehouseTesting
import Testing

@testable import GatehouseIngest

/// One device of `driver` read through the real config loader with every registered driver's
/// declarations; its `options` lines start at line 8 of fixture.yaml.
enum DriverOptionFixture {
    static func text(driver: String, _ options: String) -> String {
        let lines = options.isEmpty ? "" : "    options:\n" + options.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n") + "\n"
        return """
            site: t
            state_directory: /tmp/gatehouse-fixture
            devices:
              - id: c1
                driver: \(driver)
                type: door-controller

            """ + lines + """
            sinks:
              - {name: f, type: file, path: /tmp/gatehouse-fixture/out.ndjson}
            """
    }

    static func parse(driver: String, _ options: String) throws(ConfigError) -> GatehouseConfig {
        try ConfigLoader.parse(text(driver: driver, options), file: "fixture.yaml", knownDrivers: DriverRegistry.names, driverOptions: DriverRegistry.options, sinkTypes: SinkRegistry.readers)
    }

    static func diagnostics(driver: String, _ options: String) -> [ConfigDiagnostic] {
        do {
            _ = try parse(driver: driver, options)
            return []
        } catch {
            return error.diagnostics
        }
    }

    static func device(driver: String, _ options: String) -> DeviceConfig? {
        try? parse(driver: driver, options).devices.first
    }
}

@Suite("Driver options")
struct DriverOptionsTests {
    static let repositoryRoot = GatehouseTesting.repositoryRoot

    /// The folder under Drivers/ of each registered driver, whose README documents it.
    static func readme(of driver: String) throws -> String {
        let folders = ["generic-json": "GenericJSON", "zkteco": "ZKTeco", "uhppote": "UHPPOTE", "profile": "Profile", "hikvision-acs": "HikvisionACS", "onvif": "ONVIF"]
        let folder = try #require(folders[driver], "driver \(driver) has no README folder listed here")
        return try String(
            contentsOf: repositoryRoot.appendingPathComponent("Sources/GatehouseIngest/Drivers/\(folder)/README.md"), encoding: .utf8)
    }

    @Test("every option documented: each declared option of each driver is in its README and in a commented example config")
    func everyOptionDocumented() throws {
        let example = try String(contentsOf: Self.repositoryRoot.appendingPathComponent("config/gatehouse.example.yaml"), encoding: .utf8)
        for driver in DriverRegistry.all {
            let readme = try Self.readme(of: driver.name)
            for option in driver.options.options {
                #expect(readme.contains("`\(option.name)`"), "driver \(driver.name): option \(option.name) is not in its README (as `\(option.name)`)")
                // A commented example, in the shipped config or in the README's example config.
                let written = "\(option.name):"
                #expect(
                    example.contains(written) || readme.contains(written),
                    "driver \(driver.name): option \(option.name) has no example (\(written)) in config/gatehouse.example.yaml or its README")
            }
        }
    }

    @Test("one set of words for booleans: the config's, for every driver")
    func oneBooleanVocabulary() throws {
        for (driver, option) in [("uhppote", "set_time"), ("zkteco", "realtime"), ("profile", "capture")] {
            for (word, value) in [("yes", true), ("on", true), ("true", true), ("no", false), ("off", false), ("false", false)] {
                let device = DriverOptionFixture.device(driver: driver, "\(option): \(word)")
                #expect(device?.options.bool(option) == value, "\(driver) \(option): \(word)")
            }
            let found = DriverOptionFixture.diagnostics(driver: driver, "\(option): maybe")
            #expect(found.map(\.key) == ["devices[0].options.\(option)"] && found.first?.line == 8, "\(found)")
            #expect(found.first?.message.contains("expected true or false") == true, "\(found)")
        }
    }

    @Test("profile devices take the options their profile declares: a misspelt one or a value outside its values has a line")
    func profileOptions() throws {
        let adapters = Self.repositoryRoot.appendingPathComponent("adapters").path
        func text(_ options: String) -> String {
            DriverOptionFixture.text(driver: "profile", options).replacingOccurrences(of: "site: t\n", with: "site: t\nadapters_directory: \(adapters)\n")
        }
        func diagnostics(_ options: String) -> [ConfigDiagnostic] {
            do {
                _ = try ConfigLoader.parse(text(options), file: "fixture.yaml", knownDrivers: DriverRegistry.names, driverOptions: DriverRegistry.options, sinkTypes: SinkRegistry.readers)
                return []
            } catch {
                return error.diagnostics
            }
        }
        // One line more than DriverOptionFixture: adapters_directory.
        #expect(
            diagnostics("profile: zhenshi-lpr\nbarier: camera").map(\.description)
                == ["fixture.yaml:10:7: devices[0].options.barier: unknown option — did you mean 'barrier'? (valid options for driver profile: barrier, capture, capture_content_type, capture_reply, capture_status, profile)"])
        #expect(
            diagnostics("profile: zhenshi-lpr\nbarrier: always").map(\.description)
                == ["fixture.yaml:10:16: devices[0].options.barrier: 'always' is not valid (expected one of never, camera)"])
        let config = try ConfigLoader.parse(
            text("profile: zhenshi-lpr\nbarrier: camera"), file: "fixture.yaml", knownDrivers: DriverRegistry.names, driverOptions: DriverRegistry.options, sinkTypes: SinkRegistry.readers)
        let device = try #require(config.devices.first)
        #expect(device.options.string("barrier") == "camera")
        #expect(ProfileDriver().validate(device: device) == [])
        // A profile that is not there: its options cannot be checked, validate names the profile.
        let unknown = try ConfigLoader.parse(
            text("profile: zhenshi-lrp\nbarrier: camera"), file: "fixture.yaml", knownDrivers: DriverRegistry.names, driverOptions: DriverRegistry.options, sinkTypes: SinkRegistry.readers)
        let problems = ProfileDriver().validate(device: try #require(unknown.devices.first))
        #expect(problems.count == 1 && problems[0].contains("did you mean 'zhenshi-lpr'?"), "\(problems)")
    }

    @Test("a driver that declares nothing refuses options at their line")
    func noOptions() {
        let found = DriverOptionFixture.diagnostics(driver: "generic-json", "colour: red")
        #expect(found.map(\.description) == ["fixture.yaml:8:7: devices[0].options.colour: unknown option (driver generic-json takes no options)"])
    }
}
