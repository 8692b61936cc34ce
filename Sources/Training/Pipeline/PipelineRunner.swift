// `inkwell pipeline`: prepare → caption → one training run per caption variant → compare → plots →
// summary, each stage skipped when its inputs and settings are unchanged, an interrupted run resumed.
import AtomicFile
import Crypto
import Foundation
import Captioning
import Imaging
import StableDiffusion
import Torch

public enum PipelineEvent {
    case stage(String)
    case message(String)
    case training(variant: String, TrainingEvent)
}

/// One run's row of the summary.
public struct RunSummary: Codable, Equatable, Sendable {
    public var variant: String
    public var bestStep: Int?
    public var bestValidationLoss: Double?
    public var finalValidationLoss: Double?
    public var clipScore: Double?
    public var steps: Int
    public var seconds: Double
    public var stepsPerSecond: Double
    public var folder: String
}

public final class PipelineRunner {
    public let config: PipelineConfig
    /// Loads the model once per training run (each run attaches its own adapters).
    public var loadPipeline: () throws -> StableDiffusionPipeline
    /// Optional later stages, given the finished runs' folders (compare grid, plots).
    public var compare: (([URL]) throws -> Void)?
    public var plot: (([URL]) throws -> Void)?
    public var clipScorer: (([Image], [String]) throws -> Double)?

    public init(config: PipelineConfig, loadPipeline: @escaping () throws -> StableDiffusionPipeline) {
        self.config = config
        self.loadPipeline = loadPipeline
        // The default later stages: a comparison grid (base model vs each run's best LoRA at every scale,
        // the runs' sample prompts and seeds) and the training curves.
        compare = { [config] runs in
            let source = try ModelSource(path: config.training.model.path)
            let (columns, _) = try CompareColumn.columns(modelName: source.displayName, runs: runs, checkpoint: .best,
                                                         scales: config.compareScales)
            let comparison = Comparison(model: source, settings: CompareSettings(samples: config.training.samples),
                                        columns: columns, outputDirectory: config.folder.appendingPathComponent("compare"))
            _ = try comparison.run(pipeline: loadPipeline)
        }
        plot = { [config] runs in
            _ = try TrainingPlots.write(try RunLog.load(runs), to: config.folder.appendingPathComponent("plots"))
        }
    }

    var dataset: URL { URL(fileURLWithPath: config.datasets).appendingPathComponent(config.name) }

    /// Runs every stage; `shouldStop` is polled during training (Ctrl-C). Returns the summary rows.
    @discardableResult
    public func run(shouldStop: @escaping () -> Bool = { false }, events: (PipelineEvent) -> Void = { _ in }) throws -> [RunSummary] {
        var didWork = false

        events(.stage("prepare"))
        var prepare = PrepareOptions(input: URL(fileURLWithPath: config.input), datasetDirectory: dataset)
        prepare.settings.resolution = config.resolution
        prepare.settings.fit = config.fit == "pad" ? .pad : .crop
        prepare.settings.clean = config.clean
        prepare.settings.buckets = config.buckets
        prepare.validation = try ValidationSplit(fraction: config.validationFraction, seed: ValidationSplit.standard.seed)
        let prepared = try Preparer(prepare).run()
        if !prepared.processed.isEmpty || !prepared.removed.isEmpty { didWork = true }
        prepared.summary.forEach { events(.message($0)) }

        let fileVariants = config.variants.compactMap { CaptionVariant(rawValue: $0) }.filter { $0 != .vanilla }
        if !fileVariants.isEmpty {
            events(.stage("caption"))
            var options = CaptionOptions(datasetDirectory: dataset)
            options.variants = fileVariants
            options.hints = StyleHints(config.hints)
            let captioner = try config.blip.map {
                try BlipImageCaptioner(folder: URL(fileURLWithPath: $0), device: .best, prefix: config.blipPrefix,
                                       beams: config.blipBeams) as any ImageCaptioner
            }
            let tokenizer = try loadPipeline().tokenizer
            let report = try CaptionStage(options, captioner: captioner, tokenizer: tokenizer).run()
            if report.written.values.contains(where: { !$0.isEmpty }) { didWork = true }
            report.summary.forEach { events(.message($0)) }
        }

        var rows: [RunSummary] = []
        var runFolders: [URL] = []
        for variant in config.variants {
            let runConfig = config.runConfig(variant: variant)
            let folder = runConfig.runDirectory
            runFolders.append(folder)
            let stamp = try inputsStamp(runConfig)
            let stampFile = folder.appendingPathComponent("inputs.sha256")
            let previous = try? String(contentsOf: stampFile, encoding: .utf8)
            let finished = FileManager.default.fileExists(atPath: folder.appendingPathComponent("lora/final.safetensors").path)
            if previous == stamp && finished {
                events(.message("\(variant): up to date (\(folder.path))"))
                rows.append(try summary(variant: variant, folder: folder))
                continue
            }
            events(.stage("train \(variant)"))
            didWork = true
            let resume = previous == stamp && FileManager.default.fileExists(atPath: folder.appendingPathComponent("state").path)
            if !resume { try? FileManager.default.removeItem(at: folder) }
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try writeAtomically(Data(stamp.utf8), to: stampFile)
            let examples = try TrainingDataset.examples(dataset: dataset, config: runConfig)
            let trainer = try LoRATrainer(config: runConfig, examples: examples, pipeline: try loadPipeline(),
                                          modelIdentity: try TrainingDataset.identity(of: ModelSource(path: runConfig.model.path)),
                                          cacheDirectory: dataset.appendingPathComponent("cache/latents"))
            trainer.clipScorer = clipScorer
            let result = try trainer.run(resume: resume, shouldStop: shouldStop) { events(.training(variant: variant, $0)) }
            if result.interrupted { throw TrainingStopped(reason: "interrupted during \(variant); run the pipeline again to resume") }
            rows.append(try summary(variant: variant, folder: folder))
        }

        if let compare, didWork || !FileManager.default.fileExists(atPath: config.folder.appendingPathComponent("compare").path) {
            events(.stage("compare"))
            try compare(runFolders)
        }
        if let plot, didWork || !FileManager.default.fileExists(atPath: config.folder.appendingPathComponent("plots").path) {
            events(.stage("plot"))
            try plot(runFolders)
        }
        try writeSummary(rows)
        if !didWork { events(.message("everything is up to date: nothing to do")) }
        return rows
    }

    /// What a run's result depends on: its resolved config, the dataset manifest and the captions it reads.
    func inputsStamp(_ runConfig: TrainingConfig) throws -> String {
        var hasher = SHA256()
        hasher.update(data: Data(try runConfig.toml().utf8))
        let manifest = dataset.appendingPathComponent(DatasetManifest.fileName)
        if let data = FileManager.default.contents(atPath: manifest.path) { hasher.update(data: data) }
        if let folder = CaptionVariantName(rawValue: runConfig.data.captions)?.folder {
            let dir = dataset.appendingPathComponent(folder)
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() {
                hasher.update(data: Data(name.utf8))
                if let data = FileManager.default.contents(atPath: dir.appendingPathComponent(name).path) { hasher.update(data: data) }
            }
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    func summary(variant: String, folder: URL) throws -> RunSummary {
        let rows = try TrainingLog.read(folder.appendingPathComponent("log.csv"))
        let state = try? JSONDecoder().decode(TrainerState.self,
                                              from: Data(contentsOf: folder.appendingPathComponent("state/trainer.json")))
        let last = rows.last
        let seconds = state?.seconds ?? 0
        let steps = last?.step ?? 0
        return RunSummary(variant: variant, bestStep: state?.bestStep, bestValidationLoss: state?.bestValidationLoss,
                          finalValidationLoss: rows.last(where: { $0.validationLoss != nil })?.validationLoss,
                          clipScore: rows.last(where: { $0.clipScore != nil })?.clipScore, steps: steps, seconds: seconds,
                          stepsPerSecond: seconds > 0 ? Double(steps) / seconds : 0, folder: folder.path)
    }

    /// runs/<pipeline>/summary.md (and summary.json for tools).
    func writeSummary(_ rows: [RunSummary]) throws {
        func f(_ x: Double?, _ format: String = "%.5f") -> String { x.map { String(format: format, $0) } ?? "–" }
        var md = "# \(config.name)\n\n"
        md += "| run | best step | best val loss | final val loss | CLIP score | steps | train time | it/s | files |\n"
        md += "|---|---|---|---|---|---|---|---|---|\n"
        for r in rows {
            md += "| \(r.variant) | \(r.bestStep.map(String.init) ?? "–") | \(f(r.bestValidationLoss)) | \(f(r.finalValidationLoss)) "
                + "| \(f(r.clipScore, "%.2f")) | \(r.steps) | \(f(r.seconds, "%.0f")) s | \(f(r.stepsPerSecond, "%.2f")) "
                + "| `\(r.folder)/lora/best.safetensors`, `final.safetensors` |\n"
        }
        let best = rows.filter { $0.bestValidationLoss != nil }.min { ($0.bestValidationLoss ?? 0) < ($1.bestValidationLoss ?? 0) }
        if let best { md += "\nLowest validation loss: **\(best.variant)** at step \(best.bestStep.map(String.init) ?? "?").\n" }
        md += "\nValidation loss is measured on the same held-out images with fixed noise and timesteps, so it compares across runs.\n"
        try FileManager.default.createDirectory(at: config.folder, withIntermediateDirectories: true)
        try writeAtomically(Data(md.utf8), to: config.folder.appendingPathComponent("summary.md"))
        let json = JSONEncoder()
        json.outputFormatting = [.prettyPrinted, .sortedKeys]
        json.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try writeAtomically(try json.encode(rows), to: config.folder.appendingPathComponent("summary.json"))
    }
}
