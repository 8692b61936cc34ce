// Where a training run keeps its files, and the names inside it, in both directions: the trainer asks for
// the path of a checkpoint or a sample, the dashboard, compare and plot read the same names back.
//
//   <run>/config.toml                the resolved config (TrainingConfig)
//   <run>/log.csv                    one row per logged step (TrainingLog)
//   <run>/status.json                running / stopped / finished / failed, with a heartbeat (TrainerStatus)
//   <run>/state/trainer.json         position and bookkeeping (TrainerState), beside the state's tensors
//   <run>/lora/<name>.safetensors, <name>-best.safetensors, <name>-step000200.safetensors
//   <run>/samples/step_000200/p<prompt>_s<seed>.png
//
// The LoRA files carry the run's name (kohya's `output_name` habit) so that copies dropped into one shared
// A1111/ComfyUI Lora folder never clash; runs written before that (best.safetensors, step_000200…) still read.
import AtomicFile
import Foundation
import TOMLKit

public struct RunFolder: Sendable, Equatable {
    public let root: URL
    /// The base name of the run's LoRA files: `output.lora_name`, else the folder's name.
    public let loraName: String

    /// A run folder whose LoRA files are named `loraName` (the trainer passes its config's).
    public init(_ root: URL, loraName: String) {
        self.root = root
        self.loraName = loraName
    }

    /// An existing run: the LoRA name its `config.toml` records (`output.lora_name`), else the folder's
    /// name, which is the default the trainer uses too.
    public init(_ root: URL) {
        let config = root.appendingPathComponent("config.toml")
        let saved = (try? String(contentsOf: config, encoding: .utf8)).flatMap { try? TOMLTable(string: $0) }
        let name = saved?["output"]?["lora_name"]?.string ?? ""
        self.init(root, loraName: name.isEmpty ? root.lastPathComponent : name)
    }

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
    /// The file of a checkpoint; a run from before named files keeps its old names (so resuming it does too).
    public func checkpoint(_ name: CheckpointName) -> URL {
        let named = lora.appendingPathComponent(fileName(name))
        let legacy = lora.appendingPathComponent(name.legacyFileName)
        let fm = FileManager.default
        return !fm.fileExists(atPath: named.path) && fm.fileExists(atPath: legacy.path) ? legacy : named
    }

    /// `<name>.safetensors` (final), `<name>-best.safetensors`, `<name>-step000200.safetensors`.
    public func fileName(_ checkpoint: CheckpointName) -> String {
        let suffix: String
        switch checkpoint {
        case .final: suffix = ""
        case .best: suffix = "-best"
        case .step(let step): suffix = "-step\(zeroPadded(step))"
        }
        return "\(loraName)\(suffix).\(CheckpointName.fileExtension)"
    }

    /// The checkpoint a file under lora/ stands for, in this run's names or the older fixed ones
    /// (best, final, step_000200); nil for anything else (a PEFT copy, a user's file).
    public func checkpointName(fileName: String) -> CheckpointName? {
        let ext = ".\(CheckpointName.fileExtension)"
        guard fileName.hasSuffix(ext) else { return nil }
        let base = String(fileName.dropLast(ext.count))
        if base == loraName { return .final }
        if base == "\(loraName)-best" { return .best }
        if let step = digits(after: "\(loraName)-step", in: base) { return .step(step) }
        return CheckpointName(legacyBaseName: base)
    }

    /// The checkpoints present under lora/, each with its file.
    public func checkpoints() -> [(name: CheckpointName, url: URL)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: lora.path)) ?? []
        return names.sorted().compactMap { file in
            checkpointName(fileName: file).map { ($0, lora.appendingPathComponent(file)) }
        }
    }
    public func samples(step: Int) -> URL { samples.appendingPathComponent(SampleStep.folderName(step)) }
    public func sample(step: Int, _ name: SampleName) -> URL { samples(step: step).appendingPathComponent(name.fileName) }

    /// Whether the folder holds a run's log (what makes a folder a run for plot and the dashboard).
    public var hasLog: Bool { FileManager.default.fileExists(atPath: log.path) }
    public var isFinished: Bool { FileManager.default.fileExists(atPath: final.path) }

    /// Removes the temporary files that writes killed before their rename left in the run's folders (the
    /// trainer's, at start: nothing else writes there then).
    public func removeTemporaries() {
        for folder in [root, lora, state] + sampleSteps().map(samples(step:)) { AtomicWrite.removeTemporaries(in: folder) }
    }

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

    /// The names runs used before LoRA files carried the run's name: best, final, step_000200.
    var legacyFileName: String {
        switch self {
        case .best: return "best.\(Self.fileExtension)"
        case .final: return "final.\(Self.fileExtension)"
        case .step(let step): return "step_\(zeroPadded(step)).\(Self.fileExtension)"
        }
    }

    init?(legacyBaseName base: String) {
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
