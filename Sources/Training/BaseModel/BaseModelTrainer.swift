// Full training of a tiny SD1.x text-to-image model from scratch: the VAE first, as the latent-diffusion
// autoencoder is trained (reconstruction + a small KL, here without the perceptual and GAN losses), then
// the UNet and the CLIP text encoder together on the frozen VAE's latents with the ε-prediction loss of
// diffusers' train_text_to_image.py (caption dropout for classifier-free guidance). The weights stay in
// the pipeline's diffusers-layout stores, so saving is writing them back into the folder's files.
import AtomicFile
import Foundation
import Imaging
import StableDiffusion
import Torch

public final class BaseModelTrainer {
    public enum Phase: String, Sendable { case vae, diffusion }

    public enum Event {
        case message(String)
        case step(phase: Phase, step: Int, total: Int, loss: Double, smoothed: Double)
    }

    public let recipe: BaseModelRecipe
    public let pipeline: StableDiffusionPipeline
    /// The corpus: images [N, 3, S, S] in [−1, 1] and their captions.
    public let images: Tensor
    public let captions: [String]
    /// What the VAE learns to reconstruct (by default the corpus itself).
    public let vaeImages: Tensor
    let rng: Generator
    let noise: DDPMScheduler
    /// The frozen VAE's posterior over each corpus image, once phase 2 starts.
    var latentMean: Tensor?
    var latentStd: Tensor?
    /// `1 / std` of the corpus latents (SD's `scaling_factor`, measured as Rombach et al. did for theirs).
    public private(set) var scalingFactor: Double
    /// Every step's loss, by phase, for the run's log.
    public private(set) var losses: [(Phase, Int, Double)] = []

    /// `vaeCorpus` (by default `corpus`) is what phase 1 trains the VAE on; the UNet learns `corpus`.
    public init(recipe: BaseModelRecipe, pipeline: StableDiffusionPipeline, corpus: [SyntheticLineArt.Item],
                vaeCorpus: [SyntheticLineArt.Item]? = nil) throws {
        try recipe.validate()
        guard !corpus.isEmpty, vaeCorpus?.isEmpty != true else { throw BaseModelTrainingError("the corpus is empty") }
        self.recipe = recipe
        self.pipeline = pipeline
        images = try Tensor.stack(corpus.map { try $0.image.tensor(range: .symmetric, device: pipeline.device) })
        vaeImages = try vaeCorpus.map { try Tensor.stack($0.map { try $0.image.tensor(range: .symmetric, device: pipeline.device) }) } ?? images
        captions = corpus.map(\.caption)
        rng = try Generator(seed: recipe.seed &+ 100)
        var ddpmConfig = pipeline.schedulerConfig
        ddpmConfig.className = SchedulerKind.ddpm.rawValue
        guard let ddpm = try ddpmConfig.makeScheduler(.ddpm) as? DDPMScheduler else {
            throw BaseModelTrainingError("could not build the DDPM noise scheduler")
        }
        noise = ddpm
        scalingFactor = pipeline.vae.scalingFactor
    }

    // MARK: Phase 1: the VAE

    /// The VAE's loss on corpus images `indices`: mean L1 + MSE of the reconstruction of a posterior sample,
    /// plus `klWeight` × the KL to N(0, I) summed per image and divided by its pixel count (the LDM loss's
    /// per-image sums, rescaled to a mean).
    public func vaeLoss(_ indices: [Int]) throws -> Tensor {
        let x = try batch(vaeImages, indices)
        let posterior = try pipeline.vae.encode(x)
        let reconstruction = try pipeline.vae.decode(try posterior.sample(generator: rng))
        // L1 alone settles on blank paper: thin ink is a few percent of the pixels and L1's per-pixel optimum
        // is the median, so uncertain strokes become white. The squared term pulls them in by their error.
        let difference = try reconstruction - x
        let reconstructionLoss = try difference.abs().mean() + difference.square().mean()
        let kl = try ((posterior.mean.square() + posterior.variance - posterior.logvar - 1) * 0.5).sum()
        return try reconstructionLoss + kl * (recipe.klWeight / Double(x.count))
    }

    public func trainVAE(shouldStop: () -> Bool = { false }, events: (Event) -> Void = { _ in }) throws {
        let store = pipeline.vae.store
        try store.setTrainable { _ in true }
        defer { try? store.freezeAll() }
        let optimizer = try AdamW(groups: [AdamW.ParamGroup(name: "vae", parameters: store.trainable, lr: recipe.vaeLearningRate,
                                                            weightDecay: recipe.weightDecay)])
        try loop(.vae, items: vaeImages.shape[0], steps: recipe.vaeSteps, batchSize: recipe.vaeBatchSize, optimizer: optimizer,
                 shouldStop: shouldStop, events: events) { try vaeLoss($0) }
    }

    // MARK: Phase 2: UNet and text encoder

    /// Encodes the corpus with the (now frozen) VAE and sets the scaling factor to 1 / std of the latents.
    public func cacheLatents() throws {
        try noGrad {
            var means: [Tensor] = [], stds: [Tensor] = []
            for start in stride(from: 0, to: captions.count, by: 64) {
                let posterior = try pipeline.vae.encode(try images.narrow(dim: 0, start: start, length: min(64, captions.count - start)))
                means.append(posterior.mean)
                stds.append(posterior.std)
            }
            let mean = try Tensor.cat(means), std = try Tensor.cat(stds)
            let samples = try mean + std * randnTensor(mean.shape, generator: rng, device: mean.device)
            let centred = try samples - samples.mean()
            scalingFactor = 1 / (try centred.square().mean().item()).squareRoot()
            latentMean = mean
            latentStd = std
        }
    }

    /// The diffusion loss on corpus items `indices`: a latent sample × scaling factor, noised at uniform
    /// timesteps, the UNet's ε prediction against the noise; captions dropped to "" with `captionDropout`.
    public func diffusionLoss(_ indices: [Int]) throws -> Tensor {
        guard let latentMean, let latentStd else { throw BaseModelTrainingError("cacheLatents() must run before phase 2") }
        let device = pipeline.device
        let mean = try batch(latentMean, indices), std = try batch(latentStd, indices)
        let x0 = try (mean + std * randnTensor(mean.shape, generator: rng, device: device)) * scalingFactor
        let eps = try randnTensor(x0.shape, generator: rng, device: device)
        let t = try randintTensor(0, noise.schedule.numTrainTimesteps, [indices.count], generator: rng, device: device)
        let drops = try Tensor.rand([indices.count], dtype: .float64, generator: rng).toArray(Double.self)
        let prompts = zip(indices, drops).map { i, u in u < recipe.captionDropout ? "" : captions[i] }
        let ids = try pipeline.tokenizer.inputIds(prompts).to(device)
        let loss = DiffusionLoss(unet: pipeline.unet, textEncoder: pipeline.textEncoder, noise: noise,
                                 computeType: .float32, minSNRGamma: 0)
        return try loss(MicroBatch(latents: x0, noise: eps, timesteps: t, inputIds: ids))
    }

    public func trainDiffusion(shouldStop: () -> Bool = { false }, events: (Event) -> Void = { _ in }) throws {
        if latentMean == nil { try cacheLatents() }
        let unet = pipeline.unet.store, text = pipeline.textEncoder.store
        try unet.setTrainable { _ in true }
        try text.setTrainable { _ in true }
        defer {
            try? unet.freezeAll()
            try? text.freezeAll()
        }
        let optimizer = try AdamW(groups: [
            AdamW.ParamGroup(name: "unet", parameters: unet.trainable, lr: recipe.learningRate, weightDecay: recipe.weightDecay),
            AdamW.ParamGroup(name: "text_encoder", parameters: text.trainable, lr: recipe.textEncoderLearningRate,
                             weightDecay: recipe.weightDecay),
        ])
        try loop(.diffusion, items: captions.count, steps: recipe.diffusionSteps, batchSize: recipe.diffusionBatchSize, optimizer: optimizer,
                 shouldStop: shouldStop, events: events) { try diffusionLoss($0) }
    }

    // MARK: The loop both phases share

    /// Seeded epochs over `items` examples in batches; warmup + cosine learning rate; clipped gradients.
    func loop(_ phase: Phase, items: Int, steps: Int, batchSize: Int, optimizer: AdamW, shouldStop: () -> Bool,
              events: (Event) -> Void, loss lossOf: ([Int]) throws -> Tensor) throws {
        guard steps > 0 else { return }
        let schedule = try LRSchedule(.cosine, warmupSteps: min(recipe.warmupSteps, steps / 2), trainingSteps: steps)
        var order: [Int] = [], position = 0
        var smoothed: Double?
        for step in 1...steps {
            if shouldStop() { throw BaseModelTrainingStopped(phase: phase, step: step - 1) }
            CPUPacing.tick()
            if position + batchSize > order.count {
                order = try Tensor.randperm(items, generator: rng).toArray(Int.self)
                position = 0
            }
            let indices = Array(order[position..<min(position + batchSize, order.count)])
            position += batchSize
            try optimizer.setLearningRates(schedule: schedule, step: step - 1)
            try optimizer.zeroGrad()
            let loss = try lossOf(indices)
            try loss.backward()
            _ = try clipGradNorm(optimizer.parameters, maxNorm: recipe.maxGradNorm)
            try optimizer.step()
            let value = try loss.item()
            guard value.isFinite else { throw BaseModelTrainingError("\(phase.rawValue) phase: the loss is \(value) at step \(step)") }
            smoothed = smoothed.map { 0.98 * $0 + 0.02 * value } ?? value
            losses.append((phase, step, value))
            events(.step(phase: phase, step: step, total: steps, loss: value, smoothed: smoothed ?? value))
        }
    }

    func batch(_ t: Tensor, _ indices: [Int]) throws -> Tensor {
        try t.indexSelect(dim: 0, index: Tensor(indices.map(Int64.init)).to(t.device))
    }
}

public struct BaseModelTrainingStopped: Error, CustomStringConvertible {
    public let phase: BaseModelTrainer.Phase
    public let step: Int
    public var description: String { "stopped in the \(phase.rawValue) phase after step \(step); nothing was written" }
}
