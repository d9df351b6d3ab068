import Foundation

/// `mosquitto_pub` as a device: publishes lines at QoS 1 to a broker on 127.0.0.1. It returns
/// once the process exited, which at QoS 1 means the broker acknowledged every message.
public enum MosquittoPublisher {
    /// Publishes each of `lines` as one message on `topic`; returns the exit status (0: all
    /// acknowledged by the broker). `-l` reads the lines from stdin over one connection.
    @discardableResult
    public static func publish(
        port: Int, topic: String, lines: [String], clientID: String = "gatehouse-test-device", username: String? = nil,
        password: String? = nil
    ) async throws -> Int32 {
        var arguments = ["-h", "127.0.0.1", "-p", "\(port)", "-V", "mqttv311", "-q", "1", "-i", clientID, "-t", topic, "-l"]
        if let username { arguments += ["-u", username] }
        if let password { arguments += ["-P", password] }
        // Bounded: 10 minutes for big batches (-1 past it).
        return try await ChildProcess.run(
            "/usr/bin/mosquitto_pub", arguments, input: Data((lines.joined(separator: "\n") + "\n").utf8), timeout: .seconds(600)
        ).status
    }
}
