// Where a training run keeps its files, and the names inside it, in both directions: the trainer asks for
// the path of a checkpoint or a sample, the dashboard, compare and plot read the same names back.
//
//   <run>/config.toml                the resolved config (TrainingConfig)
//   <run>/log.csv                    one row per logged step (TrainingLog)
//   <run>/status.json                running / stopped / finished / failed, with a heartbeat (TrainerStatus)
//   <run>/state/trainer.json         position and bookkeeping (TrainerState), beside the state's tensors
//   <run>/lora/best.safetensors, final.safetensors, step_000200.safetensors
//   <run>/samples/step_000200/p<prompt>_s<seed>.png
import Foundation

public struct RunFolder: Sendable, Equatable {
    public let root: URL
    public init(_ root: URL) { self.root = root }

    public var config: URL { root.appendingPathComponent("config.toml") }
    public var log: URL { root.appendingPathComponent("log.csv") }
    public var lora: URL { root.appendingPathComponent("lora") }
    public var samples: URL { root.appendingPathComponent("samples") }
    public var state: URL { root.appendingPathComponent("state") }
    /// What the trainer is doing now (TrainerStatus).
    public var status: URL { root.appendingPathComponent(TrainerStatus.fileName) }
    /// The state's bookkeeping file; the state's tensors sit beside it.
    public var trainerState: URL { state.appendingPathComponent(TrainerState.fileName) }

    public var best: URL { checkpoint(.best) }
    public var final: URL { checkpoint(.final) }
    public func checkpoint(step: Int) -> URL { checkpoint(.step(step)) }
    public func checkpoint(_ name: CheckpointName) -> URL { lora.appendingPathComponent(name.fileName) }
    public func samples(step: Int) -> URL { samples.appendingPathComponent(SampleStep.folderName(step)) }
    public func sample(step: Int, _ name: SampleName) -> URL { samples(step: step).appendingPathComponent(name.fileName) }

    /// Whether the folder holds a run's log (what makes a folder a run for plot and the dashboard).
    public var hasLog: Bool { FileManager.default.fileExists(atPath: log.path) }
    public var isFinished: Bool { FileManager.default.fileExists(atPath: final.path) }

    /// The step folders under samples/, in step order.
    public func sampleSteps() -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: samples.path)) ?? []
        return names.compactMap(SampleStep.step(folderName:)).sorted()
    }
}

/// The LoRA files a run writes under lora/.
public enum CheckpointName: Hashable, Sendable {
    /// The step with the lowest validation loss so far.
    case best
    /// The weights at the end of training.
    case final
    /// A periodic checkpoint; the newest `output.keep` are kept.
    case step(Int)

    public static let fileExtension = "safetensors"

    public var fileName: String {
        switch self {
        case .best: return "best.\(Self.fileExtension)"
        case .final: return "final.\(Self.fileExtension)"
        case .step(let step): return "step_\(zeroPadded(step)).\(Self.fileExtension)"
        }
    }

    /// The name a file under lora/ stands for; nil for anything else (a PEFT copy, a user's file).
    public init?(fileName: String) {
        guard fileName.hasSuffix(".\(Self.fileExtension)") else { return nil }
        let base = String(fileName.dropLast(Self.fileExtension.count + 1))
        switch base {
        case "best": self = .best
        case "final": self = .final
        default:
            guard let step = digits(after: "step_", in: base) else { return nil }
            self = .step(step)
        }
    }
}

/// samples/step_000200: the folder of one evaluation's samples.
public enum SampleStep {
    public static func folderName(_ step: Int) -> String { "step_\(zeroPadded(step))" }
    public static func step(folderName: String) -> Int? { digits(after: "step_", in: folderName) }
}

/// `p<prompt index>_s<seed>.png`: one sample image (the same names in a comparison's images/).
public struct SampleName: Hashable, Sendable {
    public var prompt: Int
    public var seed: Int
    public init(prompt: Int, seed: Int) {
        self.prompt = prompt
        self.seed = seed
    }

    public var fileName: String { "p\(prompt)_s\(seed).png" }

    /// Seeds may be negative; the prompt index may not.
    public init?(fileName: String) {
        guard fileName.hasPrefix("p"), fileName.lowercased().hasSuffix(".png") else { return nil }
        let parts = fileName.dropFirst().dropLast(4).split(separator: "_", maxSplits: 1)
        guard parts.count == 2, parts[1].hasPrefix("s"), let prompt = Int(parts[0]), prompt >= 0,
              let seed = Int(parts[1].dropFirst()) else { return nil }
        self.init(prompt: prompt, seed: seed)
    }
}

/// Six digits, so that names sort in step order.
private func zeroPadded(_ step: Int) -> String { String(format: "%06d", step) }

/// "step_000100" → 100: the prefix, then ASCII digits only.
private func digits(after prefix: String, in name: String) -> Int? {
    guard name.hasPrefix(prefix) else { return nil }
    let digits = name.dropFirst(prefix.count)
    guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
    return Int(digits)
}
