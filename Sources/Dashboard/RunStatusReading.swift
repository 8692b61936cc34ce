// A run's status as the page shows it. status.json (RunFiles' TrainerStatus) is the trainer's own word;
// a "running" in it is believed only while its heartbeat is fresh and, when the trainer ran on this host,
// while its process exists: a trainer killed outright (SIGKILL, out of memory, power) cannot write its end,
// so its status is shown as not responding since its last heartbeat. Runs from before status.json fall
// back to the log's age, and say that it is a guess.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import RunFiles

extension RunReader {
    func status(_ run: RunLocation, rows: [TrainingLogRow]) -> RunStatusReport {
        guard let file = TrainerStatus.read(run.folder) else { return guessedStatus(run, rows: rows) }
        var unresponsive: TrainerStatusInfo.Unresponsive?
        let status: RunStatus
        switch file.state {
        case .running:
            if now().timeIntervalSince(file.heartbeat) > staleAfter {
                unresponsive = .staleHeartbeat
            } else if file.host == TrainerStatus.currentHost && !Self.processExists(file.pid) {
                unresponsive = .processGone
            }
            status = unresponsive == nil ? .training : .notResponding
        case .stopped: status = .stopped
        case .finished: status = .finished
        case .failed: status = .failed
        }
        return RunStatusReport(status: status, guessed: false, trainer: TrainerStatusInfo(file, unresponsive: unresponsive))
    }

    /// Before status.json: finished when the final checkpoint exists, training while the log changed in the
    /// last `liveWindow` seconds, stopped otherwise.
    func guessedStatus(_ run: RunLocation, rows: [TrainingLogRow]) -> RunStatusReport {
        if run.folder.isFinished { return RunStatusReport(status: .finished, guessed: false) }
        if rows.isEmpty { return RunStatusReport(status: .new, guessed: false) }
        let updated = modified(run.folder.log)
        let live = updated.map { now().timeIntervalSince($0) < liveWindow } ?? false
        return RunStatusReport(status: live ? .training : .stopped, guessed: true)
    }

    /// Whether a process with this id exists here (EPERM: it does, under another user).
    static func processExists(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }
}
