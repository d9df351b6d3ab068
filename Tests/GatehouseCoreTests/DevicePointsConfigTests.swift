import Foundation
import Testing

@testable import GatehouseCore
import GatehouseSinks

/// `points:` on a device: each lane or channel its own direction and name, errors with line and key.
@Suite("Device points config")
struct DevicePointsConfigTests {
    /// A config whose one device carries `points` (indented under the device).
    static func config(points: String) -> String {
        """
        site: test-site
        devices:
          - id: two-lane-cam
            driver: generic-json
            type: lpr-camera
            direction: in
        \(points)
        sinks:
          - name: local
            type: file
            path: /tmp/gatehouse-test/events.ndjson
        """
    }

    static func parse(_ text: String) throws -> GatehouseConfig {
        try ConfigLoader.parse(text, file: "test.yaml", knownDrivers: ["generic-json"], sinkTypes: SinkRegistry.readers, environment: [:])
    }

    static func diagnostics(_ text: String) -> [ConfigDiagnostic] {
        do {
            _ = try parse(text)
            return []
        } catch {
            return (error as? ConfigError)?.diagnostics ?? []
        }
    }

    @Test("points give each lane its direction and name; unlisted points fall back to the device")
    func pointsResolve() throws {
        let text = Self.config(points: """
                points:
                  lane-1: {direction: in}
                  lane-2: {direction: out, name: east-out}
                  3: {name: bus-lane}
            """)
        let device = try #require(try Self.parse(text).devices.first)
        #expect(device.points["lane-1"] == PointConfig(direction: .in))
        #expect(device.points["lane-2"] == PointConfig(direction: .out, name: "east-out"))
        // An unquoted number is a key like any other: the profile reports text.
        #expect(device.points["3"] == PointConfig(name: "bus-lane"))
        #expect(device.resolvePoint("lane-1") == ("lane-1", .in))
        #expect(device.resolvePoint("lane-2") == ("east-out", .out))
        #expect(device.resolvePoint("3") == ("bus-lane", .in))
        #expect(device.resolvePoint("lane-9") == ("lane-9", .in))
        #expect(device.resolvePoint(nil) == (nil, .in))
    }

    @Test("the device's point is looked up in points when the device reports none")
    func devicePointResolves() throws {
        var device = try #require(try Self.parse(Self.config(points: "    point: lane-2\n    points: {lane-2: {direction: out}}")).devices.first)
        #expect(device.resolvePoint(nil) == ("lane-2", .out))
        device.points = [:]
        #expect(device.resolvePoint(nil) == ("lane-2", .in))
    }

    @Test(
        "bad points are reported with line, key and what is valid",
        arguments: [
            ("    points: [lane-1, lane-2]", 7, "devices[0].points", "expected a mapping"),
            ("    points:\n      lane-1: {direction: inbound}", 8, "devices[0].points.lane-1.direction", "expected one of in, out"),
            ("    points:\n      lane-1: in", 8, "devices[0].points.lane-1", "expected a mapping"),
            ("    points:\n      lane-1: {}", 8, "devices[0].points.lane-1", "direction: in|out and/or name"),
            ("    points:\n      lane-1: {direction: in, lane: 2}", 8, "devices[0].points.lane-1.lane", "valid keys here: direction, name"),
            ("    points:\n      lane-1: {name: ''}", 8, "devices[0].points.lane-1.name", "empty name"),
            ("    points:\n      lane-1: {name: gate}\n      lane-2:\n        name: gate", 10, "devices[0].points.lane-2.name", "already used by point 'lane-1'"),
        ])
    func badPoints(_ points: String, _ line: Int, _ key: String, _ fragment: String) {
        let found = Self.diagnostics(Self.config(points: points))
        #expect(found.count == 1, "\(found)")
        guard let diagnostic = found.first else { return }
        #expect(diagnostic.file == "test.yaml")
        #expect(diagnostic.line == line, "\(diagnostic)")
        #expect(diagnostic.key == key, "\(diagnostic)")
        #expect(diagnostic.message.contains(fragment), "\(diagnostic.message)")
    }
}
