// Matches transformers models/blip/modeling_blip.py (5.23.0): `BlipVisionEmbeddings`, `BlipAttention` (one
// fused `qkv` projection), `BlipMLP`, `BlipEncoderLayer` (pre-LayerNorm), `BlipEncoder` and
// `BlipVisionModel` (ViT with `post_layernorm`), with the keys under `vision_model.`.
import Torch

/// Patch embedding (a strided convolution), the class token and learned position embeddings.
public final class BlipVisionEmbeddings {
    /// `class_embedding` [1, 1, hidden].
    public let classEmbedding: Tensor
    public let patchEmbedding: Conv2d
    /// `position_embedding` [1, patches + 1, hidden] (a bare parameter, not an Embedding module).
    public let positionEmbedding: Tensor
    public let config: BlipVisionConfig

    public init(_ path: VarPath, config: BlipVisionConfig) throws {
        self.config = config
        let width = config.hiddenSize
        // transformers initialises both with trunc_normal(std: vision initializer_range).
        classEmbedding = try path.parameter("class_embedding", shape: [1, 1, width],
                                            initializer: .normal(mean: 0, std: config.initializerRange))
        patchEmbedding = try Conv2d(path / "patch_embedding", inChannels: 3, outChannels: width,
                                    kernelSize: config.patchSize, stride: config.patchSize)
        positionEmbedding = try path.parameter("position_embedding", shape: [1, config.numPositions, width],
                                               initializer: .normal(mean: 0, std: config.initializerRange))
    }

    /// `pixelValues` [B, 3, imageSize, imageSize] → [B, patches + 1, hidden].
    public func callAsFunction(_ pixelValues: Tensor) throws -> Tensor {
        let dims = pixelValues.shape
        // transformers would silently add a prefix of the position table to a smaller image (and fail on a
        // larger one); the captioner always resizes to the configured size, so anything else is a mistake.
        guard dims.count == 4, dims[1] == 3, dims[2] == config.imageSize, dims[3] == config.imageSize else {
            throw TorchError.invalidArgument(
                "BLIP vision model expects pixel values [B, 3, \(config.imageSize), \(config.imageSize)], got \(dims)")
        }
        let weight = patchEmbedding.weight
        let patches = try patchEmbedding(pixelValues.to(weight.device, dtype: weight.dtype))
            .flatten(from: 2).transpose(1, 2)
        let classTokens = try classEmbedding.expand([dims[0], 1, config.hiddenSize])
        return try Tensor.cat([classTokens, patches], dim: 1) + positionEmbedding
    }
}

/// Multi-head self-attention with one `qkv` Linear [3·hidden, hidden] and an output `projection`.
public final class BlipAttention {
    public let qkv: Linear
    public let projection: Linear
    public let heads: Int
    public let headDim: Int

    public init(_ path: VarPath, config: BlipVisionConfig) throws {
        heads = config.numAttentionHeads
        headDim = config.hiddenSize / heads
        qkv = try Linear(path / "qkv", inFeatures: config.hiddenSize, outFeatures: 3 * config.hiddenSize)
        projection = try Linear(path / "projection", inFeatures: config.hiddenSize, outFeatures: config.hiddenSize)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let (batch, length, width) = (x.size(0), x.size(1), x.size(2))
        // [B, L, 3, heads, headDim] → [3, B, heads, L, headDim], as transformers splits the fused output.
        let mixed = try qkv(x).reshape([batch, length, 3, heads, headDim]).permute([2, 0, 3, 1, 4])
        // SDPA's default scale 1/√headDim is transformers' `head_dim**-0.5`; no mask over image tokens.
        let attended = try F.scaledDotProductAttention(mixed.select(dim: 0, index: 0), mixed.select(dim: 0, index: 1),
                                                       mixed.select(dim: 0, index: 2))
        return try projection(attended.permute([0, 2, 1, 3]).reshape([batch, length, width]))
    }
}

/// `fc1` → activation → `fc2`.
public final class BlipMLP {
    public let fc1: Linear
    public let fc2: Linear
    public let activation: BlipActivation

    public init(_ path: VarPath, hiddenSize: Int, intermediateSize: Int, activation: BlipActivation) throws {
        self.activation = activation
        fc1 = try Linear(path / "fc1", inFeatures: hiddenSize, outFeatures: intermediateSize)
        fc2 = try Linear(path / "fc2", inFeatures: intermediateSize, outFeatures: hiddenSize)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try fc2(activation(fc1(x))) }
}

/// Pre-LayerNorm transformer block: x + attn(LN1(x)), then + mlp(LN2(·)).
public final class BlipEncoderLayer {
    public let selfAttn: BlipAttention
    public let layerNorm1: LayerNorm
    public let mlp: BlipMLP
    public let layerNorm2: LayerNorm

    public init(_ path: VarPath, config: BlipVisionConfig) throws {
        selfAttn = try BlipAttention(path / "self_attn", config: config)
        layerNorm1 = try LayerNorm(path / "layer_norm1", config.hiddenSize, eps: config.layerNormEps)
        mlp = try BlipMLP(path / "mlp", hiddenSize: config.hiddenSize, intermediateSize: config.intermediateSize,
                          activation: config.hiddenAct)
        layerNorm2 = try LayerNorm(path / "layer_norm2", config.hiddenSize, eps: config.layerNormEps)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let h = try selfAttn(layerNorm1(x)) + x
        return try mlp(layerNorm2(h)) + h
    }
}

/// The ViT image encoder: `embeddings`, `encoder.layers.N`, `post_layernorm`.
public final class BlipVisionModel {
    public let config: BlipVisionConfig
    public let embeddings: BlipVisionEmbeddings
    public let layers: [BlipEncoderLayer]
    public let postLayernorm: LayerNorm

    public init(_ path: VarPath, config: BlipVisionConfig) throws {
        try config.validate()
        self.config = config
        embeddings = try BlipVisionEmbeddings(path / "embeddings", config: config)
        layers = try (0..<config.numHiddenLayers).map { try BlipEncoderLayer(path / "encoder" / "layers" / $0, config: config) }
        postLayernorm = try LayerNorm(path / "post_layernorm", config.hiddenSize, eps: config.layerNormEps)
    }

    /// `last_hidden_state` [B, patches + 1, hidden] (after `post_layernorm`): the image tokens the text
    /// decoder cross-attends to.
    public func callAsFunction(_ pixelValues: Tensor) throws -> Tensor {
        var h = try embeddings(pixelValues)
        for layer in layers { h = try layer(h) }
        return try postLayernorm(h)
    }

    /// `pooler_output`: the class token of `last_hidden_state`, layer-normed once more (as transformers does).
    public func pooled(_ lastHiddenState: Tensor) throws -> Tensor {
        try postLayernorm(lastHiddenState.select(dim: 1, index: 0))
    }
}
