// Matches diffusers models/embeddings.py: `get_timestep_embedding`, `Timesteps`, `TimestepEmbedding`.
import Foundation
import Torch

/// The sinusoidal embedding of DDPM: for each timestep t, `[sin(t·f_i), cos(t·f_i)]` over frequencies
/// `f_i = exp(−ln(maxPeriod)·i / (half − downscaleFreqShift))`, i < half = dim / 2; `flipSinToCos` puts cos
/// first; an odd `dim` gets a zero column. Returns [N, dim] float32 for 1-D `timesteps`.
public func getTimestepEmbedding(_ timesteps: Tensor, dim: Int, flipSinToCos: Bool = false,
                                 downscaleFreqShift: Double = 1, scale: Double = 1,
                                 maxPeriod: Double = 10000) throws -> Tensor {
    try Timesteps(channels: dim, flipSinToCos: flipSinToCos, downscaleFreqShift: downscaleFreqShift, scale: scale,
                  maxPeriod: maxPeriod, device: timesteps.device)(timesteps)
}

/// `Timesteps`: the embedding above with its frequencies computed once (they depend only on the config).
public final class Timesteps {
    public let channels: Int
    public let flipSinToCos: Bool
    public let downscaleFreqShift: Double
    public let scale: Double
    /// [channels / 2] float32, on the device the model was built for.
    public let frequencies: Tensor

    public init(channels: Int, flipSinToCos: Bool, downscaleFreqShift: Double, scale: Double = 1,
                maxPeriod: Double = 10000, device: Device = .cpu) throws {
        let half = channels / 2
        guard half > 0, Double(half) != downscaleFreqShift else {
            throw TorchError.invalidArgument("timestep embedding of width \(channels) with shift \(downscaleFreqShift)")
        }
        self.channels = channels
        self.flipSinToCos = flipSinToCos
        self.downscaleFreqShift = downscaleFreqShift
        self.scale = scale
        // The same ops in the same order as diffusers (float32 arange, scalar multiply, scalar divide,
        // exp), so the frequencies are bit-identical.
        let exponent = try Tensor.arange(0, Double(half), dtype: .float32, device: device) * (-Foundation.log(maxPeriod))
        frequencies = try (exponent / (Double(half) - downscaleFreqShift)).exp()
    }

    /// `timesteps`: 1-D, integer or floating point. Returns [N, channels] float32.
    public func callAsFunction(_ timesteps: Tensor) throws -> Tensor {
        guard timesteps.rank == 1 else {
            throw TorchError.invalidArgument("timesteps must be 1-D, got shape \(timesteps.shape)")
        }
        let freqs = timesteps.device == frequencies.device ? frequencies : try frequencies.to(timesteps.device)
        var args = try timesteps.unsqueeze(1).to(.float32) * freqs.unsqueeze(0)
        if scale != 1 { args = try args * scale }
        let (sin, cos) = (try args.sin(), try args.cos())
        let emb = try Tensor.cat(flipSinToCos ? [cos, sin] : [sin, cos], dim: -1)
        return channels % 2 == 1 ? try emb.pad([0, 1, 0, 0]) : emb
    }
}

/// `TimestepEmbedding`: `linear_1` → activation → `linear_2` (→ optional post-activation).
public final class TimestepEmbedding {
    public let linear1: Linear
    public let linear2: Linear
    public let activation: DiffusersActivation
    public let postActivation: DiffusersActivation?

    public init(_ path: VarPath, inChannels: Int, timeEmbedDim: Int, outDim: Int? = nil,
                activation: DiffusersActivation = .silu, postActivation: DiffusersActivation? = nil) throws {
        linear1 = try Linear(path / "linear_1", inFeatures: inChannels, outFeatures: timeEmbedDim)
        linear2 = try Linear(path / "linear_2", inFeatures: timeEmbedDim, outFeatures: outDim ?? timeEmbedDim)
        self.activation = activation
        self.postActivation = postActivation
    }

    public func callAsFunction(_ sample: Tensor) throws -> Tensor {
        let h = try linear2(activation(linear1(sample)))
        return try postActivation.map { try $0(h) } ?? h
    }
}
