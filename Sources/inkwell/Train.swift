// `inkwell train`: LoRA training from a TOML config (see README), Ctrl-C safe and resumable.
import ArgumentParser
import Foundation
import Glibc
import Evaluation
import RunFiles
import StableDiffusion
import Torch
import Training

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a LoRA on a prepared dataset (validation loss, samples, checkpoints, resume).")

    @Option(help: "The training config (TOML).") var config: String
    @Option(name: .customLong("set"), help: "Override a config key: section.key=value (repeatable).") var overrides: [String] = []
    @Flag(help: "Continue the run's saved state.") var resume = false
    @Flag(help: "Delete the run's folder and start over.") var restart = false

    /// The command that continues this run, as a shell takes it.
    var resumeCommand: String {
        (["inkwell", "train", "--config", self.config] + overrides.flatMap { ["--set", $0] } + ["--resume"])
            .map(shellQuoted).joined(separator: " ")
    }

    func run() throws {
        let config = try TrainingConfig.load(URL(fileURLWithPath: self.config), overrides: overrides)
        let runDirectory = config.runDirectory
        let fm = FileManager.default
        if restart { try? fm.removeItem(at: runDirectory) }
        let hasState = fm.fileExists(atPath: runDirectory.appendingPathComponent("state").path)
        if hasState && !resume {
            throw ValidationError("\(runDirectory.path) has a saved run: pass --resume to continue it or --restart to start over")
        }
        let dtype = config.training.weightDType
        let device = try chooseDevice(config.model.device, setting: "model.device", dtype: dtype,
                                      dtypeSetting: "training.mixed_precision")
        let source = try ModelSource(path: config.model.path)
        say("loading \(source.url.path) on \(device) (\(dtype))…")
        let pipeline = try StableDiffusionPipeline.load(source, device: device, dtype: dtype, variant: config.model.variant,
                                                        tokenizer: config.model.tokenizer.map { URL(fileURLWithPath: $0) },
                                                        vaeDType: .float32)
        let dataset = URL(fileURLWithPath: config.data.dataset)
        let examples = try TrainingDataset.examples(dataset: dataset, config: config)
        let validationCount = examples.filter(\.isValidation).count
        say("dataset \(dataset.path): \(examples.count - validationCount) training, \(validationCount) validation images, captions: \(config.data.captions)")
        let trainer = try LoRATrainer(config: config, examples: examples, pipeline: pipeline,
                                      modelIdentity: try TrainingDataset.identity(of: source),
                                      cacheDirectory: dataset.appendingPathComponent("cache/latents"))

        if config.samples.clipScore, let folder = config.samples.clipModel {
            let scorer = try CLIPScore.load(directory: URL(fileURLWithPath: folder), device: device)
            trainer.clipScorer = { images, prompts in try scorer.score(images: images, prompts: prompts) }
        }
        // Polled after every step: the trainer then saves its state.
        let interruption = Interruption.install()
        let bar = ProgressLine(total: config.training.maxSteps, label: "step")
        var lastValidation = "-"
        do {
            let summary = try trainer.run(resume: resume, shouldStop: { interruption.requested },
                                            stopSignal: { interruption.signalName }) { event in
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
            if summary.interrupted { say("to continue: \(resumeCommand)") }
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

/// `text` as one shell word: as it is when it is plain, else in single quotes.
func shellQuoted(_ text: String) -> String {
    let plain = !text.isEmpty && text.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }
    return plain ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
