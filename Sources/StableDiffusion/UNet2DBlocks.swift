// Matches diffusers models/unets/unet_2d_blocks.py: `CrossAttnDownBlock2D`, `DownBlock2D`,
// `UNetMidBlock2DCrossAttn`, `CrossAttnUpBlock2D`, `UpBlock2D` (the block types of SD1.x/SD2.x UNets).
import Torch

/// What the resnets of one block share (diffusers' `temb_channels`, `resnet_eps`, `resnet_groups`,
/// `resnet_act_fn`, `output_scale_factor`).
public struct ResnetSettings: Sendable {
    /// nil: no time embedding (the VAE).
    public var tembChannels: Int?
    public var eps: Double
    public var groups: Int
    public var activation: DiffusersActivation
    public var outputScaleFactor: Double

    public init(tembChannels: Int?, eps: Double, groups: Int, activation: DiffusersActivation = .silu,
                outputScaleFactor: Double = 1) {
        self.tembChannels = tembChannels
        self.eps = eps
        self.groups = groups
        self.activation = activation
        self.outputScaleFactor = outputScaleFactor
    }

    func block(_ path: VarPath, _ inChannels: Int, _ outChannels: Int) throws -> ResnetBlock2D {
        try ResnetBlock2D(path, inChannels: inChannels, outChannels: outChannels, tembChannels: tembChannels,
                          groups: groups, eps: eps, activation: activation, outputScaleFactor: outputScaleFactor)
    }
}

/// What the `Transformer2DModel`s of one block share.
public struct TransformerSettings: Sendable {
    /// The number of attention heads (diffusers' `num_attention_heads`); the head width is channels / heads.
    public var heads: Int
    public var crossAttentionDim: Int
    /// `BasicTransformerBlock`s per `Transformer2DModel`.
    public var layers: Int
    public var useLinearProjection: Bool
    public var onlyCrossAttention: Bool
    public var upcastAttention: Bool

    public init(heads: Int, crossAttentionDim: Int, layers: Int = 1, useLinearProjection: Bool = false,
                onlyCrossAttention: Bool = false, upcastAttention: Bool = false) {
        self.heads = heads
        self.crossAttentionDim = crossAttentionDim
        self.layers = layers
        self.useLinearProjection = useLinearProjection
        self.onlyCrossAttention = onlyCrossAttention
        self.upcastAttention = upcastAttention
    }

    func transformer(_ path: VarPath, channels: Int, groups: Int) throws -> Transformer2DModel {
        guard heads > 0, channels % heads == 0 else {
            throw TorchError.invalidArgument("\(path.prefix): \(channels) channels do not split into \(heads) heads")
        }
        return try Transformer2DModel(path, heads: heads, headDim: channels / heads, inChannels: channels,
                                      layers: layers, normGroups: groups, crossAttentionDim: crossAttentionDim,
                                      useLinearProjection: useLinearProjection, onlyCrossAttention: onlyCrossAttention,
                                      upcastAttention: upcastAttention)
    }
}

/// A down block of the UNet: returns the new hidden states and the skip connections it leaves for the up path.
public protocol UNetDownBlock: AnyObject {
    var resnets: [ResnetBlock2D] { get }
    var downsampler: Downsample2D? { get }
    /// diffusers' `gradient_checkpointing`: each resnet runs under `checkpoint` (nil: off).
    var gradientCheckpointing: GradientCheckpointing? { get set }
    func callAsFunction(_ x: Tensor, temb: Tensor, encoderHiddenStates: Tensor) throws -> (Tensor, [Tensor])
}

/// An up block: consumes `resnets.count` skip connections (the last one first).
public protocol UNetUpBlock: AnyObject {
    var resnets: [ResnetBlock2D] { get }
    var upsampler: Upsample2D? { get }
    /// diffusers' `gradient_checkpointing`: each resnet runs under `checkpoint` (nil: off).
    var gradientCheckpointing: GradientCheckpointing? { get set }
    func callAsFunction(_ x: Tensor, skips: ArraySlice<Tensor>, temb: Tensor, encoderHiddenStates: Tensor,
                        upsampleSize: (Int, Int)?) throws -> Tensor
}

/// `DownBlock2D`: resnets, then an optional stride-2 `downsamplers.0`.
public final class DownBlock2D: UNetDownBlock {
    public let resnets: [ResnetBlock2D]
    public let downsampler: Downsample2D?
    public var gradientCheckpointing: GradientCheckpointing?

    public init(_ path: VarPath, inChannels: Int, outChannels: Int, layers: Int, resnet: ResnetSettings,
                addDownsample: Bool, downsamplePadding: Int = 1) throws {
        resnets = try (0..<layers).map {
            try resnet.block(path / "resnets" / $0, $0 == 0 ? inChannels : outChannels, outChannels)
        }
        downsampler = addDownsample
            ? try Downsample2D(path / "downsamplers" / 0, channels: outChannels, padding: downsamplePadding) : nil
    }

    public func callAsFunction(_ x: Tensor, temb: Tensor, encoderHiddenStates: Tensor) throws -> (Tensor, [Tensor]) {
        var h = x
        var skips: [Tensor] = []
        for resnet in resnets {
            h = try checkpointed(gradientCheckpointing, [h, temb]) { try resnet($0[0], temb: $0[1]) }
            skips.append(h)
        }
        if let downsampler {
            h = try downsampler(h)
            skips.append(h)
        }
        return (h, skips)
    }
}

/// `CrossAttnDownBlock2D`: (resnet → transformer) × layers, then an optional `downsamplers.0`.
public final class CrossAttnDownBlock2D: UNetDownBlock {
    public let resnets: [ResnetBlock2D]
    public let attentions: [Transformer2DModel]
    public let downsampler: Downsample2D?
    public var gradientCheckpointing: GradientCheckpointing?

    public init(_ path: VarPath, inChannels: Int, outChannels: Int, layers: Int, resnet: ResnetSettings,
                transformer: TransformerSettings, addDownsample: Bool, downsamplePadding: Int = 1) throws {
        resnets = try (0..<layers).map {
            try resnet.block(path / "resnets" / $0, $0 == 0 ? inChannels : outChannels, outChannels)
        }
        attentions = try (0..<layers).map {
            try transformer.transformer(path / "attentions" / $0, channels: outChannels, groups: resnet.groups)
        }
        downsampler = addDownsample
            ? try Downsample2D(path / "downsamplers" / 0, channels: outChannels, padding: downsamplePadding) : nil
    }

    public func callAsFunction(_ x: Tensor, temb: Tensor, encoderHiddenStates: Tensor) throws -> (Tensor, [Tensor]) {
        var h = x
        var skips: [Tensor] = []
        for (resnet, attention) in zip(resnets, attentions) {
            h = try checkpointed(gradientCheckpointing, [h, temb]) { try resnet($0[0], temb: $0[1]) }
            h = try attention(h, encoderHiddenStates: encoderHiddenStates)
            skips.append(h)
        }
        if let downsampler {
            h = try downsampler(h)
            skips.append(h)
        }
        return (h, skips)
    }
}

/// `UNetMidBlock2DCrossAttn`: resnet, then (transformer → resnet) × layers.
public final class UNetMidBlock2DCrossAttn {
    public let resnets: [ResnetBlock2D]
    public let attentions: [Transformer2DModel]
    /// diffusers' `gradient_checkpointing`: every resnet but the first runs under `checkpoint` (nil: off).
    public var gradientCheckpointing: GradientCheckpointing?

    public init(_ path: VarPath, channels: Int, layers: Int = 1, resnet: ResnetSettings,
                transformer: TransformerSettings) throws {
        resnets = try (0...layers).map { try resnet.block(path / "resnets" / $0, channels, channels) }
        attentions = try (0..<layers).map {
            try transformer.transformer(path / "attentions" / $0, channels: channels, groups: resnet.groups)
        }
    }

    public func callAsFunction(_ x: Tensor, temb: Tensor, encoderHiddenStates: Tensor) throws -> Tensor {
        // As in diffusers, the first resnet is never checkpointed.
        var h = try resnets[0](x, temb: temb)
        for (attention, resnet) in zip(attentions, resnets.dropFirst()) {
            h = try attention(h, encoderHiddenStates: encoderHiddenStates)
            h = try checkpointed(gradientCheckpointing, [h, temb]) { try resnet($0[0], temb: $0[1]) }
        }
        return h
    }
}

/// Input widths of an up block's resnets: the previous block's output (first) or this block's width,
/// plus the skip connection's width (the matching down block's input for the last resnet).
private func upResnetInputs(layers: Int, inChannels: Int, outChannels: Int, prevOutputChannels: Int) -> [Int] {
    (0..<layers).map { i in
        let skip = i == layers - 1 ? inChannels : outChannels
        return (i == 0 ? prevOutputChannels : outChannels) + skip
    }
}

/// `UpBlock2D`: (concat skip → resnet) × layers, then an optional `upsamplers.0`.
public final class UpBlock2D: UNetUpBlock {
    public let resnets: [ResnetBlock2D]
    public let upsampler: Upsample2D?
    public var gradientCheckpointing: GradientCheckpointing?

    public init(_ path: VarPath, inChannels: Int, outChannels: Int, prevOutputChannels: Int, layers: Int,
                resnet: ResnetSettings, addUpsample: Bool) throws {
        let inputs = upResnetInputs(layers: layers, inChannels: inChannels, outChannels: outChannels,
                                    prevOutputChannels: prevOutputChannels)
        resnets = try inputs.enumerated().map { try resnet.block(path / "resnets" / $0.offset, $0.element, outChannels) }
        upsampler = addUpsample ? try Upsample2D(path / "upsamplers" / 0, channels: outChannels) : nil
    }

    public func callAsFunction(_ x: Tensor, skips: ArraySlice<Tensor>, temb: Tensor, encoderHiddenStates: Tensor,
                               upsampleSize: (Int, Int)?) throws -> Tensor {
        guard skips.count == resnets.count else {
            throw TorchError.invalidArgument("UpBlock2D needs \(resnets.count) skip connections, got \(skips.count)")
        }
        var h = x
        for (resnet, skip) in zip(resnets, skips.reversed()) {
            h = try checkpointed(gradientCheckpointing, [Tensor.cat([h, skip], dim: 1), temb]) {
                try resnet($0[0], temb: $0[1])
            }
        }
        return try upsampler.map { try $0(h, outputSize: upsampleSize) } ?? h
    }
}

/// `CrossAttnUpBlock2D`: (concat skip → resnet → transformer) × layers, then an optional `upsamplers.0`.
public final class CrossAttnUpBlock2D: UNetUpBlock {
    public let resnets: [ResnetBlock2D]
    public let attentions: [Transformer2DModel]
    public let upsampler: Upsample2D?
    public var gradientCheckpointing: GradientCheckpointing?

    public init(_ path: VarPath, inChannels: Int, outChannels: Int, prevOutputChannels: Int, layers: Int,
                resnet: ResnetSettings, transformer: TransformerSettings, addUpsample: Bool) throws {
        let inputs = upResnetInputs(layers: layers, inChannels: inChannels, outChannels: outChannels,
                                    prevOutputChannels: prevOutputChannels)
        resnets = try inputs.enumerated().map { try resnet.block(path / "resnets" / $0.offset, $0.element, outChannels) }
        attentions = try (0..<layers).map {
            try transformer.transformer(path / "attentions" / $0, channels: outChannels, groups: resnet.groups)
        }
        upsampler = addUpsample ? try Upsample2D(path / "upsamplers" / 0, channels: outChannels) : nil
    }

    public func callAsFunction(_ x: Tensor, skips: ArraySlice<Tensor>, temb: Tensor, encoderHiddenStates: Tensor,
                               upsampleSize: (Int, Int)?) throws -> Tensor {
        guard skips.count == resnets.count else {
            throw TorchError.invalidArgument("CrossAttnUpBlock2D needs \(resnets.count) skip connections, got \(skips.count)")
        }
        var h = x
        for ((resnet, attention), skip) in zip(zip(resnets, attentions), skips.reversed()) {
            h = try checkpointed(gradientCheckpointing, [Tensor.cat([h, skip], dim: 1), temb]) {
                try resnet($0[0], temb: $0[1])
            }
            h = try attention(h, encoderHiddenStates: encoderHiddenStates)
        }
        return try upsampler.map { try $0(h, outputSize: upsampleSize) } ?? h
    }
}
