// The trainer's side of status.json (RunFiles' TrainerStatus): "running" when a session starts, again at
// most every `interval` seconds from the training loop, the validation pass, sample rendering and latent
// caching (the heartbeat), and the final state when the session ends. A beat between writes is a clock
// read, so the hooks cost nothing measurable. A status that cannot be written never stops training: it is
// a report about the run, not part of it.
import Foundation
import RunFiles

struct TrainerHeartbeat {
    let folder: RunFolder
    let totalSteps: Int
    let interval: TimeInterval
    let startedAt = Date()
    /// Training time of earlier sessions, and when this session's training time began (after caching).
    var secondsBefore: Double
    var trainingStarted: Date?
    /// The step and time the rate is measured from: the start of this session's training loop.
    var origin: (step: Int, at: Date)?
    var step: Int
    private var lastWrite = Date.distantPast
    /// Files written so far (the tests check the throttle with it).
    private(set) var writes = 0

    init(folder: RunFolder, step: Int, totalSteps: Int, secondsBefore: Double, interval: TimeInterval) {
        self.folder = folder
        self.step = step
        self.totalSteps = totalSteps
        self.secondsBefore = secondsBefore
        self.interval = interval
    }

    /// Writes the status now when `interval` has passed since the last write.
    mutating func beat(step: Int? = nil) {
        if let step { self.step = step }
        let now = Date()
        guard now.timeIntervalSince(lastWrite) >= interval else { return }
        write(.running, now: now)
    }

    /// Writes `state` now, whatever the interval (the session's start and end).
    mutating func write(_ state: TrainerStatus.State, now: Date = Date()) {
        let elapsed = secondsBefore + (trainingStarted.map { now.timeIntervalSince($0) } ?? 0)
        var rate: Double?
        if let origin, step > origin.step, now > origin.at {
            rate = Double(step - origin.step) / now.timeIntervalSince(origin.at)
        }
        let eta = state == .running ? rate.map { Double(max(0, totalSteps - step)) / $0 } : nil
        let status = TrainerStatus(state: state, step: step, totalSteps: totalSteps, stepsPerSecond: rate, etaSeconds: eta,
                                   elapsedSeconds: elapsed, startedAt: startedAt, heartbeat: now)
        try? status.write(folder)
        lastWrite = now
        writes += 1
    }
}
