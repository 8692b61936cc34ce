// `inkwell pipeline --nproc N`: the pipeline's stages run in this process, its training stage on N data-parallel
// ranks, each run's training being `inkwell train --config <run>/config.toml --nproc N` started through the same
// launcher (RankLauncher). Ctrl-C / SIGTERM reach the ranks through the pipeline's own handling, which passes them
// on; the run folder then says whether the run finished or stopped with its state saved.
import ArgumentParser
import Foundation
import RunFiles
import Torch
import Training

struct PipelineRanks {
    let count: Int
    let timeout: Double
    /// `--dist-backend`, when given (each rank otherwise takes the default for its run's device).
    let backend: ProcessGroup.Backend?
    /// The pipeline's `--threads`, passed on to every rank.
    let cpu: CPUOptions

    /// Trains one run on the ranks; `interruption` (the pipeline's Ctrl-C handling) is passed on to them.
    func training(_ config: TrainingConfig, resume: Bool, interruption: Interruption) throws {
        if interruption.requested { return }  // the runner reports the stop; no rank is started to be stopped at once
        let run = config.runFolder
        try FileManager.default.createDirectory(at: run.root, withIntermediateDirectories: true)
        try Data(try config.toml().utf8).write(to: run.config, options: .atomic)
        let arguments = ["train", "--config", run.config.path, "--dist-timeout", String(timeout)] + (resume ? ["--resume"] : [])
            + (backend.map { ["--dist-backend", $0.rawValue] } ?? []) + cpu.forwarded
        let outcome = try RankLauncher(executable: try RankLauncher.currentExecutable(), arguments: arguments, count: count)
            .run(relay: interruption.relay(to:))
        if outcome.status != 0 {
            throw CommandError("training \(run.root.path) on \(count) ranks failed: \(outcome.failure ?? "status \(outcome.status)")")
        }
    }
}

/// The ranks `inkwell pipeline` trains on: nil for one process. Under torchrun every worker would run every stage
/// (prepare, caption, compare) at once, so there the pipeline is refused with what to run instead.
func pipelineRanks(_ nproc: Int?, timeout: Double, backend: ProcessGroup.Backend?, cpu: CPUOptions) throws -> PipelineRanks? {
    if try LaunchEnvironment.read() != nil {
        throw ValidationError("inkwell pipeline runs its stages once and starts the training ranks itself: run it without "
            + "torchrun, with --nproc N (or run `torchrun … inkwell train --config <run>/config.toml` for one run)")
    }
    guard let nproc, nproc > 1 else {
        if let backend { throw ValidationError("--dist-backend \(backend) is for data-parallel ranks: add --nproc N (2 or more)") }
        return nil
    }
    guard timeout > 0 else { throw ValidationError("--dist-timeout must be positive, got \(timeout)") }
    return PipelineRanks(count: nproc, timeout: timeout, backend: backend, cpu: cpu)
}
