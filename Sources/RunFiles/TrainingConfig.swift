// The training configuration: a TOML file whose sections mirror the job (model, data, lora,
// optimizer, schedule, training, validation, samples, output). Closed sets are enums, decoded when the
// file is read (TrainingConfig+TOML.swift), so a wrong name fails at load with the key's name. The
// resolved config is saved as the run's config.toml.
import Foundation
import StableDiffusion
import Torch

public struct TrainingConfig: Codable, Equatable, Sendable {
    public struct Model: Codable, Equatable, Sendable {
        /// A diffusers folder or a single-file .safetensors checkpoint.
        public var path = ""
        /// Tokenizer folder for a single-file checkpoint (default: tokenizer/ beside it).
        public var tokenizer: String?
        public var variant: String?
        /// "cpu", "cuda", "cuda:N" or "auto".
        public var device = "auto"
        enum CodingKeys: String, CodingKey, CaseIterable { case path, tokenizer, variant, device }
    }

    public struct Data: Codable, Equatable, Sendable {
        /// A folder made by `inkwell prepare` (data/processed/<dataset>).
        public var dataset = ""
        public var captions = CaptionVariant.vanilla
        public var vanillaPrompt = CaptionVariant.defaultPrompt
        public var resolution = 512
        /// Horizontal flips as augmentation (with their own cached latents).
        public var flip = false
        enum CodingKeys: String, CodingKey, CaseIterable {
            case dataset, captions, vanillaPrompt = "vanilla_prompt", resolution, flip
        }
    }

    public struct LoRA: Codable, Equatable, Sendable {
        public var rank = 16
        public var alpha = 16.0
        public var dropout = 0.0
        public var targets = ["to_q", "to_k", "to_v", "to_out.0"]
        public var textEncoder = false
        public var textEncoderTargets = ["q_proj", "k_proj", "v_proj", "out_proj"]
        enum CodingKeys: String, CodingKey, CaseIterable {
            case rank, alpha, dropout, targets, textEncoder = "text_encoder", textEncoderTargets = "text_encoder_targets"
        }
    }

    public struct Optimizer: Codable, Equatable, Sendable {
        public var learningRate = 1e-4
        public var textEncoderLearningRate = 5e-5
        public var beta1 = 0.9
        public var beta2 = 0.999
        public var eps = 1e-8
        public var weightDecay = 1e-2
        enum CodingKeys: String, CodingKey, CaseIterable {
            case learningRate = "learning_rate", textEncoderLearningRate = "text_encoder_learning_rate"
            case beta1, beta2, eps, weightDecay = "weight_decay"
        }
    }

    public struct Schedule: Codable, Equatable, Sendable {
        /// diffusers' names: constant, constant_with_warmup, linear, cosine, cosine_with_restarts, polynomial.
        public var name = LRSchedule.Kind.cosine
        public var warmupSteps = 50
        public var numCycles = 1
        enum CodingKeys: String, CodingKey, CaseIterable { case name, warmupSteps = "warmup_steps", numCycles = "num_cycles" }
    }

    public struct Training: Codable, Equatable, Sendable {
        public var maxSteps = 1000
        public var batchSize = 1
        public var gradientAccumulation = 1
        public var maxGradNorm = 1.0
        public var mixedPrecision = MixedPrecision.no
        public var seed = 42
        /// Min-SNR-γ loss weighting (0 = off; 5 is the paper's value).
        public var minSNRGamma = 0.0
        public var noiseOffset = 0.0
        /// Timesteps are drawn uniformly from [first, last).
        public var timestepRange = [0, 1000]
        /// Consecutive non-finite losses that stop the run.
        public var maxNonFiniteLosses = 5
        /// Recompute the UNet's blocks (and a training text encoder's layers) in backward instead of keeping
        /// their activations: less memory, one more forward per step (diffusers' `enable_gradient_checkpointing`).
        public var gradientCheckpointing = false
        enum CodingKeys: String, CodingKey, CaseIterable {
            case maxSteps = "max_steps", batchSize = "batch_size", gradientAccumulation = "gradient_accumulation"
            case maxGradNorm = "max_grad_norm", mixedPrecision = "mixed_precision", seed
            case minSNRGamma = "min_snr_gamma", noiseOffset = "noise_offset", timestepRange = "timestep_range"
            case maxNonFiniteLosses = "max_non_finite_losses", gradientCheckpointing = "gradient_checkpointing"
        }

        /// The dtype of the frozen UNet and text encoder (the adapters always train in float32).
        public var weightDType: DType { mixedPrecision.weightDType }
    }

    public struct Validation: Codable, Equatable, Sendable {
        /// 0 turns periodic validation off, as `samples.every = 0` turns samples off; the loss is still measured
        /// at step 0 (the base model's) and at the end, where the best and final checkpoints need it.
        public var every = 100
        /// Fixed timesteps per validation image, spread over the schedule.
        public var timestepsPerImage = 4
        public var seed = 1234
        enum CodingKeys: String, CodingKey, CaseIterable { case every, timestepsPerImage = "timesteps_per_image", seed }
    }

    public struct Samples: Codable, Equatable, Sendable {
        /// 0 turns sampling off.
        public var every = 200
        public var prompts = ["minimal line-art tattoo of a rose, stencil, high-contrast",
                              "minimal line-art tattoo of a swallow, stencil, high-contrast"]
        public var negativePrompt = "color, shading, blurry"
        public var seeds = [1, 2]
        public var steps = 20
        public var guidance = 7.5
        public var size = 512
        public var sampler = Sampler.dpmpp2mKarras
        /// CLIP score of the samples against their prompts (needs `clip_model`).
        public var clipScore = false
        /// A transformers CLIP folder (openai/clip-vit-base-patch32 layout).
        public var clipModel: String?
        enum CodingKeys: String, CodingKey, CaseIterable {
            case every, prompts, negativePrompt = "negative_prompt", seeds, steps, guidance, size, sampler
            case clipScore = "clip_score", clipModel = "clip_model"
        }
    }

    public struct Output: Codable, Equatable, Sendable {
        public var dir = "runs"
        public var name = "lora"
        /// The base name of the LoRA files (kohya's `output_name`); empty: `name`. A pipeline sets it to
        /// `<pipeline>-<variant>` so its runs' files stay distinct in a shared Lora folder.
        public var loraName = ""
        /// LoRA checkpoints kept besides best and final (0 keeps all).
        public var keep = 3
        /// Also write the diffusers/PEFT format next to the kohya file.
        public var peftFormat = false
        enum CodingKeys: String, CodingKey, CaseIterable { case dir, name, loraName = "lora_name", keep, peftFormat = "peft_format" }
    }

    public var model = Model()
    public var data = Data()
    public var lora = LoRA()
    public var optimizer = Optimizer()
    public var schedule = Schedule()
    public var training = Training()
    public var validation = Validation()
    public var samples = Samples()
    public var output = Output()

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, data, lora, optimizer, schedule, training, validation, samples, output
    }

    public init() {}

    /// The run's folder: `<output.dir>/<output.name>`.
    public var runDirectory: URL { URL(fileURLWithPath: output.dir).appendingPathComponent(output.name) }
    /// The run's folder with the names its LoRA files take.
    public var runFolder: RunFolder { RunFolder(runDirectory, loraName: output.loraName.isEmpty ? output.name : output.loraName) }
}

/// `training.mixed_precision`: the dtype the frozen weights compute in (accelerate's names).
public enum MixedPrecision: String, Codable, CaseIterable, Sendable {
    case no, fp16, bf16

    public var weightDType: DType {
        switch self {
        case .no: .float32
        case .fp16: .float16
        case .bf16: .bfloat16
        }
    }
}
