// `inkwell pipeline` and `inkwell demo`: the whole job from one config, skipping what is up to date.
import ArgumentParser
import Foundation
import HubCache
import Glibc
import RunFiles
import StableDiffusion
import Torch
import Training

struct PipelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "prepare → caption → train one LoRA per caption variant → compare → plot → summary, idempotently.")

    @Option(help: "The pipeline config (TOML): a [pipeline] section plus the training sections.") var config: String
    @Option(name: .customLong("set"), help: "Override a training key: section.key=value (repeatable).") var overrides: [String] = []
    @Option(help: "Train each run data-parallel on N processes of this machine (as inkwell train --nproc N).") var nproc: Int?
    @Option(help: "Seconds a data-parallel rank waits for the others before it fails.") var distTimeout: Double = 1800

    func run() throws {
        try runPipeline(try PipelineConfig.load(URL(fileURLWithPath: config), overrides: overrides), file: config,
                        ranks: try pipelineRanks(nproc, timeout: distTimeout))
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The whole pipeline offline on generated data and tiny RANDOM-weight models (see README).")

    @Option(help: "Working folder for the demo's models, data and runs.") var root = "demo"
    @Option(help: "Training steps per run.") var steps = 60

    func run() throws {
        let rootURL = URL(fileURLWithPath: root)
        say("Inkwell demo in \(rootURL.path): synthetic tattoo line art, a tiny SD1.x-architecture model and a tiny BLIP,")
        say("both with RANDOM weights (real layouts and code paths; the images are noise, the captions nonsense).")
        let config = try DemoSetup.prepare(root: rootURL, steps: steps)
        try runPipeline(config, file: "demo")
        say("\nsummary: \(config.folder.appendingPathComponent("summary.md").path)")
        say("dashboard: inkwell dashboard --runs \(URL(fileURLWithPath: config.training.output.dir).path)  → http://127.0.0.1:8765")
    }
}

func runPipeline(_ config: PipelineConfig, file: String, ranks: PipelineRanks? = nil) throws {
    // The dataset is the pipeline's to make; the rest is checked now, with the pipeline's own inputs.
    var more: [String] = []
    if !TrainingPreflight.isDirectory(config.input) {
        more.append("pipeline.input: no folder \(config.input); point it at the raw images")
    }
    if let blip = config.blip {
        do { _ = try ModelLocation.resolve(blip) } catch {
            more.append("pipeline.blip: \(error); point it at a transformers BLIP captioning folder or repo id, or leave it out")
        }
    }
    let device = try preflight(config.training, file: file, dataset: false, more: more).device
    let source = try ModelSource(path: config.training.model.path)
    let dtype = config.training.training.weightDType
    // Captioning picks its own device (INKWELL_DEVICE or the best): check that choice too, before any work.
    _ = try chooseDevice(nil, setting: "INKWELL_DEVICE", dtype: nil, dtypeSetting: "")
    let runner = PipelineRunner(config: config) {
        try StableDiffusionPipeline.load(source, device: device, dtype: dtype, variant: config.training.model.variant,
                                         tokenizer: config.training.model.tokenizer.map { URL(fileURLWithPath: $0) },
                                         vaeDType: .float32)
    }
    runner.externalTraining = ranks?.training
    let interruption = Interruption.install()
    let rows: [PipelineRunResult]
    do {
        rows = try pipelineRows(runner, interruption: interruption)
    } catch let stopped as PipelineStopped {
        say(stopped.description)
        throw ExitCode(130)
    }
    say("\n| run | best step | best val loss | steps/s |")
    for r in rows {
        say("| \(r.variant) | \(r.bestStep.map(String.init) ?? "-") | \(r.bestValidationLoss.map { String(format: "%.5f", $0) } ?? "-") | \(String(format: "%.2f", r.stepsPerSecond)) |")
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
