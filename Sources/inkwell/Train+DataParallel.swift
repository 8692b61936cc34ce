// `inkwell train` as one of several data-parallel ranks: started by `--nproc N` (RankLauncher) or by torchrun
// (`torchrun --nproc-per-node N --no-python inkwell train --config …`), both of which describe the rank in the
// environment (LaunchEnvironment). Rank 0 prints and writes the run's files; the others only compute.
import ArgumentParser
import Foundation
import Glibc
import RunFiles
import Torch
import Training

extension ProcessGroup.Backend: ExpressibleByArgument {}

extension Train {
    /// `--nproc N`: checks the config once, then starts N ranks of this same command and waits for them.
    func launchRanks(_ count: Int) throws {
        guard count >= 1 else { throw ValidationError("--nproc must be at least 1, got \(count)") }
        guard try LaunchEnvironment.read() == nil else {
            throw ValidationError("--nproc starts the ranks itself, but RANK / WORLD_SIZE are already set (torchrun?): leave --nproc out there")
        }
        guard distTimeout > 0 else { throw ValidationError("--dist-timeout must be positive, got \(distTimeout)") }
        let config = try TrainingConfig.load(URL(fileURLWithPath: self.config), overrides: overrides)
        // Done here once, not by N ranks at the same time.
        if restart { try? FileManager.default.removeItem(at: config.runDirectory) }
        let hasState = FileManager.default.fileExists(atPath: config.runDirectory.appendingPathComponent("state").path)
        if hasState && !resume {
            throw ValidationError("\(config.runDirectory.path) has a saved run: pass --resume to continue it or --restart to start over")
        }
        if hasState && resume { try checkResumable(config, worldSize: count) }
        _ = try preflight(config, file: self.config)
        let backend = try self.backend(config)
        let arguments = ["train", "--config", self.config] + overrides.flatMap { ["--set", $0] } + (resume ? ["--resume"] : [])
            + ["--dist-timeout", String(distTimeout), "--dist-backend", backend.rawValue] + cpu.forwarded
        say("starting \(count) data-parallel ranks (\(backend), 127.0.0.1)")
        // Quiet: rank 0 says what a signal does, for all; a second one quits the launcher and, relayed, the ranks.
        let interruption = Interruption.install(quiet: true)
        let outcome = try RankLauncher(executable: try RankLauncher.currentExecutable(), arguments: arguments, count: count)
            .run(relay: interruption.relay(to:))
        if outcome.status != 0 { throw ExitCode(outcome.status) }
    }

    /// `--dist-backend`, else torch's default for the config's device: NCCL on CUDA, Gloo on the CPU. NCCL on a CPU
    /// run, or in a build without NCCL, is refused here, before any rank waits for another.
    func backend(_ config: TrainingConfig) throws -> ProcessGroup.Backend {
        // A device setting that does not resolve is the preflight's to report; Gloo works everywhere meanwhile.
        let device = (try? DeviceChoice.resolve(config.model.device, setting: "model.device")) ?? .cpu
        let backend = distBackend ?? .default(for: device)
        if backend == .nccl {
            guard case .cuda = device else {
                throw ValidationError("--dist-backend nccl needs CUDA GPUs, but model.device is \(device): use --dist-backend gloo (the default on the CPU)")
            }
            guard ProcessGroup.Backend.built.contains(.nccl) else {
                throw ValidationError("--dist-backend nccl: this Inkwell was built without NCCL (a libtorch without CUDA, or CUDA's and "
                    + "NCCL's headers were missing at build time: run scripts/bootstrap.sh, then rebuild); use --dist-backend gloo")
            }
        }
        return backend
    }

    /// The process group this rank belongs to, when a launcher (torchrun, `--nproc`) placed it in the environment:
    /// a group of one too, as torch.distributed makes it (the same training, through the same collectives).
    func joinProcessGroup(_ config: TrainingConfig) throws -> ProcessGroup? {
        guard let launch = try LaunchEnvironment.read() else { return nil }
        guard distTimeout > 0 else { throw ValidationError("--dist-timeout must be positive, got \(distTimeout)") }
        let backend = try self.backend(config)
        let group = try ProcessGroup(host: launch.masterAddress, port: launch.masterPort, rank: launch.rank,
                                     worldSize: launch.worldSize, hostsStore: launch.hostsStore, prefix: launch.storePrefix,
                                     timeout: distTimeout, backend: backend, cudaDevice: launch.localRank)
        if launch.rank == 0 {
            say("rank 0 of \(launch.worldSize): process group (\(backend)) at \(launch.masterAddress):\(launch.masterPort)")
        } else {
            // Rank 0 reports for all; the others' errors still reach stderr.
            let null = open("/dev/null", O_WRONLY)
            if null >= 0 {
                dup2(null, STDOUT_FILENO)
                close(null)
            }
        }
        return group
    }
}
