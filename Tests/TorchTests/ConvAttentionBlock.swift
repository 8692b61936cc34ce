// The ops fixture's block (reference/fixtures/ops.py): conv2d → group_norm → gelu → tokens → qkv projection →
// attention, reduced to a scalar. Shared by the autograd and checkpointing tests.
import TestSupport
import Torch

func convAttentionBlock(_ p: [String: Tensor], _ x: Tensor) throws -> Tensor {
    var h = try F.conv2d(x, weight: p.get("cw"), bias: p.get("cb"), padding: 1)
    h = try F.groupNorm(h, groups: 2, weight: p.get("gw"), bias: p.get("gb"))
    h = try h.gelu()
    let tokens = try h.flatten(from: 2).transpose(1, 2)
    let qkv = try F.linear(tokens, weight: p.get("qkv")).chunk(3, dim: -1)
    let att = try F.scaledDotProductAttention(qkv[0].unsqueeze(1), qkv[1].unsqueeze(1), qkv[2].unsqueeze(1)).squeeze(1)
    return try (att * att).mean() + h.pow(2).sum() * 0.01
}
