// The training configuration: a TOML file whose sections mirror the job (model, data, lora,
// optimizer, schedule, training, validation, samples, output), `--set section.key=value` overrides,
// strict decoding (an unknown key or a wrong type is an error naming the key), and the resolved
// config saved beside the run's outputs.
import Foundation
import TOMLKit
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
        /// "vanilla" | "blip" | "blip_plus".
        public var captions = "vanilla"
        public var vanillaPrompt = "minimal line-art tattoo, stencil, high-contrast"
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
        public var name = "cosine"
        public var warmupSteps = 50
        public var numCycles = 1
        enum CodingKeys: String, CodingKey, CaseIterable { case name, warmupSteps = "warmup_steps", numCycles = "num_cycles" }
    }

    public struct Training: Codable, Equatable, Sendable {
        public var maxSteps = 1000
        public var batchSize = 1
        public var gradientAccumulation = 1
        public var maxGradNorm = 1.0
        /// "no" | "fp16" | "bf16".
        public var mixedPrecision = "no"
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
        public var weightDType: DType {
            switch mixedPrecision {
            case "bf16": .bfloat16
            case "fp16": .float16
            default: .float32
            }
        }
    }

    public struct Validation: Codable, Equatable, Sendable {
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
        public var sampler = "dpm++2m-karras"
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
        /// LoRA checkpoints kept besides best and final (0 keeps all).
        public var keep = 3
        /// Also write the diffusers/PEFT format next to the kohya file.
        public var peftFormat = false
        enum CodingKeys: String, CodingKey, CaseIterable { case dir, name, keep, peftFormat = "peft_format" }
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
}

public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let source: String
    public let message: String
    public init(source: String, _ message: String) {
        self.source = source
        self.message = message
    }
    public var description: String { "\(source): \(message)" }
}

extension TrainingConfig {
    /// Sections and their keys, from the CodingKeys: what a config file may contain.
    static let schema: [String: Set<String>] = [
        "model": Set(Model.CodingKeys.allCases.map(\.rawValue)),
        "data": Set(Data.CodingKeys.allCases.map(\.rawValue)),
        "lora": Set(LoRA.CodingKeys.allCases.map(\.rawValue)),
        "optimizer": Set(Optimizer.CodingKeys.allCases.map(\.rawValue)),
        "schedule": Set(Schedule.CodingKeys.allCases.map(\.rawValue)),
        "training": Set(Training.CodingKeys.allCases.map(\.rawValue)),
        "validation": Set(Validation.CodingKeys.allCases.map(\.rawValue)),
        "samples": Set(Samples.CodingKeys.allCases.map(\.rawValue)),
        "output": Set(Output.CodingKeys.allCases.map(\.rawValue)),
    ]

    /// Parses TOML text, applies `overrides` ("section.key=value", the value in TOML syntax or a bare
    /// string), and decodes strictly. Absent keys keep their defaults.
    public static func parse(_ text: String, overrides: [String] = [], source: String = "config") throws -> TrainingConfig {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError(source: source, "line \(error.source.begin.line): \(error.description)")
        }
        try checkKeys(table, source: source)
        // Absent keys take the defaults: the file is laid over the default config, key by key.
        let merged: TOMLTable = try TOMLEncoder().encode(TrainingConfig())
        for section in table.keys {
            guard let from = table[section]?.table, let into = merged[section]?.table else { continue }
            for key in from.keys { into[key] = from[key] }
        }
        for override in overrides { try apply(override, to: merged) }
        let json = merged.convert(to: .json)
        do {
            let config = try JSONDecoder().decode(TrainingConfig.self, from: Foundation.Data(json.utf8))
            try config.validate(source: source)
            return config
        } catch let error as DecodingError {
            throw ConfigError(source: source, describe(error))
        }
    }

    public static func load(_ url: URL, overrides: [String] = []) throws -> TrainingConfig {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw ConfigError(source: url.path, "cannot read the config file: \(error.localizedDescription)")
        }
        return try parse(text, overrides: overrides, source: url.path)
    }

    /// `section.key=value`: the value is read as TOML (numbers, booleans, arrays, quoted strings), or
    /// taken as a plain string when it is not valid TOML (`--set model.path=/models/sd15`).
    static func apply(_ override: String, to table: TOMLTable) throws {
        guard let eq = override.firstIndex(of: "=") else {
            throw ConfigError(source: "--set \(override)", "expected section.key=value")
        }
        let path = override[..<eq].split(separator: ".").map(String.init)
        let raw = String(override[override.index(after: eq)...])
        guard path.count == 2, let keys = schema[path[0]], keys.contains(path[1]) else {
            throw ConfigError(source: "--set \(override)", "unknown key '\(override[..<eq])'; sections: \(schema.keys.sorted().joined(separator: ", "))")
        }
        let value: TOMLValueConvertible
        if let parsed = try? TOMLTable(string: "v = \(raw)"), let v = parsed["v"] {
            value = v
        } else {
            value = raw
        }
        if table[path[0]] == nil { table[path[0]] = TOMLTable() }
        guard let section = table[path[0]]?.table else {
            throw ConfigError(source: "--set \(override)", "'\(path[0])' is not a section")
        }
        section[path[1]] = value
    }

    static func checkKeys(_ table: TOMLTable, source: String) throws {
        var problems: [String] = []
        for key in table.keys.sorted() {
            guard let allowed = schema[key] else {
                problems.append("unknown section [\(key)] (sections: \(schema.keys.sorted().joined(separator: ", ")))")
                continue
            }
            guard let section = table[key]?.table else { problems.append("'\(key)' must be a [\(key)] section"); continue }
            for sub in section.keys.sorted() where !allowed.contains(sub) {
                problems.append("unknown key '\(key).\(sub)' (known: \(allowed.sorted().joined(separator: ", ")))")
            }
        }
        if !problems.isEmpty { throw ConfigError(source: source, problems.joined(separator: "; ")) }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let context): return "'\(path(context))' must be \(typeName(type))"
        case .valueNotFound(let type, let context): return "'\(path(context))' must be \(typeName(type))"
        case .keyNotFound(let key, let context): return "missing key '\(path(context)).\(key.stringValue)'"
        case .dataCorrupted(let context): return "'\(path(context))': \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is UInt64.Type: return "an integer"
        case is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        default: return "\(type)".hasPrefix("Array") ? "a list" : "\(type)"
        }
    }

    /// Checks value ranges and names; every problem is reported at once.
    public func validate(source: String = "config") throws {
        var p: [String] = []
        if model.path.isEmpty { p.append("model.path is required (a diffusers folder or .safetensors checkpoint)") }
        if data.dataset.isEmpty { p.append("data.dataset is required (a folder made by `inkwell prepare`)") }
        if !["vanilla", "blip", "blip_plus"].contains(data.captions) {
            p.append("data.captions must be vanilla, blip or blip_plus, got '\(data.captions)'")
        }
        if data.resolution <= 0 || data.resolution % 8 != 0 { p.append("data.resolution must be a positive multiple of 8") }
        if !(1...128).contains(lora.rank) { p.append("lora.rank must be in 1...128, got \(lora.rank)") }
        if !(lora.alpha > 0) { p.append("lora.alpha must be positive") }
        if !(0..<1).contains(lora.dropout) { p.append("lora.dropout must be in [0, 1)") }
        if lora.targets.isEmpty { p.append("lora.targets must name at least one module") }
        if !(optimizer.learningRate > 0) { p.append("optimizer.learning_rate must be positive") }
        if training.seed < 0 || validation.seed < 0 || samples.seeds.contains(where: { $0 < 0 }) {
            p.append("seeds must be non-negative")
        }
        if training.maxSteps <= 0 { p.append("training.max_steps must be positive") }
        if training.batchSize <= 0 { p.append("training.batch_size must be positive") }
        if training.gradientAccumulation <= 0 { p.append("training.gradient_accumulation must be positive") }
        if !["no", "fp16", "bf16"].contains(training.mixedPrecision) {
            p.append("training.mixed_precision must be no, fp16 or bf16, got '\(training.mixedPrecision)'")
        }
        let range = training.timestepRange
        if range.count != 2 || range[0] < 0 || range[0] >= range[1] || range[1] > 1000 {
            p.append("training.timestep_range must be [first, last) with 0 <= first < last <= 1000")
        }
        if validation.every < 0 || validation.timestepsPerImage <= 0 { p.append("validation.every must be >= 0 and timesteps_per_image > 0") }
        if samples.every < 0 { p.append("samples.every must be >= 0") }
        if samples.seeds.isEmpty && samples.every > 0 { p.append("samples.seeds must not be empty") }
        if samples.size <= 0 || samples.size % 8 != 0 { p.append("samples.size must be a positive multiple of 8") }
        if samples.clipScore && samples.clipModel == nil { p.append("samples.clip_score needs samples.clip_model (a CLIP folder)") }
        if output.name.isEmpty || output.name.contains("/") { p.append("output.name must be a plain folder name") }
        if !p.isEmpty { throw ConfigError(source: source, p.joined(separator: "; ")) }
    }

    /// The resolved config as TOML, saved beside a run's outputs.
    public func toml() throws -> String {
        let table: TOMLTable = try TOMLEncoder().encode(self)
        return table.convert(to: .toml)
    }
}
