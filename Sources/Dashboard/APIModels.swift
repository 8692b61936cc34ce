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

/// What a run is doing. From status.json when the run has one; for runs from before it, guessed from the
/// log (`RunSummary.statusGuessed`).
public enum RunStatus: String, Codable, Sendable {
    /// Nothing logged yet.
    case new
    /// status.json says running and its heartbeat is fresh (guess: the log changed recently).
    case training
    /// status.json says running, but its heartbeat is stale or its process is gone on this host: killed or hung.
    case notResponding
    /// Stopped by the user, resumable (guess: idle without a final checkpoint).
    case stopped
    /// Trained to the end (guess: the run's final LoRA file exists).
    case finished
    /// Ended by an error (`TrainerStatusInfo.error`).
    case failed
}

/// status.json as the page shows it; dates in seconds since 1970.
public struct TrainerStatusInfo: Codable, Equatable, Sendable {
    /// Why a status that says running is not believed.
    public enum Unresponsive: String, Codable, Sendable {
        /// No heartbeat for longer than the dashboard waits.
        case staleHeartbeat
        /// The recorded process no longer exists on this host.
        case processGone
    }

    /// The state the file records: running, stopped, finished, failed.
    public var state: String
    public var signal: String?
    public var error: String?
    public var step: Int
    public var totalSteps: Int
    public var stepsPerSecond: Double?
    public var etaSeconds: Double?
    public var elapsedSeconds: Double?
    public var pid: Int32
    public var host: String
    public var startedAt: Double
    public var heartbeat: Double
    public var unresponsive: Unresponsive?

    init(_ status: TrainerStatus, unresponsive: Unresponsive?) {
        func finite(_ x: Double?) -> Double? { x.flatMap { $0.isFinite ? $0 : nil } }
        state = status.state.name
        switch status.state {
        case .stopped(let signal): self.signal = signal
        case .failed(let error): self.error = error
        case .running, .finished: break
        }
        step = status.step
        totalSteps = status.totalSteps
        stepsPerSecond = finite(status.stepsPerSecond)
        etaSeconds = finite(status.etaSeconds)
        elapsedSeconds = finite(status.elapsedSeconds)
        pid = status.pid
        host = status.host
        startedAt = status.startedAt.timeIntervalSince1970
        heartbeat = status.heartbeat.timeIntervalSince1970
        self.unresponsive = unresponsive
    }
}

/// A run's status with what it was read from.
public struct RunStatusReport: Equatable, Sendable {
    public var status: RunStatus
    /// True when the run has no status.json and the status is a guess from the log's age.
    public var guessed: Bool
    public var trainer: TrainerStatusInfo?
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
    /// The status is guessed from the log's age (a run without status.json).
    public var statusGuessed: Bool
    /// status.json, when the run has one.
    public var trainer: TrainerStatusInfo?
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
    public var statusGuessed: Bool
    public var trainer: TrainerStatusInfo?
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
    /// The run's sample steps (0, the base model, included).
    public var sampleSteps: [Int]
    /// Its images at the picked step, one per prompt/seed pair.
    public var samples: [SampleImage]
}

/// Which samples the compare view sets side by side: one step, or per run its newest or its best step's.
/// In a query and in JSON: "200", "latest", "best".
public enum SamplePick: Equatable, Sendable, Codable, CustomStringConvertible {
    case step(Int)
    case latest
    case best

    public init?(_ text: String) {
        switch text {
        case "latest": self = .latest
        case "best": self = .best
        default:
            guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }), let step = Int(text) else { return nil }
            self = .step(step)
        }
    }

    public var description: String {
        switch self {
        case .step(let step): return String(step)
        case .latest: return "latest"
        case .best: return "best"
        }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let pick = SamplePick(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a sample pick: \(text)"))
        }
        self = pick
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// The base model's samples: a run's step-0 images, rendered before any update, when LoRA's B is still
/// zero and the adapters are switched off. One column per base model among the compared runs.
public struct BaseColumn: Codable, Equatable, Sendable {
    /// model.path of the runs' configs ("" when unknown).
    public var model: String
    /// The run whose step-0 images these are.
    public var run: String
    public var samples: [SampleImage]
}

public struct SampleKey: Codable, Equatable, Sendable {
    public var prompt: Int
    public var seed: Int
    public var text: String
}

public struct CompareResponse: Codable, Equatable, Sendable {
    public var runs: [CompareRun]
    /// Prompt/seed pairs that at least one shown image has, in prompt then seed order.
    public var keys: [SampleKey]
    /// compare/grid.png of the pipelines the runs belong to.
    public var grids: [String]
    /// What `runs[].samples` hold: the request's pick, by default the newest step all runs have sampled
    /// (after step 0), or each run's newest when they share none.
    public var pick: SamplePick
    /// Sample steps after 0 that any run has, and those every run has: the picker's choices.
    public var steps: [Int]
    public var commonSteps: [Int]
    /// The base model's column(s); empty when no run has step-0 samples.
    public var base: [BaseColumn]
}

/// One row of a pipeline's summary.json, with its links resolved against runs/.
public struct PipelineResultRow: Codable, Equatable, Sendable {
    public var result: PipelineRunResult
    /// The run's id (its folder relative to runs/), when that folder is a run the dashboard lists.
    public var run: String?
    /// Its best and final LoRA files, relative to runs/, when they exist.
    public var best: String?
    public var final: String?
}

public struct PipelineDetail: Codable, Equatable, Sendable {
    public var summary: PipelineSummary
    /// The rows of its summary.json (empty while it has none).
    public var results: [PipelineResultRow]
    public var runs: [RunSummary]
}
