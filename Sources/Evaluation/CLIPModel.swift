// transformers models/clip/modeling_clip.py: CLIPModel (get_image_features, get_text_features, the logits of
// forward) and configuration_clip.py: CLIPConfig. The text tower is StableDiffusion's CLIPTextModel.
import Foundation
import StableDiffusion
import Torch

/// A CLIP folder's `config.json` (`model_type: "clip"`), decoded unchanged; absent keys take transformers'
/// defaults, which describe CLIP ViT-B/32 (openai/clip-vit-base-patch32).
public struct CLIPConfig: Decodable, Equatable, Sendable {
    public var textConfig = CLIPTextConfig()
    public var visionConfig = CLIPVisionConfig()
    /// The width of the shared embedding space; the sub-configs' own `projection_dim` are not used by CLIPModel.
    public var projectionDim = 512
    /// The initial `logit_scale` (log of the similarity temperature); files carry the trained value.
    public var logitScaleInitValue = 2.6592

    enum CodingKeys: String, CodingKey {
        case textConfig = "text_config", visionConfig = "vision_config", projectionDim = "projection_dim"
        case logitScaleInitValue = "logit_scale_init_value"
        case textConfigDict = "text_config_dict", visionConfigDict = "vision_config_dict"
    }

    public init(textConfig: CLIPTextConfig = CLIPTextConfig(), visionConfig: CLIPVisionConfig = CLIPVisionConfig(),
                projectionDim: Int = 512, logitScaleInitValue: Double = 2.6592) {
        self.textConfig = textConfig
        self.visionConfig = visionConfig
        self.projectionDim = projectionDim
        self.logitScaleInitValue = logitScaleInitValue
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // Files written before transformers 4.27 may carry `text_config_dict`/`vision_config_dict`; when one is
        // not null, CLIPConfig rebuilds that sub-config from it alone (its values, defaults for the rest),
        // overriding whatever `text_config`/`vision_config` say.
        textConfig = try c.decodeIfPresent(CLIPTextConfig.self, forKey: .textConfigDict)
            ?? c.decodeIfPresent(CLIPTextConfig.self, forKey: .textConfig) ?? CLIPTextConfig()
        visionConfig = try c.decodeIfPresent(CLIPVisionConfig.self, forKey: .visionConfigDict)
            ?? c.decodeIfPresent(CLIPVisionConfig.self, forKey: .visionConfig) ?? CLIPVisionConfig()
        // An explicit null would leave the projections without a width: decoding it as Int fails loudly.
        projectionDim = try c.decodeIfPresent(Int.self, forKey: .projectionDim) ?? 512
        logitScaleInitValue = try c.decodeIfPresent(Double.self, forKey: .logitScaleInitValue) ?? 2.6592
    }

    public func validate(source: String = "CLIPConfig") throws {
        do { try textConfig.validate(source: source) } catch let error as CLIPTextModelError {
            throw CLIPModelError.invalidConfig(source, "text_config: \(error)")
        }
        try visionConfig.validate(source: source)
        guard projectionDim > 0 else { throw CLIPModelError.invalidConfig(source, "projection_dim must be positive") }
    }

    /// Reads a CLIP `config.json`; errors name the file.
    public static func load(from url: URL) throws -> CLIPConfig {
        let config = try CLIPModelError.decode(CLIPConfig.self, from: url)
        try config.validate(source: url.path)
        return config
    }
}

public enum CLIPModelError: Error, CustomStringConvertible, Equatable {
    case unreadable(String, String)
    case invalidConfig(String, String)
    case missingFile(String, String)
    case invalidInput(String)

    public var description: String {
        switch self {
        case .unreadable(let path, let why): return "cannot read \(path): \(why)"
        case .invalidConfig(let source, let why): return "\(source): invalid CLIP config: \(why)"
        case .missingFile(let path, let what): return "\(path) not found (\(what))"
        case .invalidInput(let why): return "CLIP: \(why)"
        }
    }

    /// Decodes a JSON file; a missing, unreadable or malformed file is an error naming it.
    static func decode<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw CLIPModelError.missingFile(url.path, "a CLIP folder needs it")
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw CLIPModelError.unreadable(url.path, error.localizedDescription)
        }
        do { return try JSONDecoder().decode(T.self, from: data) } catch {
            throw CLIPModelError.invalidConfig(url.path, "\(error)")
        }
    }

    /// Strictly loads `directory/model.safetensors` into `vs` after mapping its keys with `normalize`.
    static func loadWeights(into vs: VarStore, directory: URL,
                            normalize: ([String: Tensor]) -> [String: Tensor]) throws {
        let weights = directory.appendingPathComponent("model.safetensors")
        guard FileManager.default.fileExists(atPath: weights.path) else {
            throw CLIPModelError.missingFile(weights.path, "CLIP weights are read from safetensors only")
        }
        try noGrad {
            let file = try SafetensorsFile(url: weights)
            try vs.load(normalize(file.tensors()), strict: true, source: weights.path)
        }
    }
}

/// transformers' `CLIPModel`: both towers and their projections into the shared embedding space.
/// Keys are those of `CLIPModel.save_pretrained` (`text_model.…`, `vision_model.…`, `visual_projection.weight`,
/// `text_projection.weight`, `logit_scale`).
public final class CLIPModel {
    public let config: CLIPConfig
    public let textModel: CLIPTextModel
    public let visionModel: CLIPVisionModel
    let visualProjection: Linear
    let textProjection: Linear
    /// The learned log temperature: `forward`'s logits are cosines × exp(logit_scale).
    public let logitScale: Tensor

    public init(_ path: VarPath, config: CLIPConfig) throws {
        try config.validate()
        self.config = config
        textModel = try CLIPTextModel(path, config: config.textConfig)
        visionModel = try CLIPVisionModel(path, config: config.visionConfig)
        visualProjection = try Linear(path / "visual_projection", inFeatures: config.visionConfig.hiddenSize,
                                      outFeatures: config.projectionDim, bias: false)
        textProjection = try Linear(path / "text_projection", inFeatures: config.textConfig.hiddenSize,
                                    outFeatures: config.projectionDim, bias: false)
        logitScale = try path.parameter("logit_scale", shape: [], initializer: .zeros)
        if path.store.initialize { try noGrad { try logitScale.fill_(config.logitScaleInitValue) } }
    }

    /// Loads a transformers CLIP folder (`config.json` + `model.safetensors`, as on the hub or written by
    /// `CLIPModel.save_pretrained`) into a new VarStore on `device` in `dtype`. Strict: every missing,
    /// unexpected or mis-shaped key is reported in one error with the file's path.
    public static func load(directory: URL, device: Device = .cpu, dtype: DType = .float32) throws -> CLIPModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CLIPModelError.missingFile(directory.path, "expected a transformers CLIP folder")
        }
        let config = try CLIPConfig.load(from: directory.appendingPathComponent("config.json"))
        let vs = VarStore(device: device, dtype: dtype, initialize: false)
        let model = try CLIPModel(vs.root, config: config)
        try CLIPModelError.loadWeights(into: vs, directory: directory, normalize: normalizedStateDict)
        return model
    }

    /// Maps the layouts CLIP weights come in onto this model's keys. transformers 5.23's
    /// `CLIPModel.save_pretrained` writes exactly this model's keys; the hub's older files also carry both
    /// towers' `embeddings.position_ids` buffers (non-persistent now, ignored by transformers), dropped here.
    public static func normalizedStateDict(_ state: [String: Tensor]) -> [String: Tensor] {
        state.filter { $0.key != "text_model.embeddings.position_ids" && $0.key != "vision_model.embeddings.position_ids" }
    }

    /// `get_image_features`: the projected, unnormalised image embeddings [B, projection_dim] of pixel values
    /// [B, C, S, S] (from `CLIPImageProcessor`).
    public func imageFeatures(_ pixelValues: Tensor) throws -> Tensor {
        try visualProjection(visionModel(pixelValues).pooledOutput)
    }

    /// `get_text_features`: the projected, unnormalised text embeddings [B, projection_dim] of token ids
    /// [B, L] (L ≤ max_position_embeddings) with an optional [B, L] attention mask (1 = token).
    public func textFeatures(_ inputIds: Tensor, attentionMask: Tensor? = nil) throws -> Tensor {
        do {
            return try textProjection(textModel(inputIds, attentionMask: attentionMask).pooledOutput)
        } catch let error as CLIPTextModelError {
            throw CLIPModelError.invalidInput("\(error)")
        }
    }

    /// `forward`'s `logits_per_image` [images, texts]: exp(logit_scale) × cosine of the L2-normalised features.
    public func logitsPerImage(pixelValues: Tensor, inputIds: Tensor, attentionMask: Tensor? = nil) throws -> Tensor {
        let image = try CLIPModel.l2Normalized(imageFeatures(pixelValues))
        let text = try CLIPModel.l2Normalized(textFeatures(inputIds, attentionMask: attentionMask))
        return try (text.matmul(image.transpose(0, 1)) * logitScale.exp()).transpose(0, 1)
    }

    /// x / ‖x‖₂ along the last dimension, as torchmetrics' `x / x.norm(p=2, dim=-1, keepdim=True)`.
    public static func l2Normalized(_ x: Tensor) throws -> Tensor {
        try x / x.norm(p: 2, dims: [-1], keepDim: true)
    }
}
