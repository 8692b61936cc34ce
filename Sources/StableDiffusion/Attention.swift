// Matches diffusers models/attention_processor.py `Attention` run by its default `AttnProcessor2_0`
// (F.scaled_dot_product_attention), including the VAE mid-block form (group norm, 4-D input, residual).
import Torch

/// Multi-head attention with diffusers' parameter keys: `to_q`, `to_k`, `to_v`, `to_out.0` (and
/// `group_norm` in the VAE). The projections are plain `Linear` properties so adapters (LoRA) can target
/// them by key.
public final class Attention {
    public let toQ: Linear
    public let toK: Linear
    public let toV: Linear
    /// `to_out.0` (`to_out.1` is a parameterless dropout in diffusers).
    public let toOut: Linear
    public let groupNorm: GroupNorm?
    public let heads: Int
    public let headDim: Int
    /// Keys and values come from `encoderHiddenStates` of width `crossAttentionDim` when set.
    public let crossAttentionDim: Int?
    public let residualConnection: Bool
    public let rescaleOutputFactor: Double
    /// The dotted key of this module (`down_blocks.0.attentions.0.transformer_blocks.0.attn1`).
    public let key: String

    /// `upcastAttention` is accepted for config compatibility and changes nothing: diffusers'
    /// `AttnProcessor2_0` ignores it too, since SDPA kernels accumulate in float32 anyway.
    public init(_ path: VarPath, queryDim: Int, crossAttentionDim: Int? = nil, heads: Int, dimHead: Int,
                bias: Bool = false, outBias: Bool = true, upcastAttention: Bool = false, normNumGroups: Int? = nil,
                eps: Double = 1e-5, rescaleOutputFactor: Double = 1, residualConnection: Bool = false) throws {
        guard heads > 0, dimHead > 0 else {
            throw TorchError.invalidArgument("\(path.prefix): attention needs heads > 0 and head width > 0, got \(heads) × \(dimHead)")
        }
        let inner = heads * dimHead
        self.heads = heads
        self.headDim = dimHead
        self.crossAttentionDim = crossAttentionDim
        self.residualConnection = residualConnection
        self.rescaleOutputFactor = rescaleOutputFactor
        key = path.prefix
        // diffusers creates group_norm first, then to_q, to_k, to_v, to_out.0.
        groupNorm = try normNumGroups.map { try GroupNorm(path / "group_norm", groups: $0, channels: queryDim, eps: eps) }
        let kvDim = crossAttentionDim ?? queryDim
        toQ = try Linear(path / "to_q", inFeatures: queryDim, outFeatures: inner, bias: bias)
        toK = try Linear(path / "to_k", inFeatures: kvDim, outFeatures: inner, bias: bias)
        toV = try Linear(path / "to_v", inFeatures: kvDim, outFeatures: inner, bias: bias)
        toOut = try Linear(path / "to_out" / 0, inFeatures: inner, outFeatures: queryDim, bias: outBias)
    }

    /// `hiddenStates`: [B, L, queryDim], or [B, C, H, W] (the VAE form: attention over the H·W positions).
    /// `encoderHiddenStates`: [B, S, crossAttentionDim] for cross-attention; nil attends to itself.
    public func callAsFunction(_ hiddenStates: Tensor, encoderHiddenStates: Tensor? = nil) throws -> Tensor {
        let spatial = hiddenStates.rank == 4
        let dims = hiddenStates.shape
        let batch = dims[0]
        var x = hiddenStates
        if spatial {
            // Normalise in (B, C, H·W) layout before the transpose: the same reduction, no copy.
            x = try hiddenStates.view([batch, dims[1], dims[2] * dims[3]])
            if let groupNorm { x = try groupNorm(x) }
            x = try x.transpose(1, 2)
        } else if let groupNorm {
            x = try groupNorm(x.transpose(1, 2)).transpose(1, 2)
        }
        let context = encoderHiddenStates ?? x
        let q = try splitHeads(toQ(x), batch: batch)
        let k = try splitHeads(toK(context), batch: batch)
        let v = try splitHeads(toV(context), batch: batch)
        // SDPA's default scale is 1/√headDim, diffusers' `attn.scale`.
        let attended = try F.scaledDotProductAttention(q, k, v)
        var out = try toOut(attended.transpose(1, 2).reshape([batch, -1, heads * headDim]))
        if spatial {
            out = try out.transpose(-1, -2).reshape(dims)
        }
        if residualConnection { out = try out + hiddenStates }
        return rescaleOutputFactor == 1 ? out : try out / rescaleOutputFactor
    }

    /// [B, L, heads·headDim] → [B, heads, L, headDim] (a view).
    private func splitHeads(_ t: Tensor, batch: Int) throws -> Tensor {
        try t.view([batch, -1, heads, headDim]).transpose(1, 2)
    }
}
