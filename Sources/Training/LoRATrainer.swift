// The LoRA trainer: frozen UNet, VAE and text encoder, LoRA adapters on the configured modules,
// cached latents and text embeddings, AdamW with a warmup schedule, gradient accumulation and
// clipping, mixed precision, deterministic validation, samples, checkpoints and exact resume.
import Foundation
import Imaging
import LoRA
import RunFiles
import StableDiffusion
import Torch

public enum TrainingEvent {
    case message(String)
    case caching(done: Int, total: Int)
    case step(step: Int, total: Int, loss: Double, smoothed: Double, learningRate: Double)
    case validation(step: Int, loss: Double, isBest: Bool)
    case samples(step: Int, folder: URL)
    case checkpoint(URL)
}

public struct TrainingSummary: Sendable {
    public var steps: Int
    public var bestStep: Int?
    public var bestValidationLoss: Double?
    public var finalValidationLoss: Double?
    public var nonFiniteSteps: Int
    public var seconds: Double
    public var stepsPerSecond: Double
    public var interrupted: Bool
}

public struct TrainingStopped: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}

public final class LoRATrainer {
    public let config: TrainingConfig
    public let pipeline: StableDiffusionPipeline
    public let network: LoRANetwork
    public let optimizer: AdamW
    let schedule: LRSchedule
    let diffusionLoss: DiffusionLoss
    let noise: DDPMScheduler
    let train: [TrainingExample]
    let validation: [TrainingExample]
    let latents: LatentCache
    let run: RunFolder
    /// Scores sample images against their prompts (CLIP score), when configured.
    public var clipScorer: (([Image], [String]) throws -> Double)?

    // Training position and random state (saved in checkpoints).
    var state = TrainerState()
    let rng: Generator
    /// LoRA dropout's masks, separate from the data randomness.
    let dropoutRNG: Generator
    var textCache: [String: Tensor] = [:]
    var scaler: GradScaler?
    /// The current epoch's batch plan, computed once per epoch.
    var epochPlan: (epoch: Int, batches: [[Int]])?
    /// Called before each micro-batch's forward pass and before sampling; tests throw from it (out of
    /// memory) to check recovery.
    var faultInjection: ((FaultPoint) throws -> Void)?
    enum FaultPoint { case microBatch, samples }
    /// status.json while `run` is under way; beaten from the loop and from long passes inside a step.
    var heartbeat: TrainerHeartbeat?
    /// Seconds between heartbeat writes (the tests lower it).
    var statusInterval: TimeInterval = 5
    /// The other ranks of a data-parallel run (`inkwell train --nproc N`, torchrun); nil for one process. Set
    /// before `run`: `training.batch_size` is then per rank, and a global batch is `batch_size × world size`.
    public var dataParallel: DataParallel?
    /// Whether this process writes the run's files: rank 0 of a data-parallel run, or the only process.
    var writesFiles: Bool { dataParallel?.writesFiles ?? true }
    /// The rows of one micro-batch over all ranks.
    var globalBatchSize: Int { config.training.batchSize * (dataParallel?.worldSize ?? 1) }

    public init(config: TrainingConfig, examples: [TrainingExample], pipeline: StableDiffusionPipeline,
                modelIdentity: String, cacheDirectory: URL) throws {
        self.config = config
        self.pipeline = pipeline
        train = examples.filter { !$0.isValidation }
        validation = examples.filter(\.isValidation)
        guard !train.isEmpty else {
            throw TrainingStopped(reason: "the dataset has no training images (all \(examples.count) are validation)")
        }
        let precision = config.training.mixedPrecision
        guard pipeline.dtype == config.training.weightDType else {
            throw TrainingStopped(reason: "training.mixed_precision = \(precision) needs the model loaded in "
                + "\(config.training.weightDType), but it is in \(pipeline.dtype)")
        }
        // fp16 latents from SD1.x's VAE overflow; encode in float32 (the issue diffusers' force_upcast avoids).
        guard precision != .fp16 || pipeline.vae.store.dtype != .float16 else {
            throw TrainingStopped(reason: "training.mixed_precision = fp16 keeps the VAE in float32: load it with vaeDType: .float32")
        }
        run = config.runFolder
        rng = try Generator(seed: UInt64(config.training.seed))
        // Dropout masks are drawn where the activations are (a CUDA generator on a GPU, as torch's dropout does).
        dropoutRNG = try Generator(seed: UInt64(config.training.seed) &+ 2, device: pipeline.device)
        var ddpmConfig = pipeline.schedulerConfig
        ddpmConfig.className = SchedulerKind.ddpm.rawValue
        guard let ddpm = try ddpmConfig.makeScheduler(.ddpm) as? DDPMScheduler else {
            throw TrainingStopped(reason: "could not build the DDPM noise scheduler")
        }
        noise = ddpm
        diffusionLoss = DiffusionLoss(unet: pipeline.unet, textEncoder: pipeline.textEncoder, noise: ddpm,
                                      computeType: pipeline.dtype, minSNRGamma: config.training.minSNRGamma)

        // Fresh adapters (float32, whatever the frozen weights' dtype), A drawn from the run's seed.
        network = LoRANetwork(device: pipeline.device, dtype: .float32,
                              generator: try Generator(seed: UInt64(config.training.seed) &+ 1))
        try pipeline.unet.store.freezeAll()
        try pipeline.textEncoder.store.freezeAll()
        try pipeline.vae.store.freezeAll()
        try network.addAdapters(to: pipeline.unet.store, component: .unet,
                                config: LoRAConfig(rank: config.lora.rank, alpha: config.lora.alpha, dropout: config.lora.dropout,
                                                   targets: LoRATargets(config.lora.targets)))
        if config.lora.textEncoder {
            try network.addAdapters(to: pipeline.textEncoder.store, component: .textEncoder,
                                    config: LoRAConfig(rank: config.lora.rank, alpha: config.lora.alpha,
                                                       dropout: config.lora.dropout,
                                                       targets: LoRATargets(config.lora.textEncoderTargets)))
        }
        network.dropoutGenerator = dropoutRNG
        // Set either way: a pipeline reused from an earlier run must not keep that run's setting. The
        // recomputation replays LoRA dropout's masks, so gradients equal those without checkpointing.
        let checkpointing = config.training.gradientCheckpointing ? GradientCheckpointing(preservingRNGOf: [dropoutRNG]) : nil
        pipeline.unet.gradientCheckpointing = checkpointing
        pipeline.textEncoder.gradientCheckpointing = config.lora.textEncoder ? checkpointing : nil
        let o = config.optimizer
        optimizer = try AdamW(groups: network.parameterGroups(unetLR: o.learningRate, textEncoderLR: o.textEncoderLearningRate,
                                                             betas: (o.beta1, o.beta2), eps: o.eps, weightDecay: o.weightDecay))
        let s = config.schedule
        schedule = try LRSchedule(s.name, warmupSteps: s.warmupSteps,
                                  trainingSteps: config.training.maxSteps, numCycles: s.numCycles,
                                  initialLR: o.learningRate)
        latents = try LatentCache(directory: cacheDirectory, vae: pipeline.vae, vaeIdentity: modelIdentity)
        if config.training.mixedPrecision == .fp16 { scaler = try GradScaler() }
    }

    // MARK: Preparation

    /// Caches every latent and (with a frozen text encoder) every caption's embeddings.
    /// In a data-parallel run each rank encodes every world-size-th image (each entry is its own file, so the
    /// shares never collide); the caller waits for all ranks before reading them.
    func prepareCaches(shouldStop: () -> Bool = { false }, events: (TrainingEvent) -> Void) throws {
        var images = (train + validation).map(\.image)
        if let dataParallel {
            images = images.enumerated().filter { $0.offset % dataParallel.worldSize == dataParallel.rank }.map(\.element)
        }
        let encoded = try latents.prepare(images, flips: config.data.flip, shouldStop: shouldStop) { done, total in
            heartbeat?.beat()
            events(.caching(done: done, total: total))
        }
        if encoded > 0 { events(.message("cached latents of \(encoded) image(s)")) }
        if !config.lora.textEncoder {
            for caption in Set((train + validation).map(\.caption)) where textCache[caption] == nil {
                textCache[caption] = try noGrad { try encodeText(caption) }
            }
        }
    }

    func encodeText(_ caption: String) throws -> Tensor {
        try pipeline.textEncoder(pipeline.tokenizer.inputIds([caption]).to(pipeline.device)).lastHiddenState
    }

    func context(for captions: [String]) throws -> (Tensor?, Tensor?) {
        if config.lora.textEncoder {
            return (nil, try pipeline.tokenizer.inputIds(captions).to(pipeline.device))
        }
        let rows = try captions.map { caption -> Tensor in
            if let hit = textCache[caption] { return hit }
            let t = try noGrad { try encodeText(caption) }
            textCache[caption] = t
            return t
        }
        return (try Tensor.cat(rows), nil)
    }

    // MARK: Data order

    /// The micro-batches of `epoch`: a seeded shuffle, batches of one latent size (bucket), then the
    /// batches shuffled. A pure function of (seed, epoch), so a resumed run replays it exactly. Batches are
    /// global (all ranks' rows): every rank plans the same and takes its share.
    func plan(epoch: Int) throws -> [[Int]] {
        let g = try Generator(seed: UInt64(config.training.seed) &* 1_000_003 &+ UInt64(epoch))
        let order = try Tensor.randperm(train.count, generator: g).toArray(Int.self)
        var buckets: [[Int]: [Int]] = [:]
        var bucketOrder: [[Int]] = []
        for i in order {
            let shape = try latents.moments(train[i].image, flipped: false, device: pipeline.device).mean.shape
            if buckets[shape] == nil { bucketOrder.append(shape) }
            buckets[shape, default: []].append(i)
        }
        var batches: [[Int]] = []
        for shape in bucketOrder {
            let members = buckets[shape] ?? []
            batches += stride(from: 0, to: members.count, by: globalBatchSize).map {
                Array(members[$0..<min($0 + globalBatchSize, members.count)])
            }
        }
        let shuffle = try Tensor.randperm(batches.count, generator: g).toArray(Int.self)
        return shuffle.map { batches[$0] }
    }

    /// Draws a micro-batch's randomness from the run's generator: latent samples, flips, noise,
    /// noise offset, timesteps. A data-parallel rank draws the whole global batch, as every rank does from the
    /// same generator state, and keeps its rows (`share`): the ranks together see exactly what one process would.
    func microBatch(_ indices: [Int]) throws -> MicroBatch {
        let device = pipeline.device
        let flips = config.data.flip ? try Tensor.rand([indices.count], generator: rng).lt(0.5).toArray(Bool.self)
                                     : Array(repeating: false, count: indices.count)
        var means: [Tensor] = [], stds: [Tensor] = []
        for (i, flipped) in zip(indices, flips) {
            let m = try latents.moments(train[i].image, flipped: flipped, device: device)
            means.append(m.mean)
            stds.append(try (m.logvar.clamp(min: -30, max: 20) * 0.5).exp())
        }
        let mean = try Tensor.cat(means), std = try Tensor.cat(stds)
        let eps = try randnTensor(mean.shape, generator: rng, device: device)
        let x0 = try (mean + std * eps) * pipeline.vae.scalingFactor
        var n = try randnTensor(x0.shape, generator: rng, device: device)
        if config.training.noiseOffset > 0 {
            let offset = try randnTensor([x0.size(0), x0.size(1), 1, 1], generator: rng, device: device)
            n = try n + offset * config.training.noiseOffset
        }
        let range = config.training.timestepRange
        let t = try randintTensor(range[0], range[1], [indices.count], generator: rng, device: device)
        let (context, ids) = try context(for: indices.map { train[$0].caption })
        return MicroBatch(latents: x0, noise: n, timesteps: t, context: context, inputIds: ids)
    }

    func nextMicroBatchIndices() throws -> [Int] {
        func batches(_ epoch: Int) throws -> [[Int]] {
            if let cached = epochPlan, cached.epoch == epoch { return cached.batches }
            let planned = try plan(epoch: epoch)
            epochPlan = (epoch, planned)
            return planned
        }
        var current = try batches(state.epoch)
        if state.position >= current.count {
            state.epoch += 1
            state.position = 0
            current = try batches(state.epoch)
        }
        defer { state.position += 1 }
        return current[state.position]
    }

    /// This rank's rows of a global micro-batch, and the weight of its loss: rows × world size / global rows, so that
    /// averaging the ranks' gradients gives the gradient of the global batch's mean loss even when a short batch
    /// leaves ranks uneven (or empty: nil).
    func share(of batch: MicroBatch, _ dataParallel: DataParallel) throws -> (batch: MicroBatch?, weight: Double) {
        let count = batch.latents.size(0)
        let rows = dataParallel.rows(of: count, perRank: config.training.batchSize)
        guard !rows.isEmpty else { return (nil, 0) }
        func slice(_ t: Tensor) throws -> Tensor { try t.narrow(dim: 0, start: rows.lowerBound, length: rows.count) }
        let local = MicroBatch(latents: try slice(batch.latents), noise: try slice(batch.noise),
                               timesteps: try slice(batch.timesteps), context: try batch.context.map(slice),
                               inputIds: try batch.inputIds.map(slice))
        return (local, Double(rows.count * dataParallel.worldSize) / Double(count))
    }
}
