// Matches diffusers models/downsampling.py `Downsample2D` and models/upsampling.py `Upsample2D`, in the
// convolutional form every UNet/VAE block of SD1.x uses (`use_conv=True`, weights under `conv`).
import Torch

/// A stride-2 3×3 convolution. With `padding` 0 (the VAE encoder) the input is first padded by one
/// zero row and column at the bottom/right, as the original LDM code did.
public final class Downsample2D {
    public let conv: Conv2d
    public let padding: Int

    public init(_ path: VarPath, channels: Int, outChannels: Int? = nil, padding: Int = 1) throws {
        self.padding = padding
        conv = try Conv2d(path / "conv", inChannels: channels, outChannels: outChannels ?? channels, kernelSize: 3,
                          stride: 2, padding: padding)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try conv(padding == 0 ? x.pad([0, 1, 0, 1]) : x)
    }
}

/// Nearest-neighbour ×2 upsampling (or to an explicit size) followed by a 3×3 convolution.
public final class Upsample2D {
    public let conv: Conv2d

    public init(_ path: VarPath, channels: Int, outChannels: Int? = nil) throws {
        conv = try Conv2d(path / "conv", inChannels: channels, outChannels: outChannels ?? channels, kernelSize: 3,
                          padding: 1)
    }

    /// `outputSize` (height, width) replaces the ×2 factor; the UNet passes it when the input size is not
    /// a multiple of its total downsampling factor, so skip connections line up.
    public func callAsFunction(_ x: Tensor, outputSize: (Int, Int)? = nil) throws -> Tensor {
        let size = outputSize ?? (x.size(2) * 2, x.size(3) * 2)
        return try conv(x.interpolate(size: size, mode: .nearest))
    }
}
