// transformers models/clip/modeling_clip.py: CLIPVisionModel (+ CLIPVisionEmbeddings, CLIPAttention, CLIPMLP,
// CLIPEncoderLayer as the vision tower uses them) and configuration_clip.py: CLIPVisionConfig.
import Foundation
import StableDiffusion
import Torch

/// `vision_config` of a CLIP `config.json` (or a `CLIPVisionModel` folder's `config.json`), decoded unchanged;
/// absent keys take transformers' `CLIPVisionConfig` defaults, which are CLIP ViT-B/32's vision tower.
public struct CLIPVisionConfig: Codable, Equatable, Sendable {
    public var hiddenSize = 768
    public var intermediateSize = 3072
    /// Only read by `CLIPVisionModelWithProjection`; `CLIPModel` uses the top-level `projection_dim`.
    public var projectionDim = 512
    public var numHiddenLayers = 12
    public var numAttentionHeads = 12
    public var numChannels = 3
    public var imageSize = 224
    public var patchSize = 32
    public var hiddenAct = "quick_gelu"
    public var layerNormEps = 1e-5
    public var attentionDropout = 0.0
    public var initializerRange = 0.02
    public var initializerFactor = 1.0

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size", projectionDim = "projection_dim"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numChannels = "num_channels", imageSize = "image_size", patchSize = "patch_size"
        case hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps", attentionDropout = "attention_dropout"
        case initializerRange = "initializer_range", initializerFactor = "initializer_factor"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CLIPVisionConfig()
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
        projectionDim = try c.decodeIfPresent(Int.self, forKey: .projectionDim) ?? d.projectionDim
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        numChannels = try c.decodeIfPresent(Int.self, forKey: .numChannels) ?? d.numChannels
        imageSize = try Self.square(c, .imageSize) ?? d.imageSize
        patchSize = try Self.square(c, .patchSize) ?? d.patchSize
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenAct
        layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? d.layerNormEps
        attentionDropout = try c.decodeIfPresent(Double.self, forKey: .attentionDropout) ?? d.attentionDropout
        initializerRange = try c.decodeIfPresent(Double.self, forKey: .initializerRange) ?? d.initializerRange
        initializerFactor = try c.decodeIfPresent(Double.self, forKey: .initializerFactor) ?? d.initializerFactor
    }

    /// `image_size`/`patch_size` may be an int or a pair; CLIP's embeddings only work with square ones.
    private static func square(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> Int? {
        if let pair = try? c.decodeIfPresent([Int].self, forKey: key) {
            guard pair.count == 2, pair[0] == pair[1] else {
                throw DecodingError.dataCorruptedError(forKey: key, in: c,
                                                       debugDescription: "\(key.rawValue) \(pair) is not square")
            }
            return pair[0]
        }
        return try c.decodeIfPresent(Int.self, forKey: key)
    }

    /// transformers' `validate_architecture`, plus what the embeddings rely on.
    public func validate(source: String = "CLIPVisionConfig") throws {
        guard hiddenSize > 0, numAttentionHeads > 0, hiddenSize % numAttentionHeads == 0 else {
            throw CLIPModelError.invalidConfig(
                source, "vision hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
        guard intermediateSize > 0, numHiddenLayers >= 0, numChannels > 0, patchSize > 0, imageSize >= patchSize else {
            throw CLIPModelError.invalidConfig(source, "vision sizes must be positive and image_size ≥ patch_size")
        }
        _ = try CLIPActivation(name: hiddenAct, source: source)
    }

    /// Patches per side; `image_size // patch_size` as transformers (a remainder is cut off by the conv).
    public var gridSize: Int { imageSize / patchSize }
    /// The class token plus one position per patch.
    public var numPositions: Int { gridSize * gridSize + 1 }
}

/// What one forward pass returns (transformers' `BaseModelOutputWithPooling`).
public struct CLIPVisionModelOutput {
    /// [B, 1 + patches, D], the last encoder layer's output (no norm after it).
    public let lastHiddenState: Tensor
    /// [B, D], `post_layernorm` of the class token.
    public let pooledOutput: Tensor
    /// With `outputHiddenStates`: the encoder's input (after `pre_layrnorm`), then each layer's output,
    /// `numHiddenLayers + 1` tensors, as transformers' `hidden_states`.
    public let hiddenStates: [Tensor]?
}

/// CLIP's ViT image tower. Parameters live under `path / "vision_model"`, the keys of `CLIPModel` files
/// (`vision_model.embeddings.patch_embedding.weight`, `vision_model.pre_layrnorm.weight` — transformers'
/// spelling —, `vision_model.encoder.layers.0.self_attn.q_proj.weight`, ...).
public final class CLIPVisionModel {
    public let config: CLIPVisionConfig
    let classEmbedding: Tensor
    let patchEmbedding: Conv2d
    let positionEmbedding: Embedding
    let preLayrnorm: LayerNorm
    let layers: [CLIPEncoderLayer]
    public let postLayernorm: LayerNorm

    public init(_ path: VarPath, config: CLIPVisionConfig) throws {
        try config.validate()
        self.config = config
        let root = path / "vision_model"
        let embeddings = root / "embeddings"
        let d = config.hiddenSize
        // Registration order as transformers' __init__; the initial values only matter for untrained use.
        classEmbedding = try embeddings.parameter("class_embedding", shape: [d],
                                                  initializer: .normal(mean: 0, std: Foundation.pow(Double(d), -0.5)))
        patchEmbedding = try Conv2d(embeddings / "patch_embedding", inChannels: config.numChannels, outChannels: d,
                                    kernelSize: config.patchSize, stride: config.patchSize, bias: false)
        positionEmbedding = try Embedding(embeddings / "position_embedding", count: config.numPositions, dim: d)
        preLayrnorm = try LayerNorm(root / "pre_layrnorm", d, eps: config.layerNormEps)
        let shape = CLIPLayerShape(hiddenSize: d, heads: config.numAttentionHeads, intermediateSize: config.intermediateSize,
                                   activation: try CLIPActivation(name: config.hiddenAct, source: "CLIPVisionConfig"),
                                   layerNormEps: config.layerNormEps, causal: false)
        layers = try (0..<config.numHiddenLayers).map { try CLIPEncoderLayer(root / "encoder" / "layers" / $0, shape) }
        postLayernorm = try LayerNorm(root / "post_layernorm", d, eps: config.layerNormEps)
    }

    /// Loads a transformers `CLIPVisionModel` folder (`config.json` + `model.safetensors`) into a new VarStore
    /// on `device` in `dtype`. Strict: every missing, unexpected or mis-shaped key is reported with the file.
    public static func load(directory: URL, device: Device = .cpu, dtype: DType = .float32) throws -> CLIPVisionModel {
        let configURL = directory.appendingPathComponent("config.json")
        let config = try CLIPModelError.decode(CLIPVisionConfig.self, from: configURL)
        try config.validate(source: configURL.path)
        let vs = VarStore(device: device, dtype: dtype, initialize: false)
        let model = try CLIPVisionModel(vs.root, config: config)
        try CLIPModelError.loadWeights(into: vs, directory: directory, normalize: normalizedStateDict)
        return model
    }

    /// Maps the layouts vision weights are saved in onto this model's keys: transformers ≥ 5.6 saves a
    /// standalone `CLIPVisionModel` without the `vision_model.` prefix (its `PrefixChange` rule) while
    /// `CLIPModel` files keep it; the `position_ids` buffer of older files is not a parameter and is dropped.
    public static func normalizedStateDict(_ state: [String: Tensor]) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (key, value) in state {
            var k = key
            if k.hasPrefix("embeddings.") || k.hasPrefix("encoder.") || k.hasPrefix("pre_layrnorm.")
                || k.hasPrefix("post_layernorm.") {
                k = "vision_model." + k
            }
            if k == "vision_model.embeddings.position_ids" { continue }
            out[k] = value
        }
        return out
    }

    /// transformers' `CLIPVisionModel.forward` (no position interpolation). `pixelValues`: [B, C, S, S] with
    /// S = `image_size`, as `CLIPImageProcessor` makes them; converted to the model's device and dtype.
    public func callAsFunction(_ pixelValues: Tensor, outputHiddenStates: Bool = false) throws -> CLIPVisionModelOutput {
        guard pixelValues.rank == 4, pixelValues.size(1) == config.numChannels,
              pixelValues.size(2) == config.imageSize, pixelValues.size(3) == config.imageSize else {
            throw CLIPModelError.invalidInput(
                "pixel values must be [batch, \(config.numChannels), \(config.imageSize), \(config.imageSize)], got \(pixelValues.shape)")
        }
        let weight = patchEmbedding.weight
        let x = try pixelValues.to(weight.device, dtype: weight.dtype)
        let b = x.size(0), d = config.hiddenSize
        // [B, D, g, g] → [B, g·g, D], row-major patches as `flatten(2).transpose(1, 2)`.
        let patches = try patchEmbedding(x).flatten(from: 2).transpose(1, 2)
        let cls = try classEmbedding.view([1, 1, d]).expand([b, 1, d])
        let positions = try positionEmbedding.weight.view([1, config.numPositions, d])
        var h = try preLayrnorm(Tensor.cat([cls, patches], dim: 1) + positions)
        var states = outputHiddenStates ? [h] : []
        for layer in layers {
            h = try layer(h)
            if outputHiddenStates { states.append(h) }
        }
        let pooled = try postLayernorm(h.select(dim: 1, index: 0))
        return CLIPVisionModelOutput(lastHiddenState: h, pooledOutput: pooled,
                                     hiddenStates: outputHiddenStates ? states : nil)
    }
}
