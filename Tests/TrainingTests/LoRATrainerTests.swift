import Foundation
import RunFiles
import Testing
import TestSupport
import StableDiffusion
import Torch
@testable import Training

/// A trainer on the tiny SD1.x-architecture fixture model and 8 synthetic line-art images (32 px),
/// the last two held out for validation.
func makeTrainer(_ dir: URL, output: String = "run", pipeline: StableDiffusionPipeline? = nil,
                 configure: (inout TrainingConfig) -> Void = { _ in }) throws -> LoRATrainer {
    let model = try Fixtures.url("pipeline", "model")
    let images = dir.appendingPathComponent("images")
    let items = try SyntheticLineArt.make(count: 8, size: 32, seed: 5)
    let urls = FileManager.default.fileExists(atPath: images.path)
        ? (0..<8).map { images.appendingPathComponent(String(format: "art%03d.png", $0)) }
        : try SyntheticLineArt.write(items, to: images)
    let examples = urls.enumerated().map { i, url in
        TrainingExample(name: url.lastPathComponent, image: url, caption: items[i].caption, isValidation: i >= 6)
    }
    var config = TrainingConfig()
    config.model.path = model.path
    config.data.dataset = dir.path
    config.data.resolution = 32
    config.lora.rank = 4
    config.lora.alpha = 4
    config.optimizer.learningRate = 2e-3
    config.schedule.name = .constantWithWarmup
    config.schedule.warmupSteps = 2
    config.training.maxSteps = 6
    config.training.batchSize = 2
    config.validation.every = 3
    config.samples.every = 0
    config.output.dir = dir.appendingPathComponent("runs").path
    config.output.name = output
    configure(&config)
    let pipe = try pipeline ?? StableDiffusionPipeline.load(.diffusersFolder(model), device: .cpu, dtype: .float32)
    return try LoRATrainer(config: config, examples: examples, pipeline: pipe, modelIdentity: "tiny-fixture",
                           cacheDirectory: dir.appendingPathComponent("cache"))
}

func loraTensors(_ trainer: LoRATrainer) throws -> [String: Tensor] {
    Dictionary(uniqueKeysWithValues: try trainer.network.parameters.map { ($0.0, try $0.1.detach().clone()) })
}

@Suite struct LoRATrainerTests {
    @Test func theLoggedLearningRateIsTheOneEachStepUsed() throws {
        let dir = try temporaryDirectory()
        let trainer = try makeTrainer(dir) { c in
            c.training.maxSteps = 4
            c.validation.every = 2
        }
        _ = try trainer.run(resume: false)
        let rows = try TrainingLog.read(trainer.run.log)
        // constant_with_warmup, 2 warmup steps, peak 2e-3: optimizer step n runs at 2e-3 · min(1, (n − 1) / 2)
        // (diffusers' LambdaLR), and step 0 shows what step 1 will use.
        #expect(rows.map(\.step) == [0, 1, 2, 3, 4])
        #expect(rows.map(\.learningRate) == [0, 0, 1e-3, 2e-3, 2e-3])
    }

    @Test func samplesFollowTheirOwnCadence() throws {
        let dir = try temporaryDirectory()
        // Samples every 2 steps, validation every 3: samples at 0, 2, 4, 6; validation and checkpoints at 3 and 6.
        let trainer = try makeTrainer(dir) { $0.samples.every = 2; $0.samples.steps = 2; $0.samples.size = 32; $0.samples.seeds = [1] }
        _ = try trainer.run(resume: false)
        #expect(trainer.run.sampleSteps() == [0, 2, 4, 6])
        let rows = try TrainingLog.read(trainer.run.log)
        #expect(rows.map(\.step) == Array(0...6))
        #expect(rows.filter { $0.validationLoss != nil }.map(\.step) == [0, 3, 6])
        #expect(!FileManager.default.fileExists(atPath: trainer.run.checkpoint(step: 2).path))
        #expect(FileManager.default.fileExists(atPath: trainer.run.checkpoint(step: 3).path))
    }

    @Test func trainingAndValidationLossFall() throws {
        let dir = try temporaryDirectory()
        let trainer = try makeTrainer(dir) { c in
            c.training.maxSteps = 40
            c.validation.every = 20
        }
        let summary = try trainer.run(resume: false)
        let rows = try TrainingLog.read(trainer.run.log)
        let validation = rows.compactMap(\.validationLoss)
        #expect(validation.count == 3)
        let first = try #require(validation.first), last = try #require(validation.last)
        #expect(last < 0.9 * first, "validation loss \(validation)")
        let train = rows.compactMap(\.trainLoss)
        let early = train.prefix(5).reduce(0, +) / 5, late = train.suffix(5).reduce(0, +) / 5
        #expect(late < early, "train loss \(early) → \(late)")
        #expect(summary.steps == 40 && summary.bestStep != nil)
        for url in [trainer.run.final, trainer.run.best, trainer.run.config] {
            #expect(FileManager.default.fileExists(atPath: url.path), "\(url.lastPathComponent)")
        }
    }

    /// An interrupted run resumed with --resume ends with the same log and weights as an
    /// uninterrupted one, bit for bit (with LoRA dropout, so RNG state must be restored too).
    @Test func resumeEqualsAnUninterruptedRun() throws {
        let dir = try temporaryDirectory()
        let dropout: (inout TrainingConfig) -> Void = { $0.lora.dropout = 0.1; $0.training.gradientAccumulation = 2 }
        let straight = try makeTrainer(dir, output: "straight", configure: dropout)
        _ = try straight.run(resume: false)

        let first = try makeTrainer(dir, output: "resumed", configure: dropout)
        let partial = try first.run(resume: false, shouldStop: { first.state.step >= 4 })
        #expect(partial.interrupted && partial.steps == 4)
        let second = try makeTrainer(dir, output: "resumed", configure: dropout)
        let summary = try second.run(resume: true)
        #expect(!summary.interrupted && summary.steps == 6)

        let a = try Safetensors.load(straight.run.final).tensors, b = try Safetensors.load(second.run.final).tensors
        #expect(Set(a.keys) == Set(b.keys) && !a.isEmpty)
        for (key, value) in a { try expectEqual(try #require(b[key]), value, key) }
        #expect(try TrainingLog.read(straight.run.log) == TrainingLog.read(second.run.log))
    }

    /// Out of memory in the middle of an accumulated step: the state is saved as of the last completed step
    /// (what the failed step drew is rewound), so resuming gives the uninterrupted run's weights and log.
    @Test func outOfMemorySavesTheLastCompletedStepForResume() throws {
        let dir = try temporaryDirectory()
        let settings: (inout TrainingConfig) -> Void = { $0.lora.dropout = 0.1; $0.training.gradientAccumulation = 2 }
        let straight = try makeTrainer(dir, output: "straight", configure: settings)
        _ = try straight.run(resume: false)

        let failing = try makeTrainer(dir, output: "resumed", configure: settings)
        var forwards = 0
        failing.faultInjection = { _ in
            forwards += 1
            // The second micro-batch of step 5: the first one's forward and backward already ran.
            if forwards == 10 { throw TorchError.outOfMemory("injected") }
        }
        #expect(throws: TorchError.self) { try failing.run(resume: false) }
        let resumed = try makeTrainer(dir, output: "resumed", configure: settings)
        #expect(try resumed.loadState() && resumed.state.step == 4)
        let summary = try makeTrainer(dir, output: "resumed", configure: settings).run(resume: true)
        #expect(summary.steps == 6)
        let a = try Safetensors.load(straight.run.final).tensors
        let b = try Safetensors.load(resumed.run.final).tensors
        for (key, value) in a { try expectEqual(try #require(b[key]), value, key) }
        #expect(try TrainingLog.read(straight.run.log) == TrainingLog.read(resumed.run.log))
    }

    /// Out of memory while rendering samples skips them with a message; the step's checkpoint (written
    /// before sampling) is there and training carries on to the end.
    @Test func outOfMemoryWhileSamplingSkipsTheSamplesOnly() throws {
        let dir = try temporaryDirectory()
        let trainer = try makeTrainer(dir) { $0.samples.every = 3; $0.samples.steps = 2; $0.samples.size = 32 }
        trainer.faultInjection = { point in
            if point == .samples, trainer.state.step == 3 { throw TorchError.outOfMemory("injected") }
        }
        var messages: [String] = []
        let summary = try trainer.run(resume: false, events: { if case .message(let text) = $0 { messages.append(text) } })
        #expect(summary.steps == 6 && !summary.interrupted)
        #expect(messages.contains { $0.contains("step 3: samples skipped, out of memory") }, "\(messages)")
        #expect(FileManager.default.fileExists(atPath: trainer.run.checkpoint(step: 3).path))
        #expect(FileManager.default.fileExists(atPath: trainer.run.samples(step: 6).path))
        #expect(!FileManager.default.fileExists(atPath: trainer.run.samples(step: 3).path))
    }

    /// Four micro-batches of one, accumulated, update the adapters as one batch of four does.
    @Test func accumulationMatchesOneLargeBatch() throws {
        let dir = try temporaryDirectory()
        let big = try makeTrainer(dir, output: "big")
        let small = try makeTrainer(dir, output: "small")
        try big.prepareCaches(events: { _ in })
        try small.prepareCaches(events: { _ in })
        #expect(try loraTensors(big).keys == loraTensors(small).keys)
        let batch = try big.microBatch([0, 1, 2, 3])
        _ = try big.optimizerStep([batch])
        let parts = try (0..<4).map { i in
            MicroBatch(latents: try batch.latents.narrow(dim: 0, start: i, length: 1),
                       noise: try batch.noise.narrow(dim: 0, start: i, length: 1),
                       timesteps: try batch.timesteps.narrow(dim: 0, start: i, length: 1),
                       context: try batch.context?.narrow(dim: 0, start: i, length: 1))
        }
        _ = try small.optimizerStep(parts)
        let a = try loraTensors(big), b = try loraTensors(small)
        for (key, value) in a { try expectClose(try #require(b[key]), value, atol: 1e-6, key) }
        // And the update is not trivially zero.
        #expect(try a.values.contains { try $0.abs().max().item() > 0 })
    }

    @Test func validationLossIsDeterministicAndIndependentOfTrainingRNG() throws {
        let dir = try temporaryDirectory()
        let trainer = try makeTrainer(dir)
        try trainer.prepareCaches(events: { _ in })
        let v1 = try trainer.validationLoss()
        _ = try trainer.microBatch([0, 1])  // advances the training generator
        let v2 = try trainer.validationLoss()
        #expect(v1 == v2)
        let other = try makeTrainer(dir, output: "other") { $0.training.seed = 999 }
        try other.prepareCaches(events: { _ in })
        // Different seed: different fresh A, but B = 0, so the model (and its validation loss) is the same.
        #expect(try other.validationLoss() == v1)
    }

    @Test func nonFiniteLossesAreSkippedThenStopTheRun() throws {
        let dir = try temporaryDirectory()
        let trainer = try makeTrainer(dir) { $0.training.maxNonFiniteLosses = 3; $0.validation.every = 100 }
        try trainer.prepareCaches(events: { _ in })
        let (_, up) = try #require(trainer.network.parameters.first { $0.0.contains("up") })
        try noGrad { try up.fill_(.nan) }
        #expect(throws: TrainingStopped.self) { try trainer.run(resume: false) }
        #expect(trainer.state.nonFiniteTotal == 3)
        // The state saved before the failures is still there and loads.
        #expect(try trainer.loadState())
        #expect(trainer.state.step == 0)
    }

    /// A save interrupted between its two renames leaves the previous state, which loading restores.
    @Test func interruptedStateSaveKeepsThePreviousState() throws {
        let dir = try temporaryDirectory()
        let trainer = try makeTrainer(dir)
        try trainer.prepareCaches(events: { _ in })
        trainer.state.step = 7
        try trainer.saveState()
        let fm = FileManager.default
        let old = trainer.run.root.appendingPathComponent(".state.old")
        try fm.moveItem(at: trainer.run.state, to: old)
        try fm.createDirectory(at: trainer.run.root.appendingPathComponent(".state.tmp"), withIntermediateDirectories: true)
        trainer.state.step = 0
        #expect(try trainer.loadState())
        #expect(trainer.state.step == 7)
    }
}

@Suite struct LoRATrainerVariantTests {
    /// Text-encoder LoRA trains with its own learning rate and is saved under kohya's `lora_te_` names.
    @Test func textEncoderAdaptersTrainAndSaveAsKohya() throws {
        let dir = try temporaryDirectory()
        let trainer = try makeTrainer(dir) { c in
            c.lora.textEncoder = true
            c.training.maxSteps = 2
            c.validation.every = 2
        }
        #expect(trainer.optimizer.groups.map(\.name) == ["unet", "text_encoder"])
        let before = try loraTensors(trainer)
        _ = try trainer.run(resume: false)
        let after = try loraTensors(trainer)
        let teDown = try #require(after.keys.first { $0.hasPrefix("text_encoder.") && $0.hasSuffix("lora_A.weight") })
        #expect(try maxAbsDiff(try #require(after[teDown]), try #require(before[teDown])) > 0)
        let (tensors, metadata) = try Safetensors.load(trainer.run.final)
        #expect(tensors.keys.contains("lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight"))
        #expect(tensors.keys.contains { $0.hasPrefix("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q") })
        #expect(metadata["ss_network_dim"] == "4")
    }

    /// bf16 mixed precision: frozen weights in bf16, adapters and their optimizer state in fp32.
    @Test func bf16KeepsAdaptersInFloat32() throws {
        let dir = try temporaryDirectory()
        let model = try Fixtures.url("pipeline", "model")
        let trainer = try makeTrainer(dir, pipeline: try StableDiffusionPipeline.load(.diffusersFolder(model), device: .cpu,
                                                                                       dtype: .bfloat16)) { c in
            c.training.mixedPrecision = .bf16
            c.training.maxSteps = 3
            c.validation.every = 3
        }
        #expect(trainer.pipeline.unet.store.named.allSatisfy { $0.1.dtype == .bfloat16 })
        let summary = try trainer.run(resume: false)
        #expect(trainer.network.parameters.allSatisfy { $0.1.dtype == .float32 })
        #expect(summary.nonFiniteSteps == 0 && (summary.finalValidationLoss ?? .nan).isFinite)
    }

    /// fp16 mixed precision: UNet and text encoder in fp16, the VAE kept in fp32, fp32 adapters, the loss scaled
    /// dynamically. Started at 2²⁴ the scale must back off through overflowing steps (skipped, not counted as
    /// non-finite losses), and the scaler is part of the saved state: a resumed run equals an uninterrupted one.
    @Test func fp16ScalesTheLossAndResumesExactly() throws {
        let dir = try temporaryDirectory()
        let model = try Fixtures.url("pipeline", "model")
        func fp16Trainer(_ output: String) throws -> LoRATrainer {
            let pipeline = try StableDiffusionPipeline.load(.diffusersFolder(model), device: .cpu, dtype: .float16,
                                                            vaeDType: .float32)
            let trainer = try makeTrainer(dir, output: output, pipeline: pipeline) { $0.training.mixedPrecision = .fp16 }
            trainer.scaler = try GradScaler(initScale: 16_777_216)
            return trainer
        }
        let straight = try fp16Trainer("straight")
        #expect(straight.pipeline.unet.store.named.allSatisfy { $0.1.dtype == .float16 })
        #expect(straight.pipeline.textEncoder.store.named.allSatisfy { $0.1.dtype == .float16 })
        #expect(straight.pipeline.vae.store.dtype == .float32)
        let summary = try straight.run(resume: false)
        #expect(straight.network.parameters.allSatisfy { $0.1.dtype == .float32 })
        let scale = try #require(straight.scaler?.scale)
        #expect(scale < 16_777_216, "the scaler never backed off")
        #expect(summary.nonFiniteSteps == 0 && (summary.finalValidationLoss ?? .nan).isFinite)
        let trained = try loraTensors(straight).filter { $0.key.contains("lora_B") }
        #expect(try trained.values.contains { try $0.abs().max().item() > 0 }, "no step was taken")

        let first = try fp16Trainer("resumed")
        _ = try first.run(resume: false, shouldStop: { first.state.step >= 4 })
        let second = try fp16Trainer("resumed")
        _ = try second.run(resume: true)
        #expect(second.scaler == straight.scaler)
        let a = try Safetensors.load(straight.run.final).tensors, b = try Safetensors.load(second.run.final).tensors
        for (key, value) in a { try expectEqual(try #require(b[key]), value, key) }
        #expect(try TrainingLog.read(straight.run.log) == TrainingLog.read(second.run.log))
    }

    @Test func mixedPrecisionMustMatchHowTheModelWasLoaded() throws {
        let dir = try temporaryDirectory()
        let model = try Fixtures.url("pipeline", "model")
        // fp16 asked for, model in fp32.
        #expect(throws: TrainingStopped.self) { try makeTrainer(dir) { $0.training.mixedPrecision = .fp16 } }
        // fp16 with the VAE in fp16 too (encoding would overflow).
        let allHalf = try StableDiffusionPipeline.load(.diffusersFolder(model), device: .cpu, dtype: .float16,
                                                       vaeDType: .float16)
        #expect(throws: TrainingStopped.self) { try makeTrainer(dir, pipeline: allHalf) { $0.training.mixedPrecision = .fp16 } }
    }
}
