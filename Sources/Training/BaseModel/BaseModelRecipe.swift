// The recipe of a full (not LoRA) training of a tiny SD1.x model on the generated line-art corpus: what
// `inkwell train-base` runs and what the committed demo model records in its `inkwell_recipe.json`.
// Every number that changes the weights is here, so the same recipe on the same libtorch gives the same model.
import Foundation

public struct BaseModelRecipe: Codable, Equatable, Sendable {
    /// Corpus images, drawn once from `corpusSeed` at `imageSize` px, thin outlines.
    public var corpusSize = 2048
    public var corpusSeed: UInt64 = 11
    public var imageSize = 64
    /// Seeds the initial weights and every random draw of training.
    public var seed: UInt64 = 1

    /// Phase 1, the VAE alone: L1 reconstruction plus `klWeight` × KL (the LDM autoencoder's objective
    /// without its perceptual and adversarial terms).
    public var vaeSteps = 800
    /// The fraction of the VAE's images redrawn with bold outlines. SD's VAE has seen every style, so a LoRA
    /// can teach the UNet a new one; a VAE that only saw thin strokes decodes bold latents back to thin lines,
    /// and no LoRA could make this model draw bold.
    public var vaeBoldFraction = 0.5
    public var vaeBatchSize = 16
    public var vaeLearningRate = 1e-3
    public var klWeight = 1e-6

    /// Phase 2, UNet and text encoder together on the frozen VAE's cached latents: ε-prediction MSE.
    public var diffusionSteps = 2500
    public var diffusionBatchSize = 32
    public var learningRate = 1e-3
    public var textEncoderLearningRate = 5e-4
    /// Captions replaced by the empty prompt, so classifier-free guidance has an unconditional model.
    public var captionDropout = 0.1

    /// Linear warmup, then cosine decay to zero, in each phase.
    public var warmupSteps = 100
    public var weightDecay = 0.01
    public var maxGradNorm = 1.0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case corpusSize = "corpus_size", corpusSeed = "corpus_seed", imageSize = "image_size", seed
        case vaeSteps = "vae_steps", vaeBoldFraction = "vae_bold_fraction", vaeBatchSize = "vae_batch_size", vaeLearningRate = "vae_learning_rate"
        case klWeight = "kl_weight", diffusionSteps = "diffusion_steps", diffusionBatchSize = "diffusion_batch_size"
        case learningRate = "learning_rate", textEncoderLearningRate = "text_encoder_learning_rate"
        case captionDropout = "caption_dropout", warmupSteps = "warmup_steps", weightDecay = "weight_decay"
        case maxGradNorm = "max_grad_norm"
    }

    /// Checks the numbers before any work; each problem names its flag.
    public func validate() throws {
        var problems: [String] = []
        if corpusSize < 2 { problems.append("--corpus-size must be at least 2 (got \(corpusSize))") }
        if imageSize < 16 || imageSize % 16 != 0 { problems.append("--image-size must be a multiple of 16, at least 16 (got \(imageSize))") }
        if vaeSteps < 0 || diffusionSteps < 0 { problems.append("--vae-steps and --diffusion-steps must not be negative") }
        if vaeBatchSize < 1 || diffusionBatchSize < 1 { problems.append("batch sizes must be at least 1") }
        if !(0...1).contains(vaeBoldFraction) { problems.append("vae_bold_fraction must be in [0, 1] (got \(vaeBoldFraction))") }
        if !(0..<1).contains(captionDropout) { problems.append("--caption-dropout must be in [0, 1) (got \(captionDropout))") }
        if learningRate <= 0 || vaeLearningRate <= 0 || textEncoderLearningRate <= 0 {
            problems.append("learning rates must be positive")
        }
        guard problems.isEmpty else { throw BaseModelTrainingError(problems.joined(separator: "; ")) }
    }
}

public struct BaseModelTrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
