// Image ⇄ Tensor, step for step as diffusers' VaeImageProcessor (image_processor.py):
//   to a tensor:  pil_to_numpy (x.astype(float32) / 255), numpy_to_pt (HWC → CHW), normalize (2x − 1)
//   to an image:  denormalize ((x · 0.5 + 0.5).clamp(0, 1) in the tensor's dtype), pt_to_numpy (.float()),
//                 numpy_to_pil ((x · 255).round() — half to even — .astype(uint8))
// Every step is a tensor op, in the same order and dtype, so the results are bit-identical.
import Torch

public enum PixelRange: Sendable {
    /// [0, 1]: x / 255.
    case unit
    /// [-1, 1]: 2 · (x / 255) − 1, what the VAE takes and gives.
    case symmetric
}

extension Image {
    /// A (C, H, W) float tensor of the pixels (C = the image's channels), on `device`, in `dtype`
    /// (computed in float32 as diffusers does, then converted).
    public func tensor(range: PixelRange = .symmetric, dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        var t = try hwcTensor().to(.float32) / 255
        if range == .symmetric { t = try 2 * t - 1 }
        t = try t.permute([2, 0, 1]).contiguous()
        if dtype != .float32 || device != .cpu { t = try t.to(device, dtype: dtype) }
        return t
    }

    /// An image from a (C, H, W) or (1, C, H, W) float tensor in `range`, on any device; C is 1 (grey),
    /// 2, 3 (RGB) or 4 (RGBA). Values outside the range are clamped.
    public init(tensor: Tensor, range: PixelRange = .symmetric) throws {
        var t = tensor
        if t.rank == 4 {
            guard t.size(0) == 1 else {
                throw ImageError.invalid("a batch of \(t.size(0)) images: use Image.batch(_:range:)")
            }
            t = try t.squeeze(0)
        }
        guard t.rank == 3, (1...4).contains(t.size(0)), t.dtype.isFloatingPoint else {
            throw ImageError.invalid("expected a float (C, H, W) tensor with 1–4 channels, got \(tensor.shape) \(tensor.dtype)")
        }
        t = range == .symmetric ? try (t * 0.5 + 0.5).clamp(min: 0, max: 1) : try t.clamp(min: 0, max: 1)
        let bytes = try (t.to(.cpu, dtype: .float32) * 255).round().to(.uint8)
        try self.init(hwc: try bytes.permute([1, 2, 0]).contiguous())
    }

    /// The images of an (N, C, H, W) tensor.
    public static func batch(_ tensor: Tensor, range: PixelRange = .symmetric) throws -> [Image] {
        guard tensor.rank == 4 else { throw ImageError.invalid("expected an (N, C, H, W) tensor, got \(tensor.shape)") }
        return try (0..<tensor.size(0)).map { try Image(tensor: try tensor.select(dim: 0, index: $0), range: range) }
    }
}
