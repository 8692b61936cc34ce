// A run's resumable state. `state/` (RunFiles' RunFolder) holds everything a resumed run needs to continue
// exactly where the interrupted one stopped: adapter weights, optimizer moments, position in the data
// order, random-generator states, loss scaler and best validation loss. It is written to a temporary
// folder and renamed into place, so an interrupted save never leaves a half-written state.
import AtomicFile
import Foundation
import LoRA
import RunFiles
import Torch

extension LoRATrainer {
    /// Saves the resumable state atomically (temp folder, then rename over the previous state).
    /// Rank 0's alone in a data-parallel run: the ranks' states are equal (the dropout generator included, drawn
    /// alike on every rank), so one copy resumes them all.
    func saveState() throws {
        guard writesFiles else { return }
        let fm = FileManager.default
        try fm.createDirectory(at: run.root, withIntermediateDirectories: true)
        let temp = run.root.appendingPathComponent(".state.tmp")
        try? fm.removeItem(at: temp)
        try fm.createDirectory(at: temp, withIntermediateDirectories: true)
        var s = state
        s.scaler = scaler
        s.worldSize = (dataParallel?.worldSize).flatMap { $0 > 1 ? $0 : nil }
        do {
            try writeAtomically(s.encoded(), to: temp.appendingPathComponent(TrainerState.fileName))
            try Safetensors.save(Dictionary(uniqueKeysWithValues: network.parameters.map { ($0.0, try $0.1.detach()) }),
                                 to: temp.appendingPathComponent("lora.safetensors"))
            try optimizer.save(to: temp.appendingPathComponent("optimizer.safetensors"))
            try Safetensors.save(["run": try rng.state(), "dropout": try dropoutRNG.state()],
                                 to: temp.appendingPathComponent("rng.safetensors"))
        } catch {
            // A full disk, say: the half-made state goes (giving its space back); the previous one stands.
            try? fm.removeItem(at: temp)
            throw error
        }
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
        guard fm.fileExists(atPath: run.trainerState.path) else { return false }
        state = try TrainerState(decoding: Data(contentsOf: run.trainerState))
        let saved = state.worldSize ?? 1, now = dataParallel?.worldSize ?? 1
        guard saved == now else {
            throw TrainingStopped(reason: "\(run.state.path) was saved by \(saved) data-parallel rank(s) and cannot continue on \(now): "
                + "its position counts global batches of training.batch_size × \(saved); resume with \(saved) rank(s)")
        }
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
        guard writesFiles else { return }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        var meta = KohyaMetadata()
        meta.outputName = config.output.name
        meta.learningRate = config.optimizer.learningRate
        meta.unetLR = config.optimizer.learningRate
        meta.textEncoderLR = config.lora.textEncoder ? config.optimizer.textEncoderLearningRate : nil
        meta.optimizer = "torch.optim.AdamW(fused=True)"
        meta.lrScheduler = config.schedule.name.rawValue
        meta.lrWarmupSteps = config.schedule.warmupSteps
        meta.maxTrainSteps = config.training.maxSteps
        meta.maxGradNorm = config.training.maxGradNorm
        meta.gradientAccumulationSteps = config.training.gradientAccumulation
        meta.gradientCheckpointing = config.training.gradientCheckpointing
        meta.mixedPrecision = config.training.mixedPrecision.rawValue
        meta.seed = config.training.seed
        meta.noiseOffset = config.training.noiseOffset
        meta.minSNRGamma = config.training.minSNRGamma > 0 ? config.training.minSNRGamma : nil
        meta.steps = step
        meta.epoch = state.epoch
        meta.numTrainImages = train.count
        meta.batchSizePerDevice = config.training.batchSize
        meta.totalBatchSize = globalBatchSize * config.training.gradientAccumulation
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
        guard writesFiles, config.output.keep > 0 else { return }
        let steps = run.checkpoints().compactMap { checkpoint -> (Int, URL)? in
            if case .step(let step) = checkpoint.name { return (step, checkpoint.url) }
            return nil
        }
        for (_, url) in steps.sorted(by: { $0.0 < $1.0 }).dropLast(config.output.keep) { try FileManager.default.removeItem(at: url) }
    }
}
