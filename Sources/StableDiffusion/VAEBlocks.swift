// Matches diffusers models/unets/unet_2d_blocks.py `DownEncoderBlock2D`, `UpDecoderBlock2D` and
// `UNetMidBlock2D`: the blocks of the VAE's encoder and decoder (no time embedding, GroupNorm eps 1e-6).
import Torch

/// `DownEncoderBlock2D`: resnets, then an optional `downsamplers.0` (padding 0 in the VAE encoder).
public final class DownEncoderBlock2D {
    public let resnets: [ResnetBlock2D]
    public let downsampler: Downsample2D?

    public init(_ path: VarPath, inChannels: Int, outChannels: Int, layers: Int, resnet: ResnetSettings,
                addDownsample: Bool, downsamplePadding: Int = 1) throws {
        resnets = try (0..<layers).map {
            try resnet.block(path / "resnets" / $0, $0 == 0 ? inChannels : outChannels, outChannels)
        }
        downsampler = addDownsample
            ? try Downsample2D(path / "downsamplers" / 0, channels: outChannels, padding: downsamplePadding) : nil
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = x
        for resnet in resnets { h = try resnet(h, temb: nil) }
        return try downsampler.map { try $0(h) } ?? h
    }
}

/// `UpDecoderBlock2D`: resnets, then an optional `upsamplers.0`.
public final class UpDecoderBlock2D {
    public let resnets: [ResnetBlock2D]
    public let upsampler: Upsample2D?

    public init(_ path: VarPath, inChannels: Int, outChannels: Int, layers: Int, resnet: ResnetSettings,
                addUpsample: Bool) throws {
        resnets = try (0..<layers).map {
            try resnet.block(path / "resnets" / $0, $0 == 0 ? inChannels : outChannels, outChannels)
        }
        upsampler = addUpsample ? try Upsample2D(path / "upsamplers" / 0, channels: outChannels) : nil
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = x
        for resnet in resnets { h = try resnet(h, temb: nil) }
        return try upsampler.map { try $0(h) } ?? h
    }
}

/// `UNetMidBlock2D` as the VAE builds it: resnet, then (single-head spatial self-attention with its own
/// group norm and residual → resnet) × layers. `addAttention: false` leaves the attentions out.
public final class UNetMidBlock2D {
    public let resnets: [ResnetBlock2D]
    /// Empty when the config has `mid_block_add_attention: false`.
    public let attentions: [Attention]

    public init(_ path: VarPath, channels: Int, layers: Int = 1, resnet: ResnetSettings, addAttention: Bool = true,
                attentionHeadDim: Int? = nil) throws {
        let headDim = attentionHeadDim ?? channels
        guard headDim > 0, channels % headDim == 0 else {
            throw TorchError.invalidArgument("\(path.prefix): head width \(headDim) does not divide \(channels) channels")
        }
        resnets = try (0...layers).map { try resnet.block(path / "resnets" / $0, channels, channels) }
        attentions = addAttention ? try (0..<layers).map {
            try Attention(path / "attentions" / $0, queryDim: channels, heads: channels / headDim, dimHead: headDim,
                          bias: true, normNumGroups: resnet.groups, eps: resnet.eps,
                          rescaleOutputFactor: resnet.outputScaleFactor, residualConnection: true)
        } : []
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = try resnets[0](x, temb: nil)
        for (i, resnet) in resnets.dropFirst().enumerated() {
            if i < attentions.count { h = try attentions[i](h) }
            h = try resnet(h, temb: nil)
        }
        return h
    }
}
