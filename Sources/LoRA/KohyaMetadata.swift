// The `ss_*` metadata kohya's train_network.py writes into a LoRA (values are Python `str()` of the
// settings: "True", "0.0001", "(512, 512)", JSON for the dataset tables), the SAI ModelSpec keys its
// sai_model_spec.py adds, and `sshs_model_hash`. The trainer fills what it knows; unset fields are left out.
import Crypto
import Foundation
import Torch

public struct KohyaMetadata: Sendable {
    /// One training folder of the dataset (kohya's `ss_dataset_dirs` entry).
    public struct DatasetDirectory: Sendable, Equatable {
        public var repeats: Int
        public var imageCount: Int
        public init(repeats: Int, imageCount: Int) {
            self.repeats = repeats
            self.imageCount = imageCount
        }
    }

    // Session
    public var sessionID: Int?
    /// Unix time in seconds.
    public var trainingStartedAt: Double?
    public var trainingFinishedAt: Double?
    public var outputName: String?
    public var trainingComment: String?
    // Base model
    /// "sd_v1" for SD1.x (kohya's model_util.get_model_version_str_for_sd1_sd2); "sd_v1_v" for v-prediction.
    public var baseModelVersion = "sd_v1"
    public var v2 = false
    public var predictionType = "epsilon"
    public var sdModelName: String?
    /// A1111's legacy 8-hex model hash and the full sha256 of the checkpoint, when the caller computed them.
    public var sdModelHash: String?
    public var newSDModelHash: String?
    public var vaeName: String?
    // Network
    public var networkModule = "networks.lora"
    public var networkDropout: Double?
    /// Extra network arguments (kohya's `ss_network_args`, a JSON object), e.g. ["conv_dim": "4"].
    public var networkArgs: [String: String] = [:]
    // Optimisation
    public var learningRate: Double?
    public var unetLR: Double?
    public var textEncoderLR: Double?
    public var optimizer: String?
    public var lrScheduler: String?
    public var lrWarmupSteps: Int?
    public var maxTrainSteps: Int?
    public var maxGradNorm: Double?
    public var gradientAccumulationSteps: Int?
    public var gradientCheckpointing: Bool?
    public var mixedPrecision: String?
    public var seed: Int?
    public var noiseOffset: Double?
    public var minSNRGamma: Double?
    // Progress
    public var epoch: Int?
    public var steps: Int?
    public var numEpochs: Int?
    public var numBatchesPerEpoch: Int?
    // Dataset
    public var numTrainImages: Int?
    public var numRegImages: Int?
    public var batchSizePerDevice: Int?
    public var totalBatchSize: Int?
    /// (width, height), written as Python's tuple "(512, 512)".
    public var resolution: (width: Int, height: Int)?
    public var enableBucket: Bool?
    public var minBucketReso: Int?
    public var maxBucketReso: Int?
    public var cacheLatents: Bool?
    public var flipAug: Bool?
    public var colorAug: Bool?
    public var randomCrop: Bool?
    public var shuffleCaption: Bool?
    public var keepTokens: Int?
    public var captionDropoutRate: Double?
    public var clipSkip: Int?
    public var maxTokenLength: Int?
    /// Training folders by name (kohya's `ss_dataset_dirs`).
    public var datasetDirectories: [String: DatasetDirectory] = [:]
    /// Caption tag counts per training folder (kohya's `ss_tag_frequency`, what A1111's metadata view shows).
    public var tagFrequency: [String: [String: Int]] = [:]
    /// Anything else, written verbatim (for example `modelspec.description`).
    public var extra: [String: String] = [:]

    public init() {}

    /// Every key and its string, with the network's dimension and alpha (its most common ones, as
    /// kohya's single `--network_dim`/`--network_alpha` would be).
    public func strings(for network: LoRANetwork) -> [String: String] {
        var m: [String: String] = [:]
        func set(_ key: String, _ value: String?) { if let value { m[key] = value } }
        func set(_ key: String, _ value: Int?) { set(key, value.map(String.init)) }
        func set(_ key: String, _ value: Double?) { set(key, value.map(pythonString)) }
        func set(_ key: String, _ value: Bool?) { set(key, value.map(pythonString)) }

        set("ss_session_id", sessionID)
        set("ss_training_started_at", trainingStartedAt)
        set("ss_training_finished_at", trainingFinishedAt)
        set("ss_output_name", outputName)
        set("ss_training_comment", trainingComment)
        set("ss_base_model_version", baseModelVersion)
        set("ss_v2", v2)
        set("ss_sd_model_name", sdModelName)
        set("ss_sd_model_hash", sdModelHash)
        set("ss_new_sd_model_hash", newSDModelHash)
        set("ss_vae_name", vaeName)
        set("ss_network_module", networkModule)
        let (dim, alpha) = Self.common(network)
        set("ss_network_dim", dim)
        set("ss_network_alpha", alpha)
        set("ss_network_dropout", networkDropout)
        if !networkArgs.isEmpty {
            set("ss_network_args", PythonJSON.object(networkArgs.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }).dumps())
        }
        set("ss_learning_rate", learningRate)
        set("ss_unet_lr", unetLR)
        set("ss_text_encoder_lr", textEncoderLR)
        set("ss_optimizer", optimizer)
        set("ss_lr_scheduler", lrScheduler)
        set("ss_lr_warmup_steps", lrWarmupSteps)
        set("ss_max_train_steps", maxTrainSteps)
        set("ss_max_grad_norm", maxGradNorm)
        set("ss_gradient_accumulation_steps", gradientAccumulationSteps)
        set("ss_gradient_checkpointing", gradientCheckpointing)
        set("ss_mixed_precision", mixedPrecision)
        set("ss_seed", seed)
        set("ss_noise_offset", noiseOffset)
        set("ss_min_snr_gamma", minSNRGamma)
        set("ss_epoch", epoch)
        set("ss_steps", steps)
        set("ss_num_epochs", numEpochs)
        set("ss_num_batches_per_epoch", numBatchesPerEpoch)
        set("ss_num_train_images", numTrainImages)
        set("ss_num_reg_images", numRegImages)
        set("ss_batch_size_per_device", batchSizePerDevice)
        set("ss_total_batch_size", totalBatchSize)
        set("ss_resolution", resolution.map { "(\($0.width), \($0.height))" })
        set("ss_enable_bucket", enableBucket)
        set("ss_min_bucket_reso", minBucketReso)
        set("ss_max_bucket_reso", maxBucketReso)
        set("ss_cache_latents", cacheLatents)
        set("ss_flip_aug", flipAug)
        set("ss_color_aug", colorAug)
        set("ss_random_crop", randomCrop)
        set("ss_shuffle_caption", shuffleCaption)
        set("ss_keep_tokens", keepTokens)
        set("ss_caption_dropout_rate", captionDropoutRate)
        set("ss_clip_skip", clipSkip)
        set("ss_max_token_length", maxTokenLength)
        if !datasetDirectories.isEmpty {
            set("ss_dataset_dirs", PythonJSON.object(datasetDirectories.sorted { $0.key < $1.key }.map {
                ($0.key, .object([("n_repeats", .int($0.value.repeats)), ("img_count", .int($0.value.imageCount))]))
            }).dumps())
        }
        if !tagFrequency.isEmpty {
            set("ss_tag_frequency", PythonJSON.object(tagFrequency.sorted { $0.key < $1.key }.map { dir, tags in
                // Most frequent first, as a reader would want to see them; ties by name for a stable file.
                (dir, .object(tags.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { ($0.key, .int($0.value)) }))
            }).dumps())
        }
        // SAI ModelSpec (kohya's sai_model_spec.py for an SD1.x LoRA).
        m["modelspec.sai_model_spec"] = "1.0.1"
        m["modelspec.architecture"] = v2 ? "stable-diffusion-v2-512/lora" : "stable-diffusion-v1/lora"
        m["modelspec.implementation"] = "diffusers"
        m["modelspec.title"] = outputName ?? network.name
        m["modelspec.prediction_type"] = predictionType
        if let resolution { m["modelspec.resolution"] = "\(resolution.width)x\(resolution.height)" }
        if let date = trainingFinishedAt ?? trainingStartedAt {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime]
            m["modelspec.date"] = formatter.string(from: Date(timeIntervalSince1970: date))
        }
        for (k, v) in extra { m[k] = v }
        return m
    }

    /// The most common rank and alpha among the adapters (kohya has one of each per network).
    static func common(_ network: LoRANetwork) -> (Int?, Double?) {
        func mode<T: Hashable & Comparable>(_ values: [T]) -> T? {
            let counts = Dictionary(values.map { ($0, 1) }, uniquingKeysWith: +)
            return counts.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key
        }
        return (mode(network.adapters.map(\.rank)), mode(network.adapters.map(\.alpha)))
    }

    /// kohya's `sshs_model_hash` (train_util.addnet_hash_safetensors): SHA-256 of the tensor data, i.e. of
    /// a safetensors file's bytes after its header, which do not depend on the metadata.
    static func modelHash(_ tensors: [String: Tensor]) throws -> String {
        let bytes = try Safetensors.serialize(tensors, metadata: nil)
        let headerLength = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        return SHA256.hash(data: bytes[(8 + headerLength)...]).map { String(format: "%02x", $0) }.joined()
    }
}
