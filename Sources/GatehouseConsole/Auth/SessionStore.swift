import Crypto
import Foundation
import GatehouseCore
import Synchronization

/// Console sessions held in memory: a restart logs everyone out, which is the safe way round.
/// Each session carries its own CSRF token, which every changing form must send back.
public final class SessionStore: Sendable {
    public struct Session: Sendable, Equatable {
        public var user: String
        public var csrfToken: String
        public var expires: Timestamp
    }

    private let sessions = Mutex<[String: Session]>([:])
    private let clock: any TimerClock
    private let lifetimeSeconds: Double

    public init(clock: any TimerClock, lifetimeMinutes: Double) {
        self.clock = clock
        self.lifetimeSeconds = lifetimeMinutes * 60
    }

    /// A new session for `user`; returns its cookie token.
    public func open(user: String) -> (token: String, session: Session) {
        let now = clock.now
        let session = Session(
            user: user, csrfToken: Self.randomToken(), expires: Timestamp(milliseconds: now.milliseconds + Int64(lifetimeSeconds * 1000)))
        let token = Self.randomToken()
        sessions.withLock { all in
            // Expired sessions go whenever a new one opens, so the table cannot grow without bound.
            all = all.filter { $0.value.expires.milliseconds > now.milliseconds }
            all[token] = session
        }
        return (token, session)
    }

    /// The live session behind a cookie token, or nil when unknown or expired.
    public func session(token: String?) -> Session? {
        guard let token else { return nil }
        let now = clock.now
        return sessions.withLock { all in
            guard let session = all[token] else { return nil }
            guard session.expires.milliseconds > now.milliseconds else {
                all[token] = nil
                return nil
            }
            return session
        }
    }

    public func close(token: String?) {
        guard let token else { return }
        _ = sessions.withLock { $0.removeValue(forKey: token) }
    }

    /// 256 random bits, base64url without padding (valid in a cookie and a form field).
    static func randomToken() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
