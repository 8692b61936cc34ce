// `inkwell train` as one of several data-parallel ranks: started by `--nproc N` (RankLauncher) or by torchrun
// (`torchrun --nproc-per-node N --no-python inkwell train --config …`), both of which describe the rank in the
// environment (LaunchEnvironment). Rank 0 prints and writes the run's files; the others only compute.
import ArgumentParser
import Foundation
import Glibc
import RunFiles
import Torch
import Training

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
        let arguments = ["train", "--config", self.config] + overrides.flatMap { ["--set", $0] } + (resume ? ["--resume"] : [])
            + ["--dist-timeout", String(distTimeout)] + cpu.forwarded
        say("starting \(count) data-parallel ranks (gloo, 127.0.0.1)")
        let outcome = try RankLauncher(executable: try RankLauncher.currentExecutable(), arguments: arguments, count: count).run()
        if outcome.status != 0 { throw ExitCode(outcome.status) }
    }

    /// The process group this rank belongs to, when the environment places it in a launch of more than one rank.
    func joinProcessGroup() throws -> ProcessGroup? {
        guard let launch = try LaunchEnvironment.read(), launch.worldSize > 1 else { return nil }
        guard distTimeout > 0 else { throw ValidationError("--dist-timeout must be positive, got \(distTimeout)") }
        let group = try ProcessGroup(host: launch.masterAddress, port: launch.masterPort, rank: launch.rank,
                                     worldSize: launch.worldSize, hostsStore: launch.hostsStore, prefix: launch.storePrefix,
                                     timeout: distTimeout)
        if launch.rank == 0 {
            say("rank 0 of \(launch.worldSize): process group (gloo) at \(launch.masterAddress):\(launch.masterPort)")
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
