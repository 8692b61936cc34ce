// `--threads`: the CPU thread count, on every command that computes (CPUPacing decides when it is not given).
import ArgumentParser
import Torch

struct CPUOptions: ParsableArguments {
    @Option(help: "CPU threads for libtorch (default: automatic, one per core that other processes leave free, re-checked as it runs, held for a training run and reused by its --resume; INKWELL_THREADS or OMP_NUM_THREADS also fix it).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1 (got \(threads))") }
    }

    /// `--threads N` for processes this one starts (data-parallel ranks), when it was given.
    var forwarded: [String] { threads.map { ["--threads", String($0)] } ?? [] }
}

/// A command with `--threads`; `Inkwell.main` hands it to CPUPacing before the command runs.
protocol ComputingCommand {
    var cpu: CPUOptions { get }
}
