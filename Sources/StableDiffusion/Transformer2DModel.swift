// Matches diffusers models/transformers/transformer_2d.py `Transformer2DModel` (continuous input,
// layer_norm blocks) with models/attention.py `BasicTransformerBlock`, `FeedForward` and
// models/activations.py `GEGLU`.
import Torch

/// `GEGLU`: `proj` to twice the width, split into (hidden, gate), `hidden · gelu(gate)`.
public final class GEGLU {
    public let proj: Linear

    public init(_ path: VarPath, dimIn: Int, dimOut: Int) throws {
        proj = try Linear(path / "proj", inFeatures: dimIn, outFeatures: dimOut * 2)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let halves = try proj(x).chunk(2, dim: -1)
        return try halves[0] * halves[1].gelu()
    }
}

/// `FeedForward` with GEGLU: `net.0` (GEGLU), `net.1` (dropout, no weights), `net.2` (Linear).
public final class FeedForward {
    public let geglu: GEGLU
    public let projOut: Linear

    public init(_ path: VarPath, dim: Int, mult: Int = 4) throws {
        let inner = dim * mult
        geglu = try GEGLU(path / "net" / 0, dimIn: dim, dimOut: inner)
        projOut = try Linear(path / "net" / 2, inFeatures: inner, outFeatures: dim)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try projOut(geglu(x)) }
}

/// Pre-norm self-attention (`attn1`), cross-attention (`attn2`) and feed-forward (`ff`), each added to
/// the running hidden states.
public final class BasicTransformerBlock {
    public let norm1: LayerNorm
    public let attn1: Attention
    public let norm2: LayerNorm
    public let attn2: Attention
    public let norm3: LayerNorm
    public let ff: FeedForward
    /// `attn1` also attends to the encoder states instead of to itself.
    public let onlyCrossAttention: Bool

    public init(_ path: VarPath, dim: Int, heads: Int, headDim: Int, crossAttentionDim: Int,
                onlyCrossAttention: Bool = false, upcastAttention: Bool = false, normEps: Double = 1e-5) throws {
        self.onlyCrossAttention = onlyCrossAttention
        norm1 = try LayerNorm(path / "norm1", dim, eps: normEps)
        attn1 = try Attention(path / "attn1", queryDim: dim, crossAttentionDim: onlyCrossAttention ? crossAttentionDim : nil,
                              heads: heads, dimHead: headDim, upcastAttention: upcastAttention)
        norm2 = try LayerNorm(path / "norm2", dim, eps: normEps)
        attn2 = try Attention(path / "attn2", queryDim: dim, crossAttentionDim: crossAttentionDim, heads: heads,
                              dimHead: headDim, upcastAttention: upcastAttention)
        norm3 = try LayerNorm(path / "norm3", dim, eps: normEps)
        ff = try FeedForward(path / "ff", dim: dim)
    }

    /// `x`: [B, L, dim]; `encoderHiddenStates`: [B, S, crossAttentionDim].
    public func callAsFunction(_ x: Tensor, encoderHiddenStates: Tensor) throws -> Tensor {
        var h = try attn1(norm1(x), encoderHiddenStates: onlyCrossAttention ? encoderHiddenStates : nil) + x
        h = try attn2(norm2(h), encoderHiddenStates: encoderHiddenStates) + h
        return try ff(norm3(h)) + h
    }
}

/// GroupNorm (eps 1e-6, fixed in diffusers) → `proj_in` (1×1 conv, or Linear with
/// `useLinearProjection`, as SD2 has) → transformer blocks over the H·W positions → `proj_out`, added to
/// the input.
public final class Transformer2DModel {
    public let norm: GroupNorm
    public let projInConv: Conv2d?
    public let projInLinear: Linear?
    public let transformerBlocks: [BasicTransformerBlock]
    public let projOutConv: Conv2d?
    public let projOutLinear: Linear?
    public let innerDim: Int
    /// diffusers' `gradient_checkpointing`: each `BasicTransformerBlock` runs under `checkpoint` (nil: off).
    public var gradientCheckpointing: GradientCheckpointing?

    public init(_ path: VarPath, heads: Int, headDim: Int, inChannels: Int, layers: Int = 1, normGroups: Int = 32,
                crossAttentionDim: Int, useLinearProjection: Bool = false, onlyCrossAttention: Bool = false,
                upcastAttention: Bool = false) throws {
        let inner = heads * headDim
        innerDim = inner
        norm = try GroupNorm(path / "norm", groups: normGroups, channels: inChannels, eps: 1e-6)
        if useLinearProjection {
            projInLinear = try Linear(path / "proj_in", inFeatures: inChannels, outFeatures: inner)
            projInConv = nil
        } else {
            projInConv = try Conv2d(path / "proj_in", inChannels: inChannels, outChannels: inner, kernelSize: 1)
            projInLinear = nil
        }
        transformerBlocks = try (0..<layers).map {
            try BasicTransformerBlock(path / "transformer_blocks" / $0, dim: inner, heads: heads, headDim: headDim,
                                      crossAttentionDim: crossAttentionDim, onlyCrossAttention: onlyCrossAttention,
                                      upcastAttention: upcastAttention)
        }
        if useLinearProjection {
            projOutLinear = try Linear(path / "proj_out", inFeatures: inner, outFeatures: inChannels)
            projOutConv = nil
        } else {
            projOutConv = try Conv2d(path / "proj_out", inChannels: inner, outChannels: inChannels, kernelSize: 1)
            projOutLinear = nil
        }
    }

    /// `x`: [B, C, H, W]; `encoderHiddenStates`: [B, S, crossAttentionDim].
    public func callAsFunction(_ x: Tensor, encoderHiddenStates: Tensor) throws -> Tensor {
        let dims = x.shape
        let (batch, height, width) = (dims[0], dims[2], dims[3])
        var h = try norm(x)
        // [B, C, H, W] → [B, H·W, C] (the permute makes reshape copy, as in diffusers).
        func tokens(_ t: Tensor) throws -> Tensor {
            try t.permute([0, 2, 3, 1]).reshape([batch, height * width, t.size(1)])
        }
        if let projInConv {
            h = try tokens(projInConv(h))
        } else if let projInLinear {
            h = try projInLinear(tokens(h))
        }
        for block in transformerBlocks {
            h = try checkpointed(gradientCheckpointing, [h, encoderHiddenStates]) {
                try block($0[0], encoderHiddenStates: $0[1])
            }
        }
        // Back to [B, C, H, W], contiguous as diffusers makes it (so convolutions see the usual layout).
        func image(_ t: Tensor) throws -> Tensor {
            try t.reshape([batch, height, width, t.size(-1)]).permute([0, 3, 1, 2]).contiguous()
        }
        if let projOutConv {
            h = try projOutConv(image(h))
        } else if let projOutLinear {
            h = try image(projOutLinear(h))
        }
        return try h + x
    }
}
