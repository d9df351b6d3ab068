import Foundation
import GatehouseCore
import GatehouseSimulation
import GatehouseTesting
import Synchronization
import Testing

/// Records every event the gateway acknowledged, with what was sent, to check against the centre.
final class Oracle: Sendable {
    struct Sent: Sendable {
        let deviceID: String
        let json: String
    }

    private let acknowledged = Mutex<[String: Sent]>([:])
    private let counters = Mutex<(sent: Int, failed: Int, refused: Int)>((0, 0, 0))

    var acknowledgedIDs: Set<String> { Set(acknowledged.withLock { $0.keys }) }
    var acknowledgedCount: Int { acknowledged.withLock { $0.count } }
    var tally: (sent: Int, failed: Int, refused: Int) { counters.withLock { $0 } }

    /// Pushes `events` for one device and records the ids of a 200 reply.
    func push(_ pusher: DevicePusher, device: Int, events: [[String: Any]]) async -> DevicePusher.Reply {
        let body = TrafficGenerator.body(events)
        let reply = await pusher.push(deviceID: TestSite.deviceID(device), token: TestSite.token(device), body: body)
        counters.withLock {
            $0.sent += events.count
            if reply.status == 503 { $0.refused += events.count } else if reply.status != 200 { $0.failed += events.count }
        }
        if reply.status == 200, reply.ids.count == events.count {
            let jsons = events.map { String(decoding: TrafficGenerator.body([$0]), as: UTF8.self) }
            acknowledged.withLock { table in
                for (id, json) in zip(reply.ids, jsons) { table[id] = Sent(deviceID: TestSite.deviceID(device), json: json) }
            }
        }
        return reply
    }

    /// Pushes from `workers` concurrent devices until cancelled or `count` events per worker were sent.
    func load(baseURL: String, workers: Int, devices: Int, perWorker: Int = .max, batch: Int = 1, seed: UInt64 = 1) async {
        let pusher = DevicePusher(baseURL: baseURL, timeoutSeconds: 5)
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var generator = TrafficGenerator(seed: seed &* 7919 &+ UInt64(worker))
                    var sequence = 0
                    while !Task.isCancelled, sequence < perWorker {
                        let device = worker % devices
                        let events = (0..<batch).map { _ -> [String: Any] in
                            sequence += 1
                            return generator.event(
                                role: .doorController, deviceID: "w\(worker)-s\(seed)", sequence: sequence)
                        }
                        _ = await self.push(pusher, device: device, events: events)
                    }
                }
            }
        }
        await pusher.shutdown()
    }

    /// Every acknowledged event reached the centre with its id, and its content is what was sent.
    func verify(against snapshot: CentralReceiver.Snapshot, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let table = acknowledged.withLock { $0 }
        let missing = table.keys.filter { !snapshot.uniqueIDs.contains($0) }
        #expect(missing.isEmpty, "\(missing.count) acknowledged events never reached the centre, e.g. \(missing.prefix(3))", sourceLocation: sourceLocation)
        var mismatches: [String] = []
        for (id, sent) in table {
            guard let body = snapshot.bodies[id] else { continue }
            let event = try EventCoding.decode(Data(body.utf8))
            let input = try #require(try JSONSerialization.jsonObject(with: Data(sent.json.utf8)) as? [String: Any])
            var problems: [String] = []
            if event.id.description != id { problems.append("id \(event.id)") }
            if event.kind.rawValue != input["kind"] as? String { problems.append("kind \(event.kind.rawValue) ≠ \(input["kind"] ?? "-")") }
            if event.device.id != sent.deviceID { problems.append("device \(event.device.id) ≠ \(sent.deviceID)") }
            if event.source.dedupKey != input["dedupKey"] as? String { problems.append("dedupKey") }
            if let time = input["occurredAt"] as? String, event.occurredAt != DeviceTimeParser.parseRFC3339(time) {
                problems.append("occurredAt \(event.occurredAt) ≠ \(time)")
            }
            let subject = input["subject"] as? [String: Any]
            if event.subject?.value != subject?["value"] as? String { problems.append("subject value") }
            if event.point != input["point"] as? String { problems.append("point") }
            if !problems.isEmpty { mismatches.append("\(id): \(problems.joined(separator: ", "))") }
        }
        #expect(mismatches.isEmpty, "content changed for \(mismatches.count) events: \(mismatches.prefix(3))", sourceLocation: sourceLocation)
    }
}
