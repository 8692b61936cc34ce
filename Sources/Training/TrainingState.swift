// A run's folder and its resumable state. `state/` holds everything a resumed run needs to continue
// exactly where the interrupted one stopped: adapter weights, optimizer moments, position in the data
// order, random-generator states, loss scaler and best validation loss. It is written to a temporary
// folder and renamed into place, so an interrupted save never leaves a half-written state.
import AtomicFile
import Foundation
import LoRA
import Torch

public struct RunDirectory: Sendable {
    public let root: URL
    public init(_ root: URL) { self.root = root }

    public var config: URL { root.appendingPathComponent("config.toml") }
    public var log: URL { root.appendingPathComponent("log.csv") }
    public var lora: URL { root.appendingPathComponent("lora") }
    public var samples: URL { root.appendingPathComponent("samples") }
    public var state: URL { root.appendingPathComponent("state") }
    public var best: URL { lora.appendingPathComponent("best.safetensors") }
    public var final: URL { lora.appendingPathComponent("final.safetensors") }
    public func checkpoint(step: Int) -> URL { lora.appendingPathComponent(String(format: "step_%06d.safetensors", step)) }
    public func samples(step: Int) -> URL { samples.appendingPathComponent(String(format: "step_%06d", step)) }
}

/// Position and bookkeeping of a run; the tensors (weights, optimizer, RNG) are saved beside it.
struct TrainerState: Codable, Equatable {
    var step = 0
    var epoch = 0
    /// Index of the next micro-batch in the epoch's plan.
    var position = 0
    var bestValidationLoss: Double?
    var bestStep: Int?
    var lastValidationLoss: Double?
    var nonFiniteTotal = 0
    var nonFiniteStreak = 0
    var smoothedLoss: Double?
    var scaler: GradScaler?
    var seconds = 0.0
}

extension LoRATrainer {
    /// Saves the resumable state atomically (temp folder, then rename over the previous state).
    func saveState() throws {
        let fm = FileManager.default
        try fm.createDirectory(at: run.root, withIntermediateDirectories: true)
        let temp = run.root.appendingPathComponent(".state.tmp")
        try? fm.removeItem(at: temp)
        try fm.createDirectory(at: temp, withIntermediateDirectories: true)
        var s = state
        s.scaler = scaler
        let json = JSONEncoder()
        json.outputFormatting = [.prettyPrinted, .sortedKeys]
        json.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try writeAtomically(json.encode(s), to: temp.appendingPathComponent("trainer.json"))
        try Safetensors.save(Dictionary(uniqueKeysWithValues: network.parameters.map { ($0.0, try $0.1.detach()) }),
                             to: temp.appendingPathComponent("lora.safetensors"))
        try optimizer.save(to: temp.appendingPathComponent("optimizer.safetensors"))
        try Safetensors.save(["run": try rng.state(), "dropout": try dropoutRNG.state()],
                             to: temp.appendingPathComponent("rng.safetensors"))
        // Swap in: the old state stays complete until the rename.
        let old = run.root.appendingPathComponent(".state.old")
        try? fm.removeItem(at: old)
        if fm.fileExists(atPath: run.state.path) { try fm.moveItem(at: run.state, to: old) }
        try fm.moveItem(at: temp, to: run.state)
        try? fm.removeItem(at: old)
    }

    /// Restores a saved state; false when the run has none.
    func loadState() throws -> Bool {
        let fm = FileManager.default
        // A crash between the two renames of `saveState` leaves the previous state in `.state.old`.
        let old = run.root.appendingPathComponent(".state.old")
        if !fm.fileExists(atPath: run.state.path), fm.fileExists(atPath: old.path) { try fm.moveItem(at: old, to: run.state) }
        let trainerFile = run.state.appendingPathComponent("trainer.json")
        guard fm.fileExists(atPath: trainerFile.path) else { return false }
        let json = JSONDecoder()
        json.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        state = try json.decode(TrainerState.self, from: Data(contentsOf: trainerFile))
        scaler = state.scaler
        let lora = try SafetensorsFile(url: run.state.appendingPathComponent("lora.safetensors"))
        try noGrad { try network.loadParameters(lora.tensors(), source: lora.path) }
        try optimizer.load(contentsOf: run.state.appendingPathComponent("optimizer.safetensors"))
        let (rngState, _) = try Safetensors.load(run.state.appendingPathComponent("rng.safetensors"))
        guard let run = rngState["run"], let dropout = rngState["dropout"] else {
            throw TrainingStopped(reason: "\(self.run.state.path)/rng.safetensors lacks the generator states")
        }
        try rng.setState(run)
        try dropoutRNG.setState(dropout)
        return true
    }

    /// Kohya-format LoRA with its training metadata, written atomically.
    func saveLoRA(to url: URL, step: Int) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        var meta = KohyaMetadata()
        meta.outputName = config.output.name
        meta.learningRate = config.optimizer.learningRate
        meta.unetLR = config.optimizer.learningRate
        meta.textEncoderLR = config.lora.textEncoder ? config.optimizer.textEncoderLearningRate : nil
        meta.optimizer = "torch.optim.AdamW(fused=True)"
        meta.lrScheduler = config.schedule.name
        meta.lrWarmupSteps = config.schedule.warmupSteps
        meta.maxTrainSteps = config.training.maxSteps
        meta.maxGradNorm = config.training.maxGradNorm
        meta.gradientAccumulationSteps = config.training.gradientAccumulation
        meta.gradientCheckpointing = config.training.gradientCheckpointing
        meta.mixedPrecision = config.training.mixedPrecision
        meta.seed = config.training.seed
        meta.noiseOffset = config.training.noiseOffset
        meta.minSNRGamma = config.training.minSNRGamma > 0 ? config.training.minSNRGamma : nil
        meta.steps = step
        meta.epoch = state.epoch
        meta.numTrainImages = train.count
        meta.batchSizePerDevice = config.training.batchSize
        meta.totalBatchSize = config.training.batchSize * config.training.gradientAccumulation
        meta.resolution = (config.data.resolution, config.data.resolution)
        meta.cacheLatents = true
        meta.flipAug = config.data.flip
        meta.networkDropout = config.lora.dropout
        meta.tagFrequency = ["dataset": tagCounts()]
        try network.saveKohya(to: url, metadata: meta)
        if config.output.peftFormat {
            try network.savePEFT(to: url.deletingPathExtension().appendingPathExtension("peft.safetensors"))
        }
    }

    /// Comma-separated caption tags and how often each occurs (kohya's `ss_tag_frequency`).
    func tagCounts() -> [String: Int] {
        var counts: [String: Int] = [:]
        for example in train {
            for tag in example.caption.split(separator: ",") {
                let t = tag.trimmingCharacters(in: .whitespaces)
                if !t.isEmpty { counts[t, default: 0] += 1 }
            }
        }
        return counts
    }

    /// Keeps the newest `keep` step checkpoints (best and final are separate files).
    func pruneCheckpoints() throws {
        guard config.output.keep > 0 else { return }
        let files = try FileManager.default.contentsOfDirectory(at: run.lora, includingPropertiesForKeys: nil)
            .filter { $0.lastPathComponent.hasPrefix("step_") && $0.pathExtension == "safetensors" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        for file in files.dropLast(config.output.keep) { try FileManager.default.removeItem(at: file) }
    }
}
