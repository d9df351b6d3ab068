import ArgumentParser
import Foundation
import GatehouseSimulation
import Logging

/// `gatehouse-sim gb28181`: a simulated GB/T 28181 IPC or NVR registering to the gateway.
struct GB28181Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gb28181",
        abstract: "Run a simulated GB/T 28181 IPC or NVR that registers to the gateway, keeps alive and sends alarms.")

    @Option(help: "The device's 20-digit ID.") var deviceID = "34020000001320000001"
    @Option(help: "Registration password.") var password = "gbPass123"
    @Option(help: "Gateway SIP port on 127.0.0.1.") var port = 5060
    @Option(help: "udp or tcp.") var transport = "udp"
    @Option(help: "Platform ID typed into the device.") var platformID = "34020000002000000001"
    @Option(help: "SIP domain typed into the device.") var domain = "3402000000"
    @Option(help: "Channels (0: an IPC; N: an NVR with N cameras).") var channels = 0
    @Option(help: "Seconds between keepalives.") var keepaliveSeconds: Double = 60
    @Option(help: "Seconds between alarms (0: none).") var alarmSeconds: Double = 30
    @Option(help: "Seconds to run (0: until interrupted).") var duration: Double = 0
    @Flag(help: "Register with a wrong password (the gateway refuses, then bans).") var wrongPassword = false
    @Flag(help: "Stop sending keepalives after registering (the gateway marks it offline).") var loseKeepalives = false
    @Flag(help: "Send every alarm twice, then once more with the same SN and other content.") var duplicateAlarms = false
    @Flag(help: "UTF-8 bodies instead of GB2312.") var utf8 = false
    @Option(help: "Send a malformed XML body every N alarms (0: never).") var malformedEvery = 0

    func run() async throws {
        guard ["udp", "tcp"].contains(transport) else { throw ValidationError("--transport must be udp or tcp") }
        guard deviceID.count == 20, deviceID.allSatisfy(\.isNumber) else { throw ValidationError("--device-id must be 20 digits") }
        var options = GB28181Device.Options(deviceID: deviceID, password: wrongPassword ? password + "-wrong" : password)
        options.gatewayPort = port
        options.transport = transport == "tcp" ? .tcp : .udp
        options.platformID = platformID
        options.domain = domain
        options.gb2312 = !utf8
        let prefix = String(deviceID.prefix(10)) + "131"
        options.channels = (0..<channels).map { (id: prefix + String(format: "%07d", $0 + 1), name: "通道\($0 + 1)") }
        var logger = Logger(label: "gatehouse-sim.gb28181")
        logger.logLevel = .warning
        let device = GB28181Device(options: options, logger: logger)
        try await device.start()
        let status = await device.register()
        print("REGISTER → \(status.map(String.init) ?? "no answer")")
        let started = Date()
        var sent = 0
        var lastKeepalive = Date()
        var lastAlarm = Date()
        while duration == 0 || Date().timeIntervalSince(started) < duration {
            try await Task.sleep(for: .milliseconds(200))
            if Date().timeIntervalSince(lastKeepalive) >= keepaliveSeconds {
                lastKeepalive = Date()
                if !loseKeepalives, await device.keepalive() != 200 { await device.register() }
            }
            if alarmSeconds > 0, Date().timeIntervalSince(lastAlarm) >= alarmSeconds {
                lastAlarm = Date()
                sent += 1
                let channel = options.channels.isEmpty ? nil : options.channels[sent % options.channels.count].id
                if malformedEvery > 0, sent % malformedEvery == 0 {
                    print("malformed → \(await device.message(xml: "<Notify><CmdType>Alarm</CmdType><SN>\(sent)").map(String.init) ?? "no answer")")
                    continue
                }
                let sn = 5000 + sent
                print("alarm \(sn) → \(await device.alarm(channel: channel, sn: sn).map(String.init) ?? "no answer")")
                if duplicateAlarms {
                    await device.alarm(channel: channel, sn: sn)
                    await device.alarm(channel: channel, sn: sn, type: 6, description: "intrusion")
                }
            }
        }
        await device.stop()
    }
}
