import GatehouseCore

/// Why a picture is unusable, in the order one is named the reason when several apply.
public enum PictureProblem: String, Codable, Sendable, CaseIterable {
    /// Uniform: a covered, sprayed or black lens shows nothing.
    case covered
    case tooDark = "too-dark"
    /// No change across snapshots while the camera claims to stream.
    case frozen
    /// Sharpness well below the camera's own baseline (or the configured minimum).
    case blurred
}

/// One camera's picture health, decided snapshot by snapshot: a sharpness baseline learned from
/// the camera's first `learn_hours`, and hysteresis (`raise_after` bad snapshots in a row to
/// raise, `clear_after` good ones to clear). Pure and `Codable`: the monitor persists it after
/// every snapshot, so a restart neither forgets the baseline nor re-announces a degradation.
public struct PictureHealthJudge: Codable, Sendable, Equatable {
    /// An open degradation.
    public struct Degradation: Codable, Sendable, Equatable {
        public var reason: PictureProblem
        /// The first bad snapshot of the streak that raised it.
        public var since: Timestamp
    }

    /// What a snapshot changed.
    public enum Transition: Sendable, Equatable {
        case degraded(Degradation, problems: [PictureProblem])
        case restored(Degradation, at: Timestamp)
    }

    /// Most sharpness samples kept while learning (72 h at 10 min is 432).
    static let maximumSamples = 1024

    /// When the first snapshot was scored: learning runs `learn_hours` from here.
    public private(set) var learningSince: Timestamp?
    /// Sharpness of the snapshots seen while learning that showed no other problem.
    public private(set) var samples: [Double] = []
    /// The median of `samples` once learning ended.
    public private(set) var baseline: Double?
    public private(set) var badStreak = 0
    public private(set) var goodStreak = 0
    private var streakStart: Timestamp?
    public private(set) var degradation: Degradation?

    public init() {}

    /// The sharpness below which the picture counts as blurred: the configured minimum, else a
    /// fraction of the baseline (provisionally of the median so far, from six samples on).
    public func blurLimit(_ settings: CameraPictureHealth) -> Double? {
        if let minimum = settings.minSharpness { return minimum }
        if let baseline { return baseline * settings.blurFraction }
        guard samples.count >= 6 else { return nil }
        return Self.median(samples) * settings.blurFraction
    }

    /// The problems `scores` show, most telling first.
    public func problems(_ scores: PictureScores, _ settings: CameraPictureHealth) -> [PictureProblem] {
        var problems: [PictureProblem] = []
        let covered = scores.contrast < settings.uniformBelow
        let dark = scores.brightness < settings.darkBelow
        if covered { problems.append(.covered) }
        if dark { problems.append(.tooDark) }
        // A uniform picture never changes, and a dark or uniform one has no edges to measure.
        if !covered, let change = scores.change, change < settings.frozenChangeBelow { problems.append(.frozen) }
        if !covered, !dark, let limit = blurLimit(settings), scores.sharpness < limit { problems.append(.blurred) }
        return problems
    }

    /// Takes one snapshot's scores at `now`; returns the transition it caused, if any.
    public mutating func observe(_ scores: PictureScores, at now: Timestamp, settings: CameraPictureHealth) -> Transition? {
        learn(scores, at: now, settings: settings)
        let problems = problems(scores, settings)
        if let reason = problems.first {
            if badStreak == 0 { streakStart = now }
            badStreak += 1
            goodStreak = 0
            guard degradation == nil, badStreak >= settings.raiseAfter else { return nil }
            let opened = Degradation(reason: reason, since: streakStart ?? now)
            degradation = opened
            return .degraded(opened, problems: problems)
        }
        if goodStreak == 0 { streakStart = now }
        goodStreak += 1
        badStreak = 0
        guard let open = degradation, goodStreak >= settings.clearAfter else { return nil }
        degradation = nil
        return .restored(open, at: streakStart ?? now)
    }

    private mutating func learn(_ scores: PictureScores, at now: Timestamp, settings: CameraPictureHealth) {
        guard baseline == nil, settings.minSharpness == nil else { return }
        let start = learningSince ?? now
        learningSince = start
        let usable = scores.contrast >= settings.uniformBelow && scores.brightness >= settings.darkBelow
            && (scores.change.map { $0 >= settings.frozenChangeBelow } ?? true)
        let learning = now.milliseconds - start.milliseconds < Int64(settings.learnHours * 3_600_000)
        if usable, learning || samples.isEmpty, samples.count < Self.maximumSamples { samples.append(scores.sharpness) }
        if !learning, !samples.isEmpty {
            baseline = Self.median(samples)
            samples = []
        }
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}
