import Foundation

/// SIPp (Debian `sip-tester`, installed by scripts/test) playing one scenario of ours against a
/// SIP port on loopback: one call (`-m 1`), bounded by SIPp's own `-timeout`.
public enum Sipp {
    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs `scenario` (a file under scripts/sipp/) against 127.0.0.1:`port`; returns SIPp's exit
    /// code (0: every call succeeded) and what it printed.
    public static func run(
        scenario: String, port: Int, transport: String = "u1", username: String, password: String, timeoutSeconds: Int = 30
    ) async throws -> (status: Int32, output: String) {
        guard let sipp = ["/usr/bin/sipp", "/usr/local/bin/sipp"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw Unavailable(description: "sipp is not installed (Debian package sip-tester; scripts/test installs it)")
        }
        let path = repositoryRoot.appendingPathComponent("scripts/sipp/\(scenario)").path
        let arguments = [
            "-sf", path, "-i", "127.0.0.1", "-p", "0", "-t", transport, "-au", username, "-ap", password, "-m", "1",
            "-timeout", "\(timeoutSeconds)s", "-timeout_error", "-recv_timeout", "\(timeoutSeconds * 1000)", "-nostdin", "-trace_err",
            "-error_file", NSTemporaryDirectory() + "sipp-\(UUID().uuidString.prefix(8)).log", "127.0.0.1:\(port)",
        ]
        // SIPp's own -timeout ends the call; the bound here only catches a SIPp that hangs.
        let result = try await ChildProcess.run(sipp, arguments, timeout: .seconds(Int64(timeoutSeconds) * 3 + 30))
        return (result.status, result.stdout + result.stderr)
    }
}
