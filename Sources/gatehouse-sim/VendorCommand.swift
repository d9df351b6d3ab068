import ArgumentParser
import Foundation
import GatehouseSimulation

/// `gatehouse-sim vendor`: a camera of a given brand posting its own payload format to the
/// gateway's profile route, for trying a profile against a running daemon.
struct VendorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vendor", abstract: "Post plate reads in a vendor's own format (zhenshi, hikvision, legacy-gbk).")

    @Option(help: "Gateway ingest base URL.") var url = "http://127.0.0.1:8080"
    @Option(help: "zhenshi, hikvision or legacy-gbk.") var brand = "zhenshi"
    @Option(help: "The vendor serial written into payloads (must match the device's serial:).") var serial = "a3c9e105-7d214b60"
    @Option(help: "Number of plate reads.") var count = 5
    @Option(help: "Plate prefix; reads are PREFIX0001…") var platePrefix = "川F1"
    @Flag(help: "Send each read twice, as a camera retrying after a lost reply does.") var retry = false
    @Flag(help: "Mark reads as offline replays.") var offline = false
    @Option(help: "Lanes to spread reads over, 1…N in turn (Hikvision line, legacy lane), to try per-point directions.") var lanes = 1

    func run() async throws {
        guard let host = URL(string: url)?.host else { throw ValidationError("bad --url \(url)") }
        try GatehouseSim.requireLoopback(host)
        guard let brand = VendorCamera.Brand(rawValue: brand) else {
            throw ValidationError("--brand must be one of \(VendorCamera.Brand.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard lanes >= 1 else { throw ValidationError("--lanes must be at least 1") }
        let camera = VendorCamera(brand: brand, serial: serial, baseURL: url)
        for index in 0..<count {
            let plate = platePrefix + String(format: "%04d", index)
            let payload = camera.payload(plate: plate, record: 1000 + index, at: Date(), offline: offline, lane: 1 + index % lanes)
            for _ in 0..<(retry ? 2 : 1) {
                let exchange = await camera.post(payload)
                print("\(plate)\t\(exchange.status)\t\(exchange.reply)")
            }
        }
    }
}
