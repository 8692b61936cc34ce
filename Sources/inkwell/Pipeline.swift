// `inkwell pipeline` and `inkwell demo`: the whole job from one config, skipping what is up to date.
import ArgumentParser
import Foundation
import HubCache
import Glibc
import RunFiles
import StableDiffusion
import Torch
import Training
import Evaluation

struct PipelineCommand: ParsableCommand, ComputingCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "prepare → caption → train one LoRA per caption variant → compare → plot → summary, idempotently.")

    @Option(help: "The pipeline config (TOML): a [pipeline] section plus the training sections.") var config: String
    @Option(name: .customLong("set"), help: "Override a training key: section.key=value (repeatable).") var overrides: [String] = []
    @Option(help: "Train each run data-parallel on N processes of this machine (as inkwell train --nproc N).") var nproc: Int?
    @Option(help: "Seconds a data-parallel rank waits for the others before it fails.") var distTimeout: Double = 1800
    @Option(help: "The ranks' c10d backend: nccl or gloo (default: nccl on CUDA, gloo on the CPU).") var distBackend: ProcessGroup.Backend?

    @OptionGroup var cpu: CPUOptions

    func run() throws {
        try runPipeline(try PipelineConfig.load(URL(fileURLWithPath: config), overrides: overrides), file: config,
                        ranks: try pipelineRanks(nproc, timeout: distTimeout, backend: distBackend, cpu: cpu))
    }
}

struct Demo: ParsableCommand, ComputingCommand {
    static let configuration = CommandConfiguration(
        abstract: "The whole pipeline offline: LoRAs teach the committed tiny demo model bold outlines (see README).")

    @Option(help: "Working folder for the demo's models, data and runs.") var root = "demo"
    @Option(help: "The trained demo base model (made by `make demo-model`).") var baseModel = "demo-model"
    @Option(help: "Training steps per run.") var steps = 150

    @OptionGroup var cpu: CPUOptions

    func run() throws {
        let start = Date()
        let rootURL = URL(fileURLWithPath: root)
        say("Inkwell demo in \(rootURL.path): the tiny demo model in \(baseModel) (trained on thin line art by `inkwell train-base`)")
        say("learns BOLD outlines in three LoRA runs (vanilla / BLIP / BLIP+ captions). The BLIP and the CLIP are tiny with")
        say("RANDOM weights: BLIP captions are gibberish, CLIP scores are labelled \"\(DemoSetup.clipNote)\".")
        let config = try DemoSetup.prepare(root: rootURL, baseModel: URL(fileURLWithPath: baseModel), steps: steps)
        try runPipeline(config, file: "demo", clipScoreNote: DemoSetup.clipNote)
        say("\nsummary: \(config.folder.appendingPathComponent("summary.md").path)")
        say("grid: \(config.folder.appendingPathComponent("compare/grid.png").path)")
        say("dashboard: inkwell dashboard --runs \(URL(fileURLWithPath: config.training.output.dir).path)  → http://127.0.0.1:8765")
        say(String(format: "demo time: %.0f s", Date().timeIntervalSince(start)))
    }
}

func runPipeline(_ config: PipelineConfig, file: String, ranks: PipelineRanks? = nil, clipScoreNote: String? = nil) throws {
    // The dataset is the pipeline's to make; the rest is checked now, with the pipeline's own inputs.
    var more: [String] = []
    if !TrainingPreflight.isDirectory(config.input) {
        more.append("pipeline.input: no folder \(config.input); point it at the raw images")
    }
    func checkBLIP(_ blip: String) -> String? {
        do { _ = try ModelLocation.resolve(blip) } catch {
            return "pipeline.blip: \(error); point it at a transformers BLIP captioning folder or repo id, or leave it out"
        }
        return nil
    }
    // A BLIP the cache lacks is downloaded once everything else checked out (a typo elsewhere is told at once).
    let blipDownload = config.blip.map { ModelLocation.needsDownload($0) } ?? false
    if let blip = config.blip, !blipDownload, let problem = checkBLIP(blip) { more.append(problem) }
    let device = try preflight(config.training, file: file, dataset: false, more: more).device
    if let blip = config.blip, blipDownload, let problem = checkBLIP(blip) { throw CommandError("\(file): \(problem)") }
    let source = try ModelSource(path: config.training.model.path, variant: config.training.model.variant)
    let dtype = config.training.training.weightDType
    // Captioning picks its own device (INKWELL_DEVICE or the best): check that choice too, before any work.
    _ = try chooseDevice(nil, setting: "INKWELL_DEVICE", dtype: nil, dtypeSetting: "")
    let runner = PipelineRunner(config: config) {
        try StableDiffusionPipeline.load(source, device: device, dtype: dtype, variant: config.training.model.variant,
                                         tokenizer: config.training.model.tokenizer.map { URL(fileURLWithPath: $0) },
                                         vaeDType: .float32)
    }
    if config.training.samples.clipScore, let folder = config.training.samples.clipModel {
        let scorer = try CLIPScore.load(directory: try ModelLocation.resolve(folder), device: device)
        runner.clipScorer = { images, prompts in try scorer.score(images: images, prompts: prompts) }
        runner.clipScoreNote = clipScoreNote
    }
    let interruption = Interruption.install()
    if let ranks { runner.externalTraining = { try ranks.training($0, resume: $1, interruption: interruption) } }
    let rows: [PipelineRunResult]
    do {
        rows = try pipelineRows(runner, interruption: interruption)
    } catch let stopped as PipelineStopped {
        say(stopped.description)
        throw ExitCode(130)
    }
    say("\n| run | best step | best val loss | CLIP score | ink: base → samples (data) | steps/s |")
    for r in rows {
        let clip = r.clipScore.map { String(format: "%.2f", $0) + (r.clipScoreNote.map { " (\($0))" } ?? "") } ?? "-"
        say("| \(r.variant) | \(r.bestStep.map(String.init) ?? "-") | \(r.bestValidationLoss.map { String(format: "%.5f", $0) } ?? "-") "
            + "| \(clip) | \(PipelineSummaryFile.inkText(r)) | \(String(format: "%.2f", r.stepsPerSecond)) |")
    }
}

/// The pipeline's stages with their progress shown; a stop request ends them with `PipelineStopped`.
private func pipelineRows(_ runner: PipelineRunner, interruption: Interruption) throws -> [PipelineRunResult] {
    var bar: ProgressLine?
    return try runner.run(shouldStop: { interruption.requested }, stopSignal: { interruption.signalName }) { event in
        switch event {
        case .stage(let name): say("== \(name)")
        case .message(let text): say("   \(text)")
        case .training(_, let e):
            switch e {
            case .step(let step, let total, let loss, let smoothed, _):
                if bar == nil || step == 1 { bar = ProgressLine(total: total, label: "   step") }
                bar?.update(step, detail: String(format: "loss %.4f (%.4f)", loss, smoothed))
            case .validation(let step, let loss, let best):
                say(String(format: "   step %d: validation loss %.5f%@", step, loss, best ? " (best)" : ""))
            case .message(let text): say("   \(text)")
            default: break
            }
        }
    }
}
