// Matches diffusers models/autoencoders/vae.py `Encoder`, `Decoder` and `DiagonalGaussianDistribution`:
// the halves of `AutoencoderKL` and the posterior its encoder returns.
import Torch

// Nested in AutoencoderKL: top-level `Encoder`/`Decoder` would shadow Swift's Codable protocols for the
// whole module.
extension AutoencoderKL {
    /// `Encoder`: conv_in → down blocks (the last without downsampling) → mid block → GroupNorm → SiLU →
    /// conv_out to 2·latent channels (mean and log-variance).
    public final class Encoder {
        public let convIn: Conv2d
        public let downBlocks: [DownEncoderBlock2D]
        public let midBlock: UNetMidBlock2D
        public let convNormOut: GroupNorm
        public let convOut: Conv2d

        public init(_ path: VarPath, inChannels: Int, latentChannels: Int, blockOutChannels: [Int], layersPerBlock: Int,
                    normNumGroups: Int, activation: DiffusersActivation, midBlockAddAttention: Bool) throws {
            guard let last = blockOutChannels.last, let first = blockOutChannels.first else {
                throw TorchError.invalidArgument("\(path.prefix): block_out_channels is empty")
            }
            let resnet = ResnetSettings(tembChannels: nil, eps: 1e-6, groups: normNumGroups, activation: activation)
            convIn = try Conv2d(path / "conv_in", inChannels: inChannels, outChannels: first, kernelSize: 3, padding: 1)
            downBlocks = try blockOutChannels.indices.map { i in
                try DownEncoderBlock2D(path / "down_blocks" / i, inChannels: i == 0 ? first : blockOutChannels[i - 1],
                                       outChannels: blockOutChannels[i], layers: layersPerBlock, resnet: resnet,
                                       addDownsample: i < blockOutChannels.count - 1, downsamplePadding: 0)
            }
            midBlock = try UNetMidBlock2D(path / "mid_block", channels: last, resnet: resnet,
                                          addAttention: midBlockAddAttention, attentionHeadDim: last)
            convNormOut = try GroupNorm(path / "conv_norm_out", groups: normNumGroups, channels: last, eps: 1e-6)
            convOut = try Conv2d(path / "conv_out", inChannels: last, outChannels: 2 * latentChannels, kernelSize: 3, padding: 1)
        }

        public func callAsFunction(_ x: Tensor) throws -> Tensor {
            var h = try convIn(x)
            for block in downBlocks { h = try block(h) }
            // diffusers' Encoder uses nn.SiLU here whatever act_fn says.
            return try convOut(convNormOut(midBlock(h)).silu())
        }
    }

    /// `Decoder`: conv_in → mid block → up blocks (layers + 1 resnets each, the last without upsampling) →
    /// GroupNorm → SiLU → conv_out.
    public final class Decoder {
        public let convIn: Conv2d
        public let midBlock: UNetMidBlock2D
        public let upBlocks: [UpDecoderBlock2D]
        public let convNormOut: GroupNorm
        public let convOut: Conv2d

        public init(_ path: VarPath, latentChannels: Int, outChannels: Int, blockOutChannels: [Int], layersPerBlock: Int,
                    normNumGroups: Int, activation: DiffusersActivation, midBlockAddAttention: Bool) throws {
            guard let last = blockOutChannels.last, let first = blockOutChannels.first else {
                throw TorchError.invalidArgument("\(path.prefix): block_out_channels is empty")
            }
            let resnet = ResnetSettings(tembChannels: nil, eps: 1e-6, groups: normNumGroups, activation: activation)
            convIn = try Conv2d(path / "conv_in", inChannels: latentChannels, outChannels: last, kernelSize: 3, padding: 1)
            midBlock = try UNetMidBlock2D(path / "mid_block", channels: last, resnet: resnet,
                                          addAttention: midBlockAddAttention, attentionHeadDim: last)
            let reversed = Array(blockOutChannels.reversed())
            upBlocks = try reversed.indices.map { i in
                try UpDecoderBlock2D(path / "up_blocks" / i, inChannels: reversed[max(i - 1, 0)], outChannels: reversed[i],
                                     layers: layersPerBlock + 1, resnet: resnet, addUpsample: i < reversed.count - 1)
            }
            convNormOut = try GroupNorm(path / "conv_norm_out", groups: normNumGroups, channels: first, eps: 1e-6)
            convOut = try Conv2d(path / "conv_out", inChannels: first, outChannels: outChannels, kernelSize: 3, padding: 1)
        }

        public func callAsFunction(_ z: Tensor) throws -> Tensor {
            var h = try midBlock(convIn(z))
            for block in upBlocks { h = try block(h) }
            return try convOut(convNormOut(h).silu())
        }
    }
}

/// The encoder's posterior: a diagonal Gaussian whose mean and log-variance are the two channel halves
/// of `parameters`, the log-variance clamped to [−30, 20].
public struct DiagonalGaussianDistribution {
    public let parameters: Tensor
    public let mean: Tensor
    public let logvar: Tensor
    public let std: Tensor

    public init(_ parameters: Tensor) throws {
        self.parameters = parameters
        let halves = try parameters.chunk(2, dim: 1)
        mean = halves[0]
        logvar = try halves[1].clamp(min: -30, max: 20)
        std = try (logvar * 0.5).exp()
    }

    public var variance: Tensor { get throws { try logvar.exp() } }

    /// `mean + std · ε`, ε drawn like diffusers' `randn_tensor(shape, generator, device, dtype)`: on the
    /// generator's device (a CPU generator gives the same numbers as PyTorch's for the same seed), then
    /// moved to the parameters' device; without a generator, from the default generator on that device.
    public func sample(generator: Generator? = nil) throws -> Tensor {
        let device = parameters.device
        let source = generator?.device ?? device
        let noise = try Tensor.randn(mean.shape, dtype: parameters.dtype, device: source, generator: generator)
        return try mean + std * (source == device ? noise : noise.to(device))
    }

    /// One generator per batch element, as diffusers accepts a list of generators.
    public func sample(generators: [Generator]) throws -> Tensor {
        let shape = mean.shape
        guard generators.count == shape[0] else {
            throw TorchError.invalidArgument("\(generators.count) generators for a batch of \(shape[0])")
        }
        let device = parameters.device
        let rows = try generators.map { g in
            try randnTensor([1] + shape.dropFirst(), generator: g, device: device, dtype: parameters.dtype)
        }
        return try mean + std * Tensor.cat(rows, dim: 0)
    }

    /// The mean (diffusers' `mode()`).
    public func mode() -> Tensor { mean }
}
