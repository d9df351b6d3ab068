import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A real NATS cluster (Debian's `nats-server`) on 127.0.0.1, owned by one test: every node with
/// its own `server_name`, free client, route and MQTT ports, JetStream with its own store
/// directory, routes to every other node, and the MQTT interface with its streams replicated to
/// every node. A node can be killed (SIGKILL) and started again on the same ports and store.
/// `scripts/test` installs the package; `scripts/jetstream-events.py` (nats-py) reads the streams.
public final class NATSCluster: Sendable {
    public static let binary = "/usr/sbin/nats-server"
    public static var available: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    public struct Node: Sendable {
        public let name: String
        public let clientPort: Int
        public let routePort: Int
        public let mqttPort: Int
    }

    public let nodes: [Node]
    public let directory: String
    private let processes: Mutex<[Process?]>

    /// `size` 1: one server, no cluster (what a single-broker test needs).
    public init(size: Int = 3) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-nats-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var nodes: [Node] = []
        var taken: Set<Int> = []
        func port() throws -> Int {
            // Three ports per node are picked before any node binds: never hand out one twice.
            while true {
                let candidate = try LoopbackPort.free()
                if taken.insert(candidate).inserted { return candidate }
            }
        }
        for index in 0..<size {
            nodes.append(Node(name: "n\(index)", clientPort: try port(), routePort: try port(), mqttPort: try port()))
        }
        self.nodes = nodes
        processes = Mutex(Array(repeating: nil, count: size))
        for node in nodes {
            let routes = nodes.filter { $0.name != node.name }.map { "nats-route://127.0.0.1:\($0.routePort)" }
            // One node is a plain server: JetStream refuses a cluster without routes.
            let cluster = size == 1 ? "" : """
                cluster {
                  name: gatehouse-district
                  listen: 127.0.0.1:\(node.routePort)
                  routes: [\(routes.joined(separator: ", "))]
                }
                """
            let config = """
                server_name: \(node.name)
                listen: 127.0.0.1:\(node.clientPort)
                log_file: "\(directory)/\(node.name).log"
                jetstream { store_dir: "\(directory)/\(node.name)" }
                \(cluster)
                mqtt {
                  listen: 127.0.0.1:\(node.mqttPort)
                  # $MQTT_msgs (where a QoS 1 PUBLISH is stored before its PUBACK) and the session
                  # streams on all three nodes, so one node lost keeps a quorum.
                  stream_replicas: \(size)
                }

                """
            try config.write(toFile: "\(directory)/\(node.name).conf", atomically: true, encoding: .utf8)
        }
    }

    /// `nats://…` URLs of every node, comma-separated, for a client that fails over.
    public var servers: String { nodes.map { "nats://127.0.0.1:\($0.clientPort)" }.joined(separator: ",") }

    /// Starts every node and waits (bounded) until each accepts client and MQTT connections.
    public func start() async throws {
        for index in nodes.indices { try launch(index) }
        for index in nodes.indices { try await waitUntilListening(index) }
    }

    /// Starts one node again (same ports, same store) after `kill(node:)`.
    public func start(node index: Int) async throws {
        try launch(index)
        try await waitUntilListening(index)
    }

    /// SIGKILL: the node crashes with whatever it had not written.
    public func kill(node index: Int) {
        guard let process = processes.withLock({ p -> Process? in defer { p[index] = nil }; return p[index] }) else { return }
        end(process, signal: SIGKILL)
    }

    public func log(node index: Int) -> String {
        (try? String(contentsOfFile: "\(directory)/\(nodes[index].name).log", encoding: .utf8)) ?? ""
    }

    /// Waits (bounded) until the cluster takes a QoS 1 PUBLISH on `node`'s MQTT port — the first
    /// MQTT connection also makes the MQTT streams — and returns whether it did.
    public func waitUntilMQTTStores(node index: Int = 0) async -> Bool {
        let port = nodes[index].mqttPort
        return await eventually(timeout: .seconds(120), poll: .milliseconds(500)) {
            try await ChildProcess.run("/usr/bin/mosquitto_pub", [
                "-V", "mqttv311", "-h", "127.0.0.1", "-p", "\(port)", "-q", "1", "-i", "district-hello",
                "-t", "district/hello", "-m", "hello",
            ], timeout: .seconds(30)).status == 0
        }
    }

    /// Runs `scripts/jetstream-events.py ARGS --servers …` and returns what it printed.
    public func jetstream(_ arguments: [String], timeout: Double = 300) async throws -> String {
        let script = repositoryRoot.appendingPathComponent("scripts/jetstream-events.py").path
        let result = try await ChildProcess.run(
            "/usr/bin/env", ["python3", script] + arguments + ["--servers", servers], timeout: .milliseconds(Int64(timeout * 1000)))
        guard result.status == 0 else {
            throw MosquittoBroker.BrokerError(message: "jetstream-events.py \(arguments.first ?? "") failed (status \(result.status)): \(result.stderr.suffix(2000))")
        }
        return result.stdout
    }

    deinit {
        for index in nodes.indices { kill(node: index) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func launch(_ index: Int) throws {
        let server = Process()
        server.executableURL = URL(fileURLWithPath: Self.binary)
        server.arguments = ["-c", "\(directory)/\(nodes[index].name).conf"]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        processes.withLock { $0[index] = server }
    }

    private func waitUntilListening(_ index: Int) async throws {
        let node = nodes[index]
        guard await eventually(timeout: .seconds(60), poll: .milliseconds(50), {
            MosquittoBroker.accepts(port: node.clientPort) && MosquittoBroker.accepts(port: node.mqttPort)
        }) else {
            throw MosquittoBroker.BrokerError(message: "nats-server \(node.name) did not listen; log: \(log(node: index).suffix(3000))")
        }
    }
}
