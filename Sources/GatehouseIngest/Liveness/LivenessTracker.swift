import GatehouseCore

/// One camera's liveness state machine (camera notes §5): `unknown → online ⇄ offline` with
/// hysteresis (`failures_to_offline` failed probes in a row, `successes_to_online` answered ones)
/// and a minimum dwell between announced changes. Pure and `Codable`: the monitor stores it with
/// the event it caused, so a restart resumes the same streaks and announces nothing twice.
struct LivenessTracker: Codable, Equatable, Sendable {
    enum State: String, Codable, Sendable { case unknown, online, offline }

    var state = State.unknown
    /// When the current state's streak began (its first probe): the announced event's `occurredAt`.
    var since: Timestamp?
    /// When the last change was decided, for the dwell.
    var changedAt: Timestamp?
    var consecutiveFailures = 0
    var failureStreakStart: Timestamp?
    var consecutiveSuccesses = 0
    var successStreakStart: Timestamp?
    var lastSuccessAt: Timestamp?
    /// The failure class of the streak's last failed probe, and its words.
    var lastProblem: LivenessProblem?
    var lastDetail: String?

    enum Transition: Equatable, Sendable {
        /// Offline since the streak's first failed probe.
        case offline(since: Timestamp, problem: LivenessProblem, detail: String, consecutiveFailures: Int, lastSuccessAt: Timestamp?)
        /// Online since the streak's first answered probe; `downSince` when it had been offline.
        case online(since: Timestamp, downSince: Timestamp?)
    }

    /// Takes one probe's verdict at `now`; returns the change to announce, if any.
    mutating func observe(_ result: LivenessProbeResult, at now: Timestamp, settings: CameraLiveness) -> Transition? {
        lastDetail = result.detail
        if result.alive {
            lastProblem = result.problem
            lastSuccessAt = now
            consecutiveFailures = 0
            failureStreakStart = nil
            if consecutiveSuccesses == 0 { successStreakStart = now }
            consecutiveSuccesses += 1
            guard state != .online, consecutiveSuccesses >= settings.successesToOnline, dwelt(now, settings) else { return nil }
            let start = successStreakStart ?? now
            let downSince = state == .offline ? since : nil
            enter(.online, since: start, at: now)
            return .online(since: start, downSince: downSince)
        }
        let problem = result.problem ?? .protocolError
        lastProblem = problem
        consecutiveSuccesses = 0
        successStreakStart = nil
        if consecutiveFailures == 0 { failureStreakStart = now }
        consecutiveFailures += 1
        guard state != .offline, consecutiveFailures >= settings.failuresToOffline, dwelt(now, settings) else { return nil }
        let start = failureStreakStart ?? now
        enter(.offline, since: start, at: now)
        return .offline(since: start, problem: problem, detail: result.detail, consecutiveFailures: consecutiveFailures, lastSuccessAt: lastSuccessAt)
    }

    /// The first decision (from `unknown`) is never held back; later ones wait out the dwell.
    private func dwelt(_ now: Timestamp, _ settings: CameraLiveness) -> Bool {
        guard let changedAt else { return true }
        return Double(now.milliseconds - changedAt.milliseconds) / 1000 >= settings.minDwellSeconds
    }

    private mutating func enter(_ new: State, since start: Timestamp, at now: Timestamp) {
        state = new
        since = start
        changedAt = now
    }
}
