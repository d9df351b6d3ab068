import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseSimulation

/// `gatehouse-sim zkteco`: one simulated ZKTeco PUSH device (handshake, uploads, command poll).
struct ZKTecoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zkteco", abstract: "Play a ZKTeco PUSH (iclock) device: handshake, ATTLOG/rtlog uploads, getrequest.")
    @Option(help: "The device's serial number (configure it as serial: on a zkteco device).") var sn: String
    @Option(help: "Gateway ingest base URL.") var url = "http://127.0.0.1:8080"
    @Option(help: "ATTLOG punches to upload.") var records = 100
    @Option(help: "Access-panel rtlog events to upload.") var realtime = 0
    @Option(help: "Records per upload.") var batch = 50
    @Option(help: "Body charset: utf-8 or gbk.") var charset = "utf-8"
    @Option(help: "Attempts per batch before giving up.") var attempts = 10

    func run() async throws {
        guard let host = URL(string: url)?.host else { throw ValidationError("bad --url \(url)") }
        try GatehouseSim.requireLoopback(host)
        guard let encoding = TextDecoding.Charset(label: charset) else { throw ValidationError("--charset must be utf-8 or gbk (got \(charset))") }
        let device = ZKTecoDevice(
            configuration: .init(serial: sn, baseURL: url, charset: encoding, batchSize: max(1, batch), maxAttempts: max(1, attempts)))
        let tally = await device.run(records: records, realtime: realtime)
        await device.shutdown()
        if let refused = tally.refusedHandshake {
            throw SimulationFailure(description: "handshake refused: \(refused.status) \(refused.body)")
        }
        print(
            "batches \(tally.batches), records acknowledged \(tally.acknowledgedRecords), retries \(tally.retries), "
                + "failed batches \(tally.failedBatches), commands executed \(tally.commandsExecuted)")
        if tally.failedBatches > 0 { throw ExitCode(1) }
    }
}

/// A session that could not run, reported without the usage text.
struct SimulationFailure: Error, CustomStringConvertible {
    let description: String
}
