// Matches diffusers models/resnet.py `ResnetBlock2D` with `time_embedding_norm="default"`, `pre_norm=True`,
// no up/down sampling inside the block (the forms the SD1.x UNet and VAE use).
import Torch

/// GroupNorm → act → conv3×3 (+ projected time embedding) → GroupNorm → act → dropout → conv3×3, added to
/// the input (through a 1×1 `conv_shortcut` when the channel count changes), divided by
/// `outputScaleFactor`.
public final class ResnetBlock2D {
    public let norm1: GroupNorm
    public let conv1: Conv2d
    /// nil in the VAE, which has no time embedding.
    public let timeEmbProj: Linear?
    public let norm2: GroupNorm
    public let conv2: Conv2d
    public let convShortcut: Conv2d?
    public let activation: DiffusersActivation
    public let outputScaleFactor: Double
    public let inChannels: Int
    public let outChannels: Int

    public init(_ path: VarPath, inChannels: Int, outChannels: Int? = nil, tembChannels: Int?, groups: Int = 32,
                groupsOut: Int? = nil, eps: Double = 1e-6, activation: DiffusersActivation = .silu,
                outputScaleFactor: Double = 1) throws {
        let out = outChannels ?? inChannels
        self.inChannels = inChannels
        self.outChannels = out
        self.activation = activation
        self.outputScaleFactor = outputScaleFactor
        norm1 = try GroupNorm(path / "norm1", groups: groups, channels: inChannels, eps: eps)
        conv1 = try Conv2d(path / "conv1", inChannels: inChannels, outChannels: out, kernelSize: 3, padding: 1)
        timeEmbProj = try tembChannels.map { try Linear(path / "time_emb_proj", inFeatures: $0, outFeatures: out) }
        norm2 = try GroupNorm(path / "norm2", groups: groupsOut ?? groups, channels: out, eps: eps)
        conv2 = try Conv2d(path / "conv2", inChannels: out, outChannels: out, kernelSize: 3, padding: 1)
        convShortcut = inChannels == out ? nil
            : try Conv2d(path / "conv_shortcut", inChannels: inChannels, outChannels: out, kernelSize: 1)
    }

    /// `temb`: [B, tembChannels], or nil where the block has no time projection.
    public func callAsFunction(_ x: Tensor, temb: Tensor?) throws -> Tensor {
        var h = try conv1(activation(norm1(x)))
        if let timeEmbProj, let temb {
            let t = try timeEmbProj(activation(temb))
            h = try h + t.view([t.size(0), t.size(1), 1, 1])
        }
        // Dropout is 0 in every supported config (the UNet config rejects others), so none is applied.
        h = try conv2(activation(norm2(h)))
        let residual = try convShortcut.map { try $0(x) } ?? x
        let sum = try residual + h
        // Dividing by 1 changes nothing, so skip that kernel.
        return outputScaleFactor == 1 ? sum : try sum / outputScaleFactor
    }
}
