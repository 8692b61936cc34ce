// Matches transformers models/blip/modeling_blip_text.py (5.23.0): `BlipTextEmbeddings`,
// `BlipTextSelfAttention` / `BlipTextSelfOutput` (as `BlipTextAttention`), `BlipTextLayer` (causal
// self-attention, cross-attention to the image tokens, feed-forward; post-LayerNorm BERT),
// `BlipTextModel` (`bert`) and `BlipTextLMHeadModel` (`bert` + `cls.predictions`, the decoder tied to the
// word embeddings), with transformers' `EncoderDecoderCache` as `BlipTextCache`.
import Torch

/// Keys and values kept between decoding steps: per layer, the self-attention's (growing by the tokens
/// of each step) and the cross-attention's (computed once from the image tokens).
public final class BlipTextCache {
    var selfKeys: [Tensor?]
    var selfValues: [Tensor?]
    var crossKeys: [Tensor?]
    var crossValues: [Tensor?]
    /// Tokens already attended to (transformers' `get_seq_length()`).
    public internal(set) var length = 0

    public init(layers: Int) {
        selfKeys = Array(repeating: nil, count: layers)
        selfValues = selfKeys
        crossKeys = selfKeys
        crossValues = selfKeys
    }

    /// Keeps the rows `index` (int64 [N]) of the self-attention cache: beam search's `reorder_cache`. Beam
    /// search only ever picks among the beams of the same image, whose cross-attention keys and values are
    /// identical, so those are left as they are (transformers copies them too; at BLIP-large's 577 image
    /// tokens that is ~100 MB of copies per step for nothing).
    public func reorderBeams(_ index: Tensor) throws {
        selfKeys = try selfKeys.map { try $0?.indexSelect(dim: 0, index: index) }
        selfValues = try selfValues.map { try $0?.indexSelect(dim: 0, index: index) }
    }
}

/// Word and position embeddings, then LayerNorm (BERT without token types).
public final class BlipTextEmbeddings {
    public let wordEmbeddings: Embedding
    public let positionEmbeddings: Embedding
    public let layerNorm: LayerNorm
    public let maxPositions: Int

    public init(_ path: VarPath, config: BlipTextConfig) throws {
        maxPositions = config.maxPositionEmbeddings
        wordEmbeddings = try Embedding(path / "word_embeddings", count: config.vocabSize, dim: config.hiddenSize)
        positionEmbeddings = try Embedding(path / "position_embeddings", count: config.maxPositionEmbeddings,
                                           dim: config.hiddenSize)
        layerNorm = try LayerNorm(path / "LayerNorm", config.hiddenSize, eps: config.layerNormEps)
    }

    /// `inputIds` [B, L] at positions `pastLength ..< pastLength + L`.
    public func callAsFunction(_ inputIds: Tensor, pastLength: Int) throws -> Tensor {
        let length = inputIds.size(1)
        guard pastLength + length <= maxPositions else {
            throw TorchError.invalidArgument(
                "BLIP text decoder: \(pastLength + length) tokens exceed max_position_embeddings \(maxPositions)")
        }
        let weight = wordEmbeddings.weight
        let positions = try Tensor.arange(Double(pastLength), Double(pastLength + length), device: weight.device)
        return try layerNorm(wordEmbeddings(inputIds.to(weight.device)) + positionEmbeddings(positions))
    }
}

/// `attention` or `crossattention` of a layer: `self.{query,key,value}` and `output.{dense,LayerNorm}`.
public final class BlipTextAttention {
    public let query: Linear
    public let key: Linear
    public let value: Linear
    public let dense: Linear
    public let layerNorm: LayerNorm
    public let heads: Int
    public let headDim: Int
    public let isCrossAttention: Bool
    let layerIndex: Int

    public init(_ path: VarPath, config: BlipTextConfig, isCrossAttention: Bool, layerIndex: Int) throws {
        heads = config.numAttentionHeads
        headDim = config.headDim
        self.isCrossAttention = isCrossAttention
        self.layerIndex = layerIndex
        let width = config.hiddenSize
        let keyWidth = isCrossAttention ? config.encoderHiddenSize : width
        query = try Linear(path / "self" / "query", inFeatures: width, outFeatures: width)
        key = try Linear(path / "self" / "key", inFeatures: keyWidth, outFeatures: width)
        value = try Linear(path / "self" / "value", inFeatures: keyWidth, outFeatures: width)
        dense = try Linear(path / "output" / "dense", inFeatures: width, outFeatures: width)
        layerNorm = try LayerNorm(path / "output" / "LayerNorm", width, eps: config.layerNormEps)
    }

    /// Self-attention (causal over the cache and the new tokens) when `encoderHiddenStates` is nil,
    /// else cross-attention to all image tokens. Returns LayerNorm(dense(context) + hiddenStates).
    func callAsFunction(_ hiddenStates: Tensor, encoderHiddenStates: Tensor?, cache: BlipTextCache?) throws -> Tensor {
        let (batch, length) = (hiddenStates.size(0), hiddenStates.size(1))
        let q = try splitHeads(query(hiddenStates))
        var k: Tensor
        var v: Tensor
        var mask: Tensor?
        var causal = false
        if let encoderHiddenStates {
            if let cache, let cachedK = cache.crossKeys[layerIndex], let cachedV = cache.crossValues[layerIndex] {
                (k, v) = (cachedK, cachedV)
            } else {
                (k, v) = try (splitHeads(key(encoderHiddenStates)), splitHeads(value(encoderHiddenStates)))
                cache?.crossKeys[layerIndex] = k
                cache?.crossValues[layerIndex] = v
            }
        } else {
            (k, v) = try (splitHeads(key(hiddenStates)), splitHeads(value(hiddenStates)))
            let past = cache?.length ?? 0
            if let cache, let pastK = cache.selfKeys[layerIndex], let pastV = cache.selfValues[layerIndex] {
                k = try Tensor.cat([pastK, k], dim: 2)
                v = try Tensor.cat([pastV, v], dim: 2)
            }
            cache?.selfKeys[layerIndex] = k
            cache?.selfValues[layerIndex] = v
            // One new token sees everything; a block from an empty cache is plain causal; a block after a
            // cache sees the past and its own lower triangle.
            if length > 1 && past == 0 {
                causal = true
            } else if length > 1 {
                mask = try Tensor.ones([length, past + length], dtype: .bool, device: q.device).tril(past)
            }
        }
        let context = try F.scaledDotProductAttention(q, k, v, mask: mask, isCausal: causal)
            .transpose(1, 2).reshape([batch, length, heads * headDim])
        return try layerNorm(dense(context) + hiddenStates)
    }

    /// [B, L, heads·headDim] → [B, heads, L, headDim].
    private func splitHeads(_ t: Tensor) throws -> Tensor {
        try t.view([t.size(0), t.size(1), heads, headDim]).transpose(1, 2)
    }
}

/// Self-attention, cross-attention, then `intermediate.dense` → activation → `output.dense` + LayerNorm.
public final class BlipTextLayer {
    public let attention: BlipTextAttention
    public let crossattention: BlipTextAttention
    public let intermediate: Linear
    public let output: Linear
    public let outputLayerNorm: LayerNorm
    public let activation: BlipActivation

    public init(_ path: VarPath, config: BlipTextConfig, index: Int) throws {
        attention = try BlipTextAttention(path / "attention", config: config, isCrossAttention: false, layerIndex: index)
        crossattention = try BlipTextAttention(path / "crossattention", config: config, isCrossAttention: true,
                                               layerIndex: index)
        intermediate = try Linear(path / "intermediate" / "dense", inFeatures: config.hiddenSize,
                                  outFeatures: config.intermediateSize)
        output = try Linear(path / "output" / "dense", inFeatures: config.intermediateSize, outFeatures: config.hiddenSize)
        outputLayerNorm = try LayerNorm(path / "output" / "LayerNorm", config.hiddenSize, eps: config.layerNormEps)
        activation = config.hiddenAct
    }

    func callAsFunction(_ x: Tensor, encoderHiddenStates: Tensor, cache: BlipTextCache?) throws -> Tensor {
        let attended = try attention(x, encoderHiddenStates: nil, cache: cache)
        let crossed = try crossattention(attended, encoderHiddenStates: encoderHiddenStates, cache: cache)
        return try outputLayerNorm(output(activation(intermediate(crossed))) + crossed)
    }
}

/// The BERT decoder (`bert`): embeddings and `encoder.layer.N` (no pooler in the captioning model).
public final class BlipTextModel {
    public let config: BlipTextConfig
    public let embeddings: BlipTextEmbeddings
    public let layers: [BlipTextLayer]

    public init(_ path: VarPath, config: BlipTextConfig) throws {
        try config.validate()
        self.config = config
        embeddings = try BlipTextEmbeddings(path / "embeddings", config: config)
        layers = try (0..<config.numHiddenLayers).map {
            try BlipTextLayer(path / "encoder" / "layer" / $0, config: config, index: $0)
        }
    }

    /// Hidden states [B, L, hidden] of `inputIds` [B, L], attending causally to earlier tokens (those in
    /// `cache` first, which then holds these too) and fully to `encoderHiddenStates` [B, S, encoderWidth].
    public func callAsFunction(_ inputIds: Tensor, encoderHiddenStates: Tensor, cache: BlipTextCache? = nil) throws -> Tensor {
        let past = cache?.length ?? 0
        var h = try embeddings(inputIds, pastLength: past)
        let image = try encoderHiddenStates.to(h.device, dtype: h.dtype)
        for layer in layers { h = try layer(h, encoderHiddenStates: image, cache: cache) }
        cache?.length = past + inputIds.size(1)
        return h
    }
}

/// `text_decoder`: `bert` and the LM head `cls.predictions` (dense → activation → LayerNorm, then the
/// word embeddings transposed plus `cls.predictions.bias`).
public final class BlipTextLMHeadModel {
    public let bert: BlipTextModel
    public let transformDense: Linear
    public let transformLayerNorm: LayerNorm
    /// `cls.predictions.bias`, which transformers ties to `cls.predictions.decoder.bias`.
    public let bias: Tensor
    public let activation: BlipActivation

    public init(_ path: VarPath, config: BlipTextConfig) throws {
        bert = try BlipTextModel(path / "bert", config: config)
        let head = path / "cls" / "predictions"
        transformDense = try Linear(head / "transform" / "dense", inFeatures: config.hiddenSize, outFeatures: config.hiddenSize)
        transformLayerNorm = try LayerNorm(head / "transform" / "LayerNorm", config.hiddenSize, eps: config.layerNormEps)
        bias = try head.parameter("bias", shape: [config.vocabSize], initializer: .zeros)
        activation = config.hiddenAct
    }

    public var config: BlipTextConfig { bert.config }

    /// Logits [B, L, vocab]; with `lastOnly` just those of the last position ([B, 1, vocab]), which is all
    /// generation needs (transformers' `logits_to_keep=1`).
    public func callAsFunction(_ inputIds: Tensor, encoderHiddenStates: Tensor, cache: BlipTextCache? = nil,
                               lastOnly: Bool = false) throws -> Tensor {
        var h = try bert(inputIds, encoderHiddenStates: encoderHiddenStates, cache: cache)
        if lastOnly { h = try h.narrow(dim: 1, start: h.size(1) - 1, length: 1) }
        let transformed = try transformLayerNorm(activation(transformDense(h)))
        return try F.linear(transformed, weight: bert.embeddings.wordEmbeddings.weight, bias: bias)
    }
}
