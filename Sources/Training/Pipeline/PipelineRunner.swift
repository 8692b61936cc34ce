// `inkwell pipeline`: prepare → caption → one training run per caption variant → compare → plots →
// summary, each stage skipped when its inputs and settings are unchanged, an interrupted run resumed.
import AtomicFile
import Crypto
import Foundation
import HubCache
import Captioning
import Imaging
import RunFiles
import StableDiffusion
import Torch

public enum PipelineEvent {
    case stage(String)
    case message(String)
    case training(variant: String, TrainingEvent)
}

public final class PipelineRunner {
    public let config: PipelineConfig
    /// Loads the model once per training run (each run attaches its own adapters).
    public var loadPipeline: () throws -> StableDiffusionPipeline
    /// Optional later stages, given the finished runs' folders (compare grid, plots); compare is given the stop
    /// request to poll.
    public var compare: (([URL], @escaping () -> Bool) throws -> Void)?
    public var plot: (([URL]) throws -> Void)?
    public var clipScorer: (([Image], [String]) throws -> Double)?
    /// Trains a run somewhere else than in this process (`inkwell pipeline --nproc N`: data-parallel ranks that
    /// `inkwell train` starts), given the run's config, written as the run's config.toml, and whether to resume.
    /// It returns once that training has ended, stopped or finished; the run folder says which.
    public var externalTraining: ((TrainingConfig, _ resume: Bool) throws -> Void)?
    /// Written beside every CLIP score in the summary (the demo's "random CLIP").
    public var clipScoreNote: String?

    public init(config: PipelineConfig, loadPipeline: @escaping () throws -> StableDiffusionPipeline) {
        self.config = config
        self.loadPipeline = loadPipeline
        // The default later stages: a comparison grid (base model vs each run's best LoRA at every scale,
        // the runs' sample prompts and seeds) and the training curves.
        compare = { [config] runs, shouldStop in
            _ = try Self.comparison(config, runs: runs).run(pipeline: loadPipeline, progress: { _, _ in !shouldStop() })
        }
        plot = { [config] runs in
            _ = try TrainingPlots.write(try RunLog.load(runs), to: config.folder.appendingPathComponent("plots"))
        }
    }

    /// The comparison grid of the runs: base model vs each run's best LoRA at every scale, the samples' prompts and seeds.
    static func comparison(_ config: PipelineConfig, runs: [URL]) throws -> Comparison {
        let source = try ModelSource(path: config.training.model.path, variant: config.training.model.variant)
        let (columns, _) = try CompareColumn.columns(modelName: source.displayName, runs: runs, checkpoint: .best,
                                                     scales: config.compareScales)
        return Comparison(model: source, settings: CompareSettings(samples: config.training.samples),
                          columns: columns, outputDirectory: config.folder.appendingPathComponent("compare"))
    }

    /// Ink coverage of the grid's cells and of the training images, into each row (nil fields when the grid
    /// has no cells yet).
    func addLineArtShift(_ rows: inout [PipelineRunResult], runs: [URL]) throws {
        guard let first = config.variants.first, FileManager.default.fileExists(atPath: config.folder.appendingPathComponent("compare").path)
        else { return }
        let examples = try TrainingDataset.examples(dataset: dataset, config: config.runConfig(variant: first))
        guard let shift = try LineArtShift.measure(try Self.comparison(config, runs: runs),
                                                   datasetImages: examples.filter { !$0.isValidation }.map(\.image)) else { return }
        for i in rows.indices {
            rows[i].baseInkCoverage = shift.base
            rows[i].datasetInkCoverage = shift.dataset
            rows[i].sampleInkCoverage = shift.runs[runs[i].path]
        }
    }

    var dataset: URL { URL(fileURLWithPath: config.datasets).appendingPathComponent(config.name) }

    /// Runs every stage; `shouldStop` is polled in each (Ctrl-C): the stage keeps what it finished and
    /// `PipelineStopped` says what. `stopSignal` names what asked (for the run's status.json). Returns the
    /// summary rows.
    @discardableResult
    public func run(shouldStop: @escaping () -> Bool = { false }, stopSignal: () -> String? = { nil },
                    events: (PipelineEvent) -> Void = { _ in }) throws -> [PipelineRunResult] {
        var didWork = false

        events(.stage("prepare"))
        var prepare = PrepareOptions(input: URL(fileURLWithPath: config.input), datasetDirectory: dataset)
        prepare.settings.resolution = config.resolution
        prepare.settings.fit = config.fit
        prepare.settings.clean = config.clean
        prepare.settings.buckets = config.buckets
        prepare.validation = try ValidationSplit(fraction: config.validationFraction, seed: ValidationSplit.standard.seed)
        let prepared = try Preparer(prepare).run { _ in !shouldStop() }
        if prepared.interrupted {
            throw PipelineStopped(stage: "prepare", saved: "the images prepared so far are kept")
        }
        if !prepared.processed.isEmpty || !prepared.removed.isEmpty { didWork = true }
        prepared.summary.forEach { events(.message($0)) }

        let fileVariants = config.variants.filter { $0 != .vanilla }
        if !fileVariants.isEmpty {
            events(.stage("caption"))
            var options = CaptionOptions(datasetDirectory: dataset)
            options.variants = fileVariants
            options.hints = StyleHints(config.hints)
            let captioner = try config.blip.map {
                try BlipImageCaptioner(folder: try ModelLocation.resolve($0), device: .best, prefix: config.blipPrefix,
                                       beams: config.blipBeams) as any ImageCaptioner
            }
            let tokenizer = try loadPipeline().tokenizer
            let report = try CaptionStage(options, captioner: captioner, tokenizer: tokenizer).run { _ in !shouldStop() }
            if report.interrupted {
                throw PipelineStopped(stage: "caption", saved: "the captions written so far are kept")
            }
            if report.written.values.contains(where: { !$0.isEmpty }) { didWork = true }
            report.summary.forEach { events(.message($0)) }
        }

        var rows: [PipelineRunResult] = []
        var runFolders: [URL] = []
        for variant in config.variants {
            let runConfig = config.runConfig(variant: variant)
            let run = runConfig.runFolder
            let folder = run.root
            runFolders.append(folder)
            let stamp = try inputsStamp(runConfig)
            let stampFile = folder.appendingPathComponent("inputs.sha256")
            let previous = try? String(contentsOf: stampFile, encoding: .utf8)
            let finished = run.isFinished
            if previous == stamp && finished {
                events(.message("\(variant): up to date (\(folder.path))"))
                rows.append(try PipelineRunResult(variant: variant.rawValue, run: run))
                continue
            }
            events(.stage("train \(variant)"))
            didWork = true
            let resume = previous == stamp && FileManager.default.fileExists(atPath: run.state.path)
            if !resume { try? FileManager.default.removeItem(at: folder) }
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try writeAtomically(Data(stamp.utf8), to: stampFile)
            if let externalTraining {
                try externalTraining(runConfig, resume)
                guard run.isFinished else {
                    throw PipelineStopped(stage: "train \(variant)", saved: "the trainer state is saved in \(run.state.path)")
                }
                rows.append(try PipelineRunResult(variant: variant.rawValue, run: run))
                continue
            }
            let examples = try TrainingDataset.examples(dataset: dataset, config: runConfig)
            let trainer = try LoRATrainer(config: runConfig, examples: examples, pipeline: try loadPipeline(),
                                          modelIdentity: try TrainingDataset.identity(of: ModelSource(path: runConfig.model.path, variant: runConfig.model.variant)),
                                          cacheDirectory: dataset.appendingPathComponent("cache/latents"))
            trainer.clipScorer = clipScorer
            let result = try trainer.run(resume: resume, shouldStop: shouldStop, stopSignal: stopSignal) {
                events(.training(variant: variant.rawValue, $0))
            }
            if result.interrupted {
                throw PipelineStopped(stage: "train \(variant)", saved: "the trainer state is saved in \(run.state.path)")
            }
            rows.append(try PipelineRunResult(variant: variant.rawValue, run: run))
        }

        // The summary is written last: without it, a compare or plot stage was cut short (a kill halfway through
        // its files) and is redone; it is removed before either starts, so that such a cut is seen next time.
        let summary = config.folder.appendingPathComponent(PipelineSummaryFile.fileName)
        let finished = FileManager.default.fileExists(atPath: summary.path)
        func starting(_ stage: String) {
            try? FileManager.default.removeItem(at: summary)
            events(.stage(stage))
        }
        if let compare, didWork || !finished || !FileManager.default.fileExists(atPath: config.folder.appendingPathComponent("compare").path) {
            starting("compare")
            do {
                try compare(runFolders, shouldStop)
            } catch let stopped as ComparisonStopped {
                throw PipelineStopped(stage: "compare", saved: "\(stopped.generated) new cell(s) are kept")
            }
        }
        if let plot, didWork || !finished || !FileManager.default.fileExists(atPath: config.folder.appendingPathComponent("plots").path) {
            starting("plot")
            try plot(runFolders)
        }
        if compare != nil { try addLineArtShift(&rows, runs: runFolders) }
        if let clipScoreNote { for i in rows.indices where rows[i].clipScore != nil { rows[i].clipScoreNote = clipScoreNote } }
        try PipelineSummaryFile.write(rows, name: config.name, to: config.folder)
        if !didWork { events(.message("everything is up to date: nothing to do")) }
        return rows
    }

    /// What a run's result depends on: its resolved config, the dataset manifest and the captions it reads.
    func inputsStamp(_ runConfig: TrainingConfig) throws -> String {
        var hasher = SHA256()
        hasher.update(data: Data(try runConfig.toml().utf8))
        let manifest = dataset.appendingPathComponent(DatasetManifest.fileName)
        if let data = FileManager.default.contents(atPath: manifest.path) { hasher.update(data: data) }
        if let folder = runConfig.data.captions.folderName {
            let dir = dataset.appendingPathComponent(folder)
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() {
                hasher.update(data: Data(name.utf8))
                if let data = FileManager.default.contents(atPath: dir.appendingPathComponent(name).path) { hasher.update(data: data) }
            }
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
