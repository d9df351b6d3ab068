import Foundation
import GatehouseCore
import Testing

/// Issue 14 item 3: activating a profile edits the config text minimally, keeping comments and layout.
@Suite("Device option edit")
struct DeviceOptionEditTests {
    static let config = """
        site: s   # the community
        # Devices, one per lane.
        devices:
          - id: gate-east            # east entrance
            driver: profile
            options:
              # capturing until the profile is written
              capture: true
              capture_reply: '{"result":"ok"}'
          - id: gate-west
            driver: profile
            options: {capture: yes}
          - id: door-1
            driver: profile
            options:
              profile: "old-one"   # the vendor's first firmware
          - id: door-2
            driver: profile
          - {id: door-3, driver: profile}
        sinks: []
        """

    @Test("a block options mapping gets the profile as a line of its own; capture is turned off in place; comments stay")
    func blockOptions() throws {
        let after = try DeviceOptionEdit.activate(profile: "acme-lpr", device: "gate-east", in: Self.config)
        let lines = after.components(separatedBy: "\n")
        #expect(lines.count == Self.config.components(separatedBy: "\n").count + 1)
        #expect(lines[6] == "      profile: acme-lpr")
        #expect(lines[7] == "      # capturing until the profile is written")
        #expect(lines[8] == "      capture: false")
        #expect(lines[3] == "  - id: gate-east            # east entrance")
        var expected = Self.config.components(separatedBy: "\n")
        expected.insert("      profile: acme-lpr", at: 6)
        expected[8] = "      capture: false"
        #expect(lines == expected, "nothing else changed")
    }

    @Test("a flow options mapping gets the key after its brace")
    func flowOptions() throws {
        let after = try DeviceOptionEdit.activate(profile: "acme-lpr", device: "gate-west", in: Self.config)
        var expected = Self.config.components(separatedBy: "\n")
        expected[11] = "    options: {profile: acme-lpr, capture: false}"
        #expect(after.components(separatedBy: "\n") == expected)
    }

    @Test("an existing profile value is replaced where it stands, quotes and comment included")
    func replaceValue() throws {
        let after = try DeviceOptionEdit.activate(profile: "acme-lpr", device: "door-1", in: Self.config)
        var expected = Self.config.components(separatedBy: "\n")
        expected[15] = "      profile: acme-lpr   # the vendor's first firmware"
        #expect(after.components(separatedBy: "\n") == expected)
    }

    @Test("a device without options gets them, in block or flow style like its other keys")
    func noOptions() throws {
        let block = try DeviceOptionEdit.activate(profile: "acme-lpr", device: "door-2", in: Self.config)
        var expected = Self.config.components(separatedBy: "\n")
        expected.insert("    options: {profile: acme-lpr}", at: 17)
        #expect(block.components(separatedBy: "\n") == expected)
        let flow = try DeviceOptionEdit.activate(profile: "acme-lpr", device: "door-3", in: Self.config)
        var expectedFlow = Self.config.components(separatedBy: "\n")
        expectedFlow[18] = "  - {options: {profile: acme-lpr}, id: door-3, driver: profile}"
        #expect(flow.components(separatedBy: "\n") == expectedFlow)
    }

    @Test("an unknown device or a file that is not YAML is refused with the reason")
    func refused() {
        #expect(throws: DeviceOptionEdit.Failure.self) { try DeviceOptionEdit.activate(profile: "x", device: "nope", in: Self.config) }
        #expect(throws: DeviceOptionEdit.Failure.self) { try DeviceOptionEdit.activate(profile: "x", device: "a", in: "devices: [\n") }
    }
}
