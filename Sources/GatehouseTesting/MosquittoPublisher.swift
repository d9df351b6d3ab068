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
    ) throws -> Int32 {
        let pub = Process()
        pub.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_pub")
        var arguments = ["-h", "127.0.0.1", "-p", "\(port)", "-V", "mqttv311", "-q", "1", "-i", clientID, "-t", topic, "-l"]
        if let username { arguments += ["-u", username] }
        if let password { arguments += ["-P", password] }
        pub.arguments = arguments
        let input = Pipe()
        pub.standardInput = input
        pub.standardOutput = FileHandle.nullDevice
        pub.standardError = FileHandle.nullDevice
        try pub.run()
        input.fileHandleForWriting.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        try input.fileHandleForWriting.close()
        // Bounded wait (not waitUntilExit, which was seen hanging on Linux): 10 minutes for big batches.
        for _ in 0..<60_000 where pub.isRunning { usleep(10_000) }
        if !pub.isRunning { return pub.terminationStatus }
        end(pub, signal: SIGKILL)
        return -1
    }
}
