// `inkwell train`: LoRA training from a TOML config (see README), Ctrl-C safe and resumable.
import ArgumentParser
import Foundation
import HubCache
import Glibc
import Evaluation
import RunFiles
import StableDiffusion
import Torch
import Training

struct Train: ParsableCommand, ComputingCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a LoRA on a prepared dataset (validation loss, samples, checkpoints, resume).")

    @Option(help: "The training config (TOML).") var config: String
    @Option(name: .customLong("set"), help: "Override a config key: section.key=value (repeatable).") var overrides: [String] = []
    @Flag(help: "Continue the run's saved state.") var resume = false
    @Flag(help: "Delete the run's folder and start over.") var restart = false
    @Option(help: "Train data-parallel on N processes of this machine (as torchrun --nproc-per-node N); training.batch_size is per process.")
    var nproc: Int?
    @Option(help: "Seconds a data-parallel rank waits for the others (rendezvous, each step's all-reduce) before it fails.")
    var distTimeout: Double = 1800
    @Option(help: "The data-parallel ranks' c10d backend: nccl (CUDA GPUs, one per rank) or gloo (CPUs; GPUs through the host). Default: nccl on CUDA, gloo on the CPU.")
    var distBackend: ProcessGroup.Backend?

    /// The command that continues this run, as a shell takes it. Ranks that torchrun started (`byTorchrun`) are
    /// started by it again, with its own flags, which this process does not know.
    func resumeCommand(worldSize: Int = 1, byTorchrun: Bool = false) -> String {
        let torchrun = byTorchrun && worldSize > 1
        let train = (["inkwell", "train", "--config", self.config] + overrides.flatMap { ["--set", $0] } + ["--resume"]
            + (worldSize > 1 && !torchrun ? ["--nproc", String(worldSize)] : []))
            .map(shellQuoted).joined(separator: " ")
        return torchrun ? "torchrun … --no-python \(train), with the same \(worldSize) ranks" : train
    }

    @OptionGroup var cpu: CPUOptions

    func run() throws {
        if let nproc { return try launchRanks(nproc) }
        if let distBackend, try LaunchEnvironment.read() == nil {
            throw ValidationError("--dist-backend \(distBackend) is for data-parallel ranks: add --nproc N, or start the command with torchrun")
        }
        let config = try TrainingConfig.load(URL(fileURLWithPath: self.config), overrides: overrides)
        let runDirectory = config.runDirectory
        let fm = FileManager.default
        let followsLauncher = RankLauncher.followLauncher()  // --nproc's ranks stop when their launcher dies
        let group = try joinProcessGroup(config)
        let rank = group?.rank ?? 0
        if restart && rank == 0 { try? fm.removeItem(at: runDirectory) }
        try group?.barrier()
        let hasState = fm.fileExists(atPath: runDirectory.appendingPathComponent("state").path)
        if hasState && !resume {
            throw ValidationError("\(runDirectory.path) has a saved run: pass --resume to continue it or --restart to start over")
        }
        if hasState && resume { try checkResumable(config, worldSize: group?.worldSize ?? 1) }
        let dtype = config.training.weightDType
        var (device, examples) = try preflight(config, file: self.config)
        if let group, case .cuda = device, let local = try LaunchEnvironment.read()?.localRank {
            guard local < Device.cudaDeviceCount else {
                throw CommandError("LOCAL_RANK=\(local), but this machine has \(Device.cudaDeviceCount) CUDA GPU(s): start at most "
                    + "one rank per GPU (--nproc, or torchrun's --nproc-per-node), or set model.device = \"cpu\"")
            }
            device = .cuda(local)  // one GPU per rank, as torchrun's LOCAL_RANK says
            if rank == 0 { say("\(group.worldSize) data-parallel ranks, one GPU each") }
        }
        let source = try ModelSource(path: config.model.path, variant: config.model.variant)
        say("loading \(source.url.path) on \(device) (\(dtype))…")
        let pipeline = try StableDiffusionPipeline.load(source, device: device, dtype: dtype, variant: config.model.variant,
                                                        tokenizer: config.model.tokenizer.map { URL(fileURLWithPath: $0) },
                                                        vaeDType: .float32)
        let dataset = URL(fileURLWithPath: config.data.dataset)
        let validationCount = examples.filter(\.isValidation).count
        say("dataset \(dataset.path): \(examples.count - validationCount) training, \(validationCount) validation images, captions: \(config.data.captions)")
        let trainer = try LoRATrainer(config: config, examples: examples, pipeline: pipeline,
                                      modelIdentity: try TrainingDataset.identity(of: source),
                                      cacheDirectory: dataset.appendingPathComponent("cache/latents"))
        trainer.dataParallel = group.map(DataParallel.init)

        if config.samples.clipScore, let folder = config.samples.clipModel {
            let scorer = try CLIPScore.load(directory: try ModelLocation.resolve(folder), device: device)
            trainer.clipScorer = { images, prompts in try scorer.score(images: images, prompts: prompts) }
        }
        // Polled between steps and inside latent caching, validation and samples: the trainer then saves its state.
        let interruption = Interruption.install(stopOnce: followsLauncher ? [RankLauncher.launcherDiedSignal] : [], quiet: rank != 0)
        let bar = ProgressLine(total: config.training.maxSteps, label: "step")
        var lastValidation = "-"
        do {
            let summary = try trainer.run(resume: resume, shouldStop: { interruption.requested },
                                            stopSignal: { interruption.signalName }) { event in
                guard rank == 0 else { return }  // the other ranks only compute; rank 0 reports for all
                switch event {
                case .message(let text): say(text)
                case .caching(let done, let total): if done == total { say("latents cached: \(total)") }
                case .step(let step, _, let loss, let smoothed, let lr):
                    bar.update(step, detail: String(format: "loss %.4f (%.4f)  lr %.2e  val %@", loss, smoothed, lr, lastValidation))
                case .validation(let step, let loss, let best):
                    lastValidation = String(format: "%.4f", loss)
                    say(String(format: "step %d: validation loss %.5f%@", step, loss, best ? " (best)" : ""))
                case .samples(let step, let folder): say("step \(step): samples in \(folder.path)")
                case .checkpoint(let url): say("saved \(url.path)")
                }
            }
            guard rank == 0 else { return }
            if summary.interrupted {
                say("to continue: \(resumeCommand(worldSize: group?.worldSize ?? 1, byTorchrun: group != nil && !followsLauncher))")
            }
            say(String(format: "%@ after %d steps in %.0f s (%.2f steps/s); best validation loss %@ at step %@",
                         summary.interrupted ? "stopped" : "finished", summary.steps, summary.seconds, summary.stepsPerSecond,
                         summary.bestValidationLoss.map { String(format: "%.5f", $0) } ?? "-",
                         summary.bestStep.map(String.init) ?? "-"))
        } catch TorchError.outOfMemory(let message) {
            throw ValidationError("""
                out of memory: \(message)
                The state after the last completed step is saved in \(runDirectory.appendingPathComponent("state").path); lower \
                training.batch_size (raise training.gradient_accumulation to keep the effective batch), use \
                training.mixed_precision = "bf16", or lower samples.size, then run again with --resume.
                """)
        }
    }
}

/// A resumed run's config against the one it was saved with: every change is listed, and those that cannot
/// continue the run (shapes, data order, the learning-rate curve) refuse it with the reason, before anything loads.
func checkResumable(_ config: TrainingConfig, worldSize: Int = 1) throws {
    let run = config.runFolder
    // A config the current version cannot read (an older Inkwell's) is not compared.
    guard let saved = try? TrainingConfig.load(run.config) else { return }
    let state = TrainerState.read(run)
    let step = state?.step ?? 0
    let diff = try ResumeChanges(saved: saved, now: config, step: step, savedWorldSize: state?.worldSize ?? 1, worldSize: worldSize)
    let refused = diff.refused
    guard refused.isEmpty else {
        throw CommandError("""
            \(run.root.path) was saved at step \(step) with another config; --resume cannot continue it with:
            \(refused.map { "  - \($0)" }.joined(separator: "\n"))
            Put these keys back as they were in \(run.config.path), or start a new run (another output.name, or --restart).
            """)
    }
    for change in diff.changes { say("changed since step \(step): \(change)") }
}

/// Everything a training config points at, and its device, checked before anything heavy runs; one error
/// lists every problem (with `more`, the caller's own). The dataset's examples when `dataset` is checked.
func preflight(_ config: TrainingConfig, file: String, dataset: Bool = true,
               more: [String] = []) throws -> (device: Device, examples: [TrainingExample]) {
    var device = Device.cpu
    var deviceProblem: String?
    do {
        device = try chooseDevice(config.model.device, setting: "model.device", dtype: config.training.weightDType,
                                  dtypeSetting: "training.mixed_precision")
    } catch {
        deviceProblem = "\(error)"
    }
    // Models the cache lacks are downloaded by the check only when nothing else is wrong.
    let check = TrainingPreflight.check(config, dataset: dataset, downloads: more.isEmpty && deviceProblem == nil)
    let problems = check.problems + more + (deviceProblem.map { [$0] } ?? [])
    if !problems.isEmpty { throw CommandError("\(file): \(PreflightError(problems))") }
    return (device, check.examples)
}

/// `text` as one shell word: as it is when it is plain, else in single quotes.
func shellQuoted(_ text: String) -> String {
    let plain = !text.isEmpty && text.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }
    return plain ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
