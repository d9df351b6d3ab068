import GatehouseCore
import Synchronization

/// Slows password guessing: after `maxFailures` wrong passwords in a row for one user name, that
/// name is refused for `lockSeconds` on the console's clock, whatever the password.
public final class LoginThrottle: Sendable {
    struct Record {
        var failures = 0
        var lockedUntil: Timestamp?
    }

    private let records = Mutex<[String: Record]>([:])
    private let clock: any TimerClock
    let maxFailures: Int
    let lockSeconds: Double

    public init(clock: any TimerClock, maxFailures: Int = 5, lockSeconds: Double = 60) {
        self.clock = clock
        self.maxFailures = maxFailures
        self.lockSeconds = lockSeconds
    }

    /// Seconds left while `name` is locked out; nil when it may try.
    public func lockedFor(_ name: String) -> Double? {
        let now = clock.now
        return records.withLock { all in
            guard let until = all[name]?.lockedUntil else { return nil }
            guard until.milliseconds > now.milliseconds else {
                all[name] = nil
                return nil
            }
            return Double(until.milliseconds - now.milliseconds) / 1000
        }
    }

    public func failed(_ name: String) {
        let now = clock.now
        records.withLock { all in
            // Bounded: names nobody configured would otherwise grow the table forever.
            if all.count > 10_000 { all = all.filter { $0.value.lockedUntil != nil } }
            var record = all[name] ?? Record()
            record.failures += 1
            if record.failures >= maxFailures {
                record.failures = 0
                record.lockedUntil = Timestamp(milliseconds: now.milliseconds + Int64(lockSeconds * 1000))
            }
            all[name] = record
        }
    }

    public func succeeded(_ name: String) {
        _ = records.withLock { $0.removeValue(forKey: name) }
    }
}
