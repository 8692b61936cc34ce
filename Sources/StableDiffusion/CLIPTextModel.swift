// transformers models/clip/modeling_clip.py: CLIPTextModel (+ CLIPTextEmbeddings, CLIPAttention, CLIPMLP,
// CLIPEncoderLayer) and configuration_clip.py: CLIPTextConfig. The text encoder of Stable Diffusion 1.x.
import Foundation
import Torch

/// `text_encoder/config.json`, decoded unchanged; absent keys take transformers' `CLIPTextConfig` defaults
/// (which are CLIP ViT-B/32's text tower, not SD's ViT-L/14: SD's file spells its sizes out).
public struct CLIPTextConfig: Codable, Equatable, Sendable {
    public var vocabSize = 49408
    public var hiddenSize = 512
    public var intermediateSize = 2048
    public var projectionDim: Int? = 512
    public var numHiddenLayers = 12
    public var numAttentionHeads = 8
    public var maxPositionEmbeddings = 77
    public var hiddenAct = "quick_gelu"
    public var layerNormEps = 1e-5
    public var attentionDropout = 0.0
    public var initializerRange = 0.02
    public var initializerFactor = 1.0
    public var padTokenId: Int? = 1
    public var bosTokenId: Int? = 49406
    /// SD1.x's file says 2 (the value before transformers PR #24773), which switches pooling to the
    /// legacy "argmax of the ids" rule; newer files say 49407.
    public var eosTokenId: Int? = 49407

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case projectionDim = "projection_dim", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", maxPositionEmbeddings = "max_position_embeddings"
        case hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps", attentionDropout = "attention_dropout"
        case initializerRange = "initializer_range", initializerFactor = "initializer_factor"
        case padTokenId = "pad_token_id", bosTokenId = "bos_token_id", eosTokenId = "eos_token_id"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CLIPTextConfig()
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
        // An explicit null is kept as null, as transformers does.
        projectionDim = c.contains(.projectionDim) ? try c.decodeIfPresent(Int.self, forKey: .projectionDim) : d.projectionDim
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? d.maxPositionEmbeddings
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenAct
        layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? d.layerNormEps
        attentionDropout = try c.decodeIfPresent(Double.self, forKey: .attentionDropout) ?? d.attentionDropout
        initializerRange = try c.decodeIfPresent(Double.self, forKey: .initializerRange) ?? d.initializerRange
        initializerFactor = try c.decodeIfPresent(Double.self, forKey: .initializerFactor) ?? d.initializerFactor
        padTokenId = c.contains(.padTokenId) ? try c.decodeIfPresent(Int.self, forKey: .padTokenId) : d.padTokenId
        bosTokenId = c.contains(.bosTokenId) ? try c.decodeIfPresent(Int.self, forKey: .bosTokenId) : d.bosTokenId
        eosTokenId = c.contains(.eosTokenId) ? try c.decodeIfPresent(Int.self, forKey: .eosTokenId) : d.eosTokenId
    }

    /// Reads a `config.json`; errors name the file.
    public static func load(from url: URL) throws -> CLIPTextConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw CLIPTextModelError.unreadable(url.path, "\(error.localizedDescription)")
        }
        do {
            let config = try JSONDecoder().decode(CLIPTextConfig.self, from: data)
            try config.validate(source: url.path)
            return config
        } catch let error as CLIPTextModelError {
            throw error
        } catch {
            throw CLIPTextModelError.invalidConfig(url.path, "\(error)")
        }
    }

    /// The checks transformers' `validate_architecture` makes, plus the ones this model relies on.
    public func validate(source: String = "CLIPTextConfig") throws {
        guard hiddenSize > 0, numAttentionHeads > 0, hiddenSize % numAttentionHeads == 0 else {
            throw CLIPTextModelError.invalidConfig(
                source, "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
        guard vocabSize > 0, intermediateSize > 0, numHiddenLayers >= 0, maxPositionEmbeddings > 0 else {
            throw CLIPTextModelError.invalidConfig(source, "sizes must be positive")
        }
        _ = try CLIPActivation(name: hiddenAct, source: source)
    }
}

public enum CLIPTextModelError: Error, CustomStringConvertible, Equatable {
    case unreadable(String, String)
    case invalidConfig(String, String)
    case missingWeights(String)
    case invalidInput(String)

    public var description: String {
        switch self {
        case .unreadable(let path, let why): return "cannot read \(path): \(why)"
        case .invalidConfig(let source, let why): return "\(source): invalid CLIP text config: \(why)"
        case .missingWeights(let path): return "\(path) not found (CLIPTextModel loads safetensors weights only)"
        case .invalidInput(let why): return "CLIPTextModel: \(why)"
        }
    }
}

/// transformers' ACT2FN entries that CLIP configs use (text and vision towers).
public enum CLIPActivation: Sendable {
    case quickGelu, gelu, geluTanh, relu, silu

    public init(name: String, source: String) throws {
        switch name {
        case "quick_gelu": self = .quickGelu
        case "gelu": self = .gelu
        // NewGELUActivation writes the tanh formula out by hand; torch's tanh GELU is the same function.
        case "gelu_pytorch_tanh", "gelu_new": self = .geluTanh
        case "relu": self = .relu
        case "silu", "swish": self = .silu
        default:
            throw CLIPTextModelError.invalidConfig(
                source, "hidden_act \"\(name)\" is not supported (quick_gelu, gelu, gelu_new, gelu_pytorch_tanh, relu, silu)")
        }
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        switch self {
        case .quickGelu: return try x.quickGelu()
        case .gelu: return try x.gelu()
        case .geluTanh: return try x.gelu(approximate: true)
        case .relu: return try x.relu()
        case .silu: return try x.silu()
        }
    }
}

/// What one forward pass returns (transformers' `BaseModelOutputWithPooling`).
public struct CLIPTextModelOutput {
    /// [B, L, D], after `final_layer_norm`: what SD conditions on.
    public let lastHiddenState: Tensor
    /// [B, D], the final-normed state at the end-of-text token.
    public let pooledOutput: Tensor
    /// With `outputHiddenStates`: the embeddings, then each layer's output (before the final norm),
    /// `numHiddenLayers + 1` tensors, as transformers' `hidden_states`.
    public let hiddenStates: [Tensor]?
}

/// The sizes of one CLIP transformer layer; the text and vision towers differ only in these (and in
/// whether attention is causal).
public struct CLIPLayerShape: Sendable {
    public var hiddenSize: Int
    public var heads: Int
    public var intermediateSize: Int
    public var activation: CLIPActivation
    public var layerNormEps: Double
    public var causal: Bool

    public init(hiddenSize: Int, heads: Int, intermediateSize: Int, activation: CLIPActivation, layerNormEps: Double,
                causal: Bool) {
        self.hiddenSize = hiddenSize
        self.heads = heads
        self.intermediateSize = intermediateSize
        self.activation = activation
        self.layerNormEps = layerNormEps
        self.causal = causal
    }

    init(_ config: CLIPTextConfig) throws {
        self.init(hiddenSize: config.hiddenSize, heads: config.numAttentionHeads, intermediateSize: config.intermediateSize,
                  activation: try CLIPActivation(name: config.hiddenAct, source: "CLIPTextConfig"),
                  layerNormEps: config.layerNormEps, causal: true)
    }
}

final class CLIPAttention {
    let qProj, kProj, vProj, outProj: Linear
    let heads: Int
    let headDim: Int
    let scale: Double
    let causal: Bool

    init(_ path: VarPath, _ shape: CLIPLayerShape) throws {
        let d = shape.hiddenSize
        heads = shape.heads
        headDim = d / heads
        causal = shape.causal
        // `head_dim**-0.5` in Python.
        scale = Foundation.pow(Double(headDim), -0.5)
        // Registration order as transformers' __init__ (k, v, q, out).
        kProj = try Linear(path / "k_proj", inFeatures: d, outFeatures: d)
        vProj = try Linear(path / "v_proj", inFeatures: d, outFeatures: d)
        qProj = try Linear(path / "q_proj", inFeatures: d, outFeatures: d)
        outProj = try Linear(path / "out_proj", inFeatures: d, outFeatures: d)
    }

    /// `mask`: nil for plain (or, in the text tower, causal-only) attention, else a boolean [B, 1, L, L]
    /// mask (true = attend) that already includes causality.
    func callAsFunction(_ x: Tensor, mask: Tensor?) throws -> Tensor {
        let b = x.size(0), l = x.size(1)
        func heads(_ t: Tensor) throws -> Tensor { try t.view([b, l, self.heads, headDim]).transpose(1, 2) }
        let q = try heads(qProj(x)), k = try heads(kProj(x)), v = try heads(vProj(x))
        let y = try F.scaledDotProductAttention(q, k, v, mask: mask, isCausal: causal && mask == nil, scale: scale)
        return try outProj(y.transpose(1, 2).reshape([b, l, self.heads * headDim]))
    }
}

final class CLIPMLP {
    let fc1, fc2: Linear
    let activation: CLIPActivation

    init(_ path: VarPath, _ shape: CLIPLayerShape) throws {
        activation = shape.activation
        fc1 = try Linear(path / "fc1", inFeatures: shape.hiddenSize, outFeatures: shape.intermediateSize)
        fc2 = try Linear(path / "fc2", inFeatures: shape.intermediateSize, outFeatures: shape.hiddenSize)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor { try fc2(activation(fc1(x))) }
}

/// Pre-LN transformer block (transformers' `CLIPEncoderLayer`), shared by the text and vision towers.
public final class CLIPEncoderLayer {
    let selfAttn: CLIPAttention
    let layerNorm1: LayerNorm
    let mlp: CLIPMLP
    let layerNorm2: LayerNorm

    public init(_ path: VarPath, _ shape: CLIPLayerShape) throws {
        selfAttn = try CLIPAttention(path / "self_attn", shape)
        layerNorm1 = try LayerNorm(path / "layer_norm1", shape.hiddenSize, eps: shape.layerNormEps)
        mlp = try CLIPMLP(path / "mlp", shape)
        layerNorm2 = try LayerNorm(path / "layer_norm2", shape.hiddenSize, eps: shape.layerNormEps)
    }

    public func callAsFunction(_ x: Tensor, mask: Tensor? = nil) throws -> Tensor {
        let h = try x + selfAttn(layerNorm1(x), mask: mask)
        return try h + mlp(layerNorm2(h))
    }
}

public final class CLIPTextModel {
    public let config: CLIPTextConfig
    /// The store holding this model's parameters (LoRA finds its target modules there).
    public let store: VarStore
    let tokenEmbedding: Embedding
    let positionEmbedding: Embedding
    let layers: [CLIPEncoderLayer]
    public let finalLayerNorm: LayerNorm
    /// transformers' `gradient_checkpointing_enable()`: each `CLIPEncoderLayer` runs under `checkpoint` while
    /// grad is enabled (nil: off).
    public var gradientCheckpointing: GradientCheckpointing?

    /// Registers the parameters under `path / "text_model"`: the keys of SD's `text_encoder` files and of
    /// `CLIPModel`'s text tower (`text_model.encoder.layers.0.self_attn.q_proj.weight`, ...).
    public init(_ path: VarPath, config: CLIPTextConfig) throws {
        try config.validate()
        self.config = config
        store = path.store
        let root = path / "text_model"
        let embeddings = root / "embeddings"
        tokenEmbedding = try Embedding(embeddings / "token_embedding", count: config.vocabSize, dim: config.hiddenSize)
        positionEmbedding = try Embedding(embeddings / "position_embedding", count: config.maxPositionEmbeddings,
                                          dim: config.hiddenSize)
        let shape = try CLIPLayerShape(config)
        layers = try (0..<config.numHiddenLayers).map {
            try CLIPEncoderLayer(root / "encoder" / "layers" / $0, shape)
        }
        finalLayerNorm = try LayerNorm(root / "final_layer_norm", config.hiddenSize, eps: config.layerNormEps)
    }

    /// Loads a transformers folder (`text_encoder/`: `config.json` + `model.safetensors`) into a new
    /// VarStore on `device` in `dtype`. Strict: every missing, unexpected or mis-shaped key is reported
    /// with the file's path.
    public static func load(directory: URL, device: Device = .cpu, dtype: DType = .float32) throws -> CLIPTextModel {
        let config = try CLIPTextConfig.load(from: directory.appendingPathComponent("config.json"))
        let weights = directory.appendingPathComponent("model.safetensors")
        guard FileManager.default.fileExists(atPath: weights.path) else {
            throw CLIPTextModelError.missingWeights(weights.path)
        }
        let file = try SafetensorsFile(url: weights)
        let vs = VarStore(device: device, dtype: dtype, initialize: false)
        vs.budget = WeightsBudget(file: file, config: directory.appendingPathComponent("config.json").path)
        let model = try CLIPTextModel(vs.root, config: config)
        let tensors = try file.tensors()
        try NonFiniteWeights.check(tensors, source: weights.path)
        try noGrad { try vs.load(normalizedStateDict(tensors), strict: true, source: weights.path) }
        return model
    }

    /// Maps the layouts CLIP text weights are saved in onto this model's keys:
    /// - transformers >= 5.6 saves `CLIPTextModel` flattened (`encoder.layers.0...`, no `text_model.`),
    ///   and itself adds/strips that prefix on load (its `PrefixChange` rule); SD's hub files keep it;
    /// - `text_model.embeddings.position_ids` is a non-persistent buffer now, but older files carry it
    ///   (sometimes with float-rounded values); transformers ignores it and so do we.
    public static func normalizedStateDict(_ state: [String: Tensor]) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (key, value) in state {
            var k = key
            if k.hasPrefix("embeddings.") || k.hasPrefix("encoder.") || k.hasPrefix("final_layer_norm.") {
                k = "text_model." + k
            }
            if k == "text_model.embeddings.position_ids" { continue }
            out[k] = value
        }
        return out
    }

    // MARK: Forward

    /// transformers' `CLIPTextModel.forward`. `inputIds`: [B, L] integer ids, L ≤ max_position_embeddings.
    /// `attentionMask`: optional [B, L] (1 = token, 0 = padding), combined with the causal mask; SD
    /// pipelines pass none (their configs lack `use_attention_mask`), so padding tokens are attended.
    public func callAsFunction(_ inputIds: Tensor, attentionMask: Tensor? = nil,
                               outputHiddenStates: Bool = false) throws -> CLIPTextModelOutput {
        let (states, ids) = try encoder(inputIds, attentionMask: attentionMask, layerCount: layers.count,
                                        keepAll: outputHiddenStates)
        guard let last = states.last else { throw CLIPTextModelError.invalidInput("no hidden state") }
        let lastHiddenState = try finalLayerNorm(last)
        return CLIPTextModelOutput(lastHiddenState: lastHiddenState,
                                   pooledOutput: try pool(lastHiddenState, ids: ids),
                                   hiddenStates: outputHiddenStates ? states : nil)
    }

    /// The prompt embeddings diffusers' `StableDiffusionPipeline.encode_prompt` makes: `last_hidden_state`
    /// without `clipSkip`; with it, `final_layer_norm(hidden_states[-(clipSkip + 1)])` (A1111's "clip
    /// skip 2" is `clipSkip: 1`). Only the layers needed run.
    public func promptEmbeddings(_ inputIds: Tensor, clipSkip: Int? = nil) throws -> Tensor {
        let skip = clipSkip ?? 0
        guard skip >= 0, skip <= layers.count else {
            throw CLIPTextModelError.invalidInput("clip skip \(skip) is outside 0...\(layers.count)")
        }
        let (states, _) = try encoder(inputIds, attentionMask: nil, layerCount: layers.count - skip, keepAll: false)
        guard let last = states.last else { throw CLIPTextModelError.invalidInput("no hidden state") }
        return try finalLayerNorm(last)
    }

    /// Embeddings then the first `layerCount` layers; returns every state (or just the last) and the ids.
    private func encoder(_ inputIds: Tensor, attentionMask: Tensor?, layerCount: Int,
                         keepAll: Bool) throws -> ([Tensor], Tensor) {
        guard inputIds.rank == 2, !inputIds.dtype.isFloatingPoint, inputIds.dtype != .bool else {
            throw CLIPTextModelError.invalidInput(
                "input ids must be a [batch, length] integer tensor, got \(inputIds.shape) \(inputIds.dtype)")
        }
        let batch = inputIds.size(0), length = inputIds.size(1)
        guard length <= config.maxPositionEmbeddings else {
            throw CLIPTextModelError.invalidInput(
                "sequence length \(length) exceeds max_position_embeddings \(config.maxPositionEmbeddings)")
        }
        let device = tokenEmbedding.weight.device
        let ids = try inputIds.to(device, dtype: .int64)
        let positions = try Tensor.arange(0, Double(length), dtype: .int64, device: device)
        var h = try tokenEmbedding(ids) + positionEmbedding(positions)

        var mask: Tensor? = nil
        if let attentionMask {
            guard attentionMask.shape == [batch, length] else {
                throw CLIPTextModelError.invalidInput("attention mask \(attentionMask.shape) does not match ids \(inputIds.shape)")
            }
            // Causal ∧ key-not-padding, broadcast over heads: [B, 1, L, L].
            let causal = try Tensor.ones([length, length], dtype: .bool, device: device).tril()
            let keys = try attentionMask.to(device).ne(0).view([batch, 1, 1, length])
            mask = try causal.view([1, 1, length, length]).logicalAnd(keys)
        }

        var states = [h]
        for layer in layers.prefix(layerCount) {
            h = try checkpointed(gradientCheckpointing, [h] + (mask.map { [$0] } ?? [])) {
                try layer($0[0], mask: $0.count > 1 ? $0[1] : nil)
            }
            if keepAll { states.append(h) } else { states = [h] }
        }
        return (states, ids)
    }

    /// transformers' pooling: with the legacy `eos_token_id == 2` the position of the largest id (the
    /// first one if repeated), otherwise the first position holding `eos_token_id` (0 if none does).
    private func pool(_ hidden: Tensor, ids: Tensor) throws -> Tensor {
        guard let eos = config.eosTokenId else {
            throw CLIPTextModelError.invalidInput("pooled output needs eos_token_id in the config")
        }
        let positions: Tensor
        if eos == 2 {
            positions = try ids.to(.int32).argmax(dim: -1)
        } else {
            positions = try ids.eq(Double(eos)).to(.int32).argmax(dim: -1)
        }
        let b = hidden.size(0), d = hidden.size(2)
        let index = try positions.view([b, 1, 1]).expand([b, 1, d])
        return try hidden.gather(dim: 1, index: index).squeeze(1)
    }
}
