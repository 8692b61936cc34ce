// The JSON the page reads. Paths in it are relative to runs/ ("pipe/run/samples/step_000100/p0_s1.png");
// the page turns them into /files/... and /thumb/... URLs. Optional fields are omitted when absent.
import Foundation
import RunFiles

/// One sample image: `samples/step_<step>/p<prompt>_s<seed>.png`.
public struct SampleImage: Codable, Equatable, Sendable {
    public var step: Int
    public var prompt: Int
    public var seed: Int
    public var path: String
}

public enum RunStatus: String, Codable, Sendable {
    /// Nothing logged yet.
    case new
    /// The log changed recently and there is no final checkpoint.
    case training
    /// Idle without a final checkpoint: interrupted, crashed, or waiting to resume.
    case stopped
    /// the run's final LoRA file exists.
    case finished
}

public struct RunSummary: Codable, Equatable, Sendable {
    /// Path of the run folder relative to runs/ ("run" or "pipeline/run").
    public var id: String
    public var name: String
    /// The folder holding the run when it is not runs/ itself.
    public var group: String?
    /// The pipeline (a folder with summary.json) the run belongs to.
    public var pipeline: String?
    public var status: RunStatus
    public var lastStep: Int?
    public var maxSteps: Int?
    public var bestStep: Int?
    public var bestValLoss: Double?
    public var lastValLoss: Double?
    public var latestSample: SampleImage?
    /// Seconds since 1970 of the last change to the log (or config).
    public var updated: Double?
}

public struct PipelineSummary: Codable, Equatable, Sendable {
    public var id: String
    public var name: String
    public var runs: [String]
    /// compare/grid.png, compare/index.html and plots/*.svg|png when they exist.
    public var grid: String?
    public var compareHTML: String?
    public var plots: [String]
    /// Newest modification time (seconds since 1970) of summary.json, the grid and the plots: the page
    /// adds it to their URLs so that a regenerated file is fetched again.
    public var updated: Double?
}

public struct RunsIndexResponse: Codable, Equatable, Sendable {
    public var runs: [RunSummary]
    public var pipelines: [PipelineSummary]
}

public struct PromptInfo: Codable, Equatable, Sendable {
    public var index: Int
    public var text: String
    /// The A1111 `parameters` text of one of its images, when readable.
    public var parameters: String?
}

public struct SampleSet: Codable, Equatable, Sendable {
    public var steps: [Int]
    public var prompts: [PromptInfo]
    public var seeds: [Int]
    public var images: [SampleImage]
}

public struct Checkpoint: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable { case step, best, final, other }
    public var name: String
    public var path: String
    public var kind: Kind
    public var step: Int?
    public var bytes: Int
}

public struct BestCheckpoint: Codable, Equatable, Sendable {
    public enum Source: String, Codable, Sendable { case state, log }
    public var step: Int
    public var valLoss: Double?
    /// Where the step came from: state/trainer.json, or the lowest val_loss in log.csv.
    public var source: Source
    /// the run's best LoRA file when it exists.
    public var path: String?
}

/// The bookkeeping fields of state/trainer.json the page shows; non-finite numbers absent (JSON has no NaN).
public struct TrainerStateInfo: Codable, Equatable, Sendable {
    public var step: Int?
    public var epoch: Int?
    public var bestStep: Int?
    public var bestValidationLoss: Double?
    public var lastValidationLoss: Double?
    public var seconds: Double?
    public var nonFiniteTotal: Int?

    init(_ state: TrainerState) {
        func finite(_ x: Double?) -> Double? { x.flatMap { $0.isFinite ? $0 : nil } }
        step = state.step
        epoch = state.epoch
        bestStep = state.bestStep
        bestValidationLoss = finite(state.bestValidationLoss)
        lastValidationLoss = finite(state.lastValidationLoss)
        seconds = finite(state.seconds)
        nonFiniteTotal = state.nonFiniteTotal
    }
}

public struct RunDetail: Codable, Equatable, Sendable {
    public var summary: RunSummary
    public var config: ConfigSections?
    public var configPath: String?
    public var checkpoints: [Checkpoint]
    public var samples: SampleSet
    public var best: BestCheckpoint?
    public var state: TrainerStateInfo?
}

public struct LogResponse: Codable, Equatable, Sendable {
    public var id: String
    public var since: Int
    /// True when the log no longer reaches `since` (a resumed run rewrote it): `rows` is the whole log.
    public var reset: Bool
    public var rows: [TrainingLogRow]
    public var lastStep: Int?
    public var bestStep: Int?
    public var sampleSteps: [Int]
    public var status: RunStatus
}

public struct LossPoint: Codable, Equatable, Sendable {
    public var step: Int
    public var value: Double
}

public struct CompareRun: Codable, Equatable, Sendable {
    public var id: String
    public var name: String
    public var status: RunStatus
    public var bestStep: Int?
    public var valLoss: [LossPoint]
    /// The newest image of each prompt/seed pair.
    public var samples: [SampleImage]
}

public struct SampleKey: Codable, Equatable, Sendable {
    public var prompt: Int
    public var seed: Int
    public var text: String
}

public struct CompareResponse: Codable, Equatable, Sendable {
    public var runs: [CompareRun]
    /// Prompt/seed pairs that at least one run has, in prompt then seed order.
    public var keys: [SampleKey]
    /// compare/grid.png of the pipelines the runs belong to.
    public var grids: [String]
}

public struct PipelineDetail: Codable, Equatable, Sendable {
    public var summary: PipelineSummary
    /// The rows of its summary.json (empty while it has none).
    public var results: [PipelineRunResult]
    public var runs: [RunSummary]
}
