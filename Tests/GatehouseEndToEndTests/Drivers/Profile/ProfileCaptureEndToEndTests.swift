import Foundation
import GatehouseTesting
import Testing

/// Item 7 of the profiles issue: a brand nobody documented. Capture → scaffold → profile →
/// replay, through the daemon and the command-line tool.
@Suite("Profile capture end to end", .serialized)
struct ProfileCaptureEndToEndTests {
    static func payload(_ plate: String, id: Int) -> [UInt8] {
        Array(#"{"Upload":{"sn":"ACME-0042","rec":{"recordId":\#(id),"carNo":"\#(plate)","passTime":\#(1_741_911_129 + id),"laneNo":1}}}"#.utf8)
    }

    @Test("capture 3 payloads → scaffold → profile → SIGHUP → quarantine replay → events with the plates")
    func captureScaffoldReplay() async throws {
        var site = ProfileSite()
        defer { site.remove() }
        // A scratch adapters folder (the shipped profiles plus the one this test writes).
        let adapters = site.directory + "/adapters"
        try FileManager.default.createDirectory(atPath: adapters, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: ProfileSite.adapters) {
            try FileManager.default.copyItem(atPath: ProfileSite.adapters + "/" + name, toPath: adapters + "/" + name)
        }
        site.adaptersDirectory = adapters
        site.extraDevices = """
              - id: mystery-gate
                driver: profile
                type: lpr-camera
                direction: in
                options: {capture: true, capture_reply: '{"code":0,"msg":"ok"}'}
            """
        let config = try site.write()
        let check = try await DaemonProcess.runTool(["check-config", config])
        #expect(check.status == 0, "a capture device needs no profile: \(check.stdout)\(check.stderr)")
        // A capture status that is not a success would make the device re-send: refused with what is valid.
        let good = try String(contentsOfFile: config, encoding: .utf8)
        try good.replacingOccurrences(of: "capture: true,", with: "capture: true, capture_status: 302,").write(toFile: config, atomically: true, encoding: .utf8)
        let bad = try await DaemonProcess.runTool(["check-config", config])
        #expect(bad.status != 0 && (bad.stdout + bad.stderr).contains(".options.capture_status: 302 is out of range (expected 200 to 299)"), "\(bad.stdout)\(bad.stderr)")
        try good.write(toFile: config, atomically: true, encoding: .utf8)

        let (daemon, ingest, _) = try await DaemonProcess.start(configPath: config)
        defer { if daemon.process.isRunning { daemon.process.terminate() } }
        let base = "http://127.0.0.1:\(ingest)/v1/push"

        let plates = ["苏E12345", "川A7B8C9", "粤B0K123"]
        for (index, plate) in plates.enumerated() {
            let (status, reply) = try await ProfileEndToEndTests.post(
                "\(base)/capture/mystery-gate", Self.payload(plate, id: 900 + index), contentType: "application/json; charset=utf-8")
            #expect(status == 200)
            #expect(reply == #"{"code":0,"msg":"ok"}"#)
        }

        let list = try await DaemonProcess.runTool(["quarantine", "list", "--config", config, "--device", "mystery-gate"])
        #expect(list.stdout.split(separator: "\n").filter { $0.contains("no-profile") }.count == 3, "\(list.stdout)\(list.stderr)")

        let draft = adapters + "/acme-lpr"
        let scaffold = try await DaemonProcess.runTool(["adapters", "scaffold", "--from-quarantine", "mystery-gate", draft, "--config", config])
        #expect(scaffold.status == 0, "\(scaffold.stdout)\(scaffold.stderr)")
        let yaml = try String(contentsOfFile: draft + "/profile.yaml", encoding: .utf8)
        #expect(yaml.contains("plate: \"Upload.rec.carNo\""), "\(yaml)")
        #expect(yaml.contains("# GUESS:"))
        // The draft lists the plates' shapes, never the clear plates (issue 8 item 5).
        let readme = try String(contentsOfFile: draft + "/README.md", encoding: .utf8)
        #expect(readme.contains("苏X0000") && !readme.contains("苏E12345"), "\(readme)")
        let samples = try FileManager.default.contentsOfDirectory(atPath: draft + "/samples")
        #expect(samples.filter { $0.hasSuffix(".json") }.count == 3)
        #expect(samples.filter { $0.hasSuffix(".meta.yaml") }.count == 3)
        let meta = try String(contentsOfFile: draft + "/samples/001.meta.yaml", encoding: .utf8)
        #expect(meta.contains("/v1/push/capture/mystery-gate"))

        // The person finishes the draft: the reply the device's manual asks for.
        try yaml.replacingOccurrences(of: #"- body: '{"result":"ok"}'"#, with: #"- body: '{"code":0,"msg":"ok"}'"#)
            .write(toFile: draft + "/profile.yaml", atomically: true, encoding: .utf8)
        let written = try await DaemonProcess.runTool(["adapters", "test", "--directory", adapters, "acme-lpr", "--write-missing"])
        #expect(written.status == 0, "\(written.stdout)")
        let tested = try await DaemonProcess.runTool(["adapters", "test", "--directory", adapters, "acme-lpr"])
        #expect(tested.status == 0 && tested.stdout.contains("3 passed, 0 failed"), "\(tested.stdout)")

        // Switch the device to the profile and reload: no serial needed, as the device is reached by
        // its path; replay maps with the device's profile, not the capture route.
        var text = try String(contentsOfFile: config, encoding: .utf8)
        text = text.replacingOccurrences(of: #"options: {capture: true, capture_reply: '{"code":0,"msg":"ok"}'}"#, with: "options: {profile: acme-lpr}")
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        daemon.sendSignal(SIGHUP)
        let replay = try await DaemonProcess.runTool(["quarantine", "replay", "--config", config])
        #expect(replay.status == 0 && replay.stdout.contains("3 replayed, 0 still quarantined"), "\(replay.stdout)\(replay.stderr)")

        let events = try await site.forwarded(atLeast: 3).filter { ($0["device"] as? [String: Any])?["id"] as? String == "mystery-gate" }
        let forwarded = Set(events.compactMap { ($0["subject"] as? [String: Any])?["value"] as? String })
        #expect(forwarded == Set(plates), "\(events)")
        #expect(events.allSatisfy { $0["kind"] as? String == "vehicle.entry" })
        #expect(events.allSatisfy { ($0["source"] as? [String: Any])?["profile"] as? String == "acme-lpr" })

        // Pushed to its profile route now, the same device maps live; and so it does on the capture
        // URL it was pointed at, which nobody has to change on the device.
        let (status, reply) = try await ProfileEndToEndTests.post("\(base)/acme-lpr/mystery-gate", Self.payload("浙C55555", id: 950), contentType: "application/json")
        #expect(status == 200 && reply == #"{"code":0,"msg":"ok"}"#, "\(status) \(reply)")
        let (kept, keptReply) = try await ProfileEndToEndTests.post("\(base)/capture/mystery-gate", Self.payload("浙C66666", id: 951), contentType: "application/json")
        #expect(kept == 200 && keptReply == #"{"code":0,"msg":"ok"}"#, "\(kept) \(keptReply)")
        let live = try await site.forwarded(atLeast: 5).compactMap { ($0["subject"] as? [String: Any])?["value"] as? String }
        #expect(live.contains("浙C55555") && live.contains("浙C66666"), "\(live)")
        let pending = try await DaemonProcess.runTool(["quarantine", "list", "--config", config])
        #expect(pending.stdout.contains("quarantine is empty"), "nothing new was kept: \(pending.stdout)")
        #expect(try await daemon.stop() == 0)
    }
}
