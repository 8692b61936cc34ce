// Neural-network functions (torch.nn.functional), linear algebra and activations.
import CTorch

public enum PadMode: Sendable { case constant, reflect, replicate }
public enum InterpolationMode: Sendable { case nearest, nearestExact, bilinear, bicubic }
public enum Reduction: Int32, Sendable { case none = 0, mean = 1, sum = 2 }

extension Tensor {
    public func matmul(_ other: Tensor) throws -> Tensor { try produce { ct_matmul(handle, other.handle, $0) } }
    public func bmm(_ other: Tensor) throws -> Tensor { try produce { ct_bmm(handle, other.handle, $0) } }
    /// beta · self + alpha · (b1 @ b2), batched.
    public func baddbmm(_ b1: Tensor, _ b2: Tensor, beta: Double = 1, alpha: Double = 1) throws -> Tensor {
        try produce { ct_baddbmm(handle, b1.handle, b2.handle, beta, alpha, $0) }
    }

    /// `torch.linalg.solve(self, b)`: x with self @ x = b.
    public func linalgSolve(_ b: Tensor) throws -> Tensor { try produce { ct_linalg_solve(handle, b.handle, $0) } }
    /// `torch.einsum(equation, tensors)`.
    public static func einsum(_ equation: String, _ tensors: [Tensor]) throws -> Tensor {
        try produce { out in tensors.map(\.handle).withUnsafeBufferPointer { ct_einsum(equation, $0.baseAddress, Int64(tensors.count), out) } }
    }

    public func relu() throws -> Tensor { try unary(CT_RELU) }
    public func silu() throws -> Tensor { try unary(CT_SILU) }
    /// GELU; `approximate: true` is PyTorch's `approximate="tanh"`.
    public func gelu(approximate: Bool = false) throws -> Tensor { try unary(approximate ? CT_GELU_TANH : CT_GELU) }
    /// x · sigmoid(1.702 x), the activation of OpenAI's CLIP.
    public func quickGelu() throws -> Tensor { try self * (self * 1.702).sigmoid() }
    public func softmax(dim: Int) throws -> Tensor { try produce { ct_softmax(handle, Int64(dim), $0) } }
    public func logSoftmax(dim: Int) throws -> Tensor { try produce { ct_log_softmax(handle, Int64(dim), $0) } }
    public func dropout(p: Double, training: Bool) throws -> Tensor {
        try produce { ct_dropout(handle, p, training, $0) }
    }
    /// Inverted dropout drawing its mask from `generator`, so a training run's randomness can be
    /// saved and replayed without touching libtorch's global generator.
    public func dropout(p: Double, generator: Generator) throws -> Tensor {
        guard p > 0 else { return self }
        guard p < 1 else { return try self * 0 }
        let keep = try Tensor.rand(shape, device: device, generator: generator).ge(p).to(dtype)
        return try self * keep / (1 - p)
    }

    /// Bilinear/bicubic/nearest resize of an (N, C, H, W) tensor to `size` (h, w).
    public func interpolate(size: (Int, Int), mode: InterpolationMode, alignCorners: Bool = false,
                            antialias: Bool = false) throws -> Tensor {
        let m: ct_interpolate_mode
        switch mode {
        case .nearest: m = CT_INTERP_NEAREST
        case .nearestExact: m = CT_INTERP_NEAREST_EXACT
        case .bilinear: m = CT_INTERP_BILINEAR
        case .bicubic: m = CT_INTERP_BICUBIC
        }
        let dims: [Int64] = [Int64(size.0), Int64(size.1)]
        return try produce { out in
            dims.withUnsafeBufferPointer { ct_interpolate(handle, m, $0.baseAddress, alignCorners, antialias, out) }
        }
    }

    /// `F.pad`: `pads` lists (left, right) for the last dimension first, then the one before, ...
    public func pad(_ pads: [Int], mode: PadMode = .constant, value: Double = 0) throws -> Tensor {
        let m: ct_pad_mode = mode == .reflect ? CT_PAD_REFLECT : mode == .replicate ? CT_PAD_REPLICATE : CT_PAD_CONSTANT
        return try produce { out in
            int64s(pads).withUnsafeBufferPointer { ct_pad(handle, $0.baseAddress, Int64(pads.count), m, value, out) }
        }
    }
}

public enum F {
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
        try produce { ct_linear(x.handle, weight.handle, bias?.handle, $0) }
    }

    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                              dilation: Int = 1, groups: Int = 1) throws -> Tensor {
        try conv2d(x, weight: weight, bias: bias, stride: (stride, stride), padding: (padding, padding),
                   dilation: (dilation, dilation), groups: groups)
    }

    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
                              dilation: (Int, Int), groups: Int) throws -> Tensor {
        let s: [Int64] = [Int64(stride.0), Int64(stride.1)]
        let p: [Int64] = [Int64(padding.0), Int64(padding.1)]
        let d: [Int64] = [Int64(dilation.0), Int64(dilation.1)]
        return try produce { out in
            ct_conv2d(x.handle, weight.handle, bias?.handle, s, p, d, Int64(groups), out)
        }
    }

    public static func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Double = 1e-5) throws -> Tensor {
        try produce { ct_group_norm(x.handle, Int64(groups), weight?.handle, bias?.handle, eps, $0) }
    }

    public static func layerNorm(_ x: Tensor, normalizedShape: [Int], weight: Tensor?, bias: Tensor?,
                                 eps: Double = 1e-5) throws -> Tensor {
        try produce { out in
            int64s(normalizedShape).withUnsafeBufferPointer {
                ct_layer_norm(x.handle, $0.baseAddress, Int64(normalizedShape.count), weight?.handle, bias?.handle, eps, out)
            }
        }
    }

    /// `F.scaled_dot_product_attention` on (…, L, E) tensors; `mask` is boolean (true = attend) or
    /// additive; `scale` defaults to 1/√E.
    public static func scaledDotProductAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, mask: Tensor? = nil,
                                                 dropout: Double = 0, isCausal: Bool = false,
                                                 scale: Double? = nil) throws -> Tensor {
        try produce { ct_scaled_dot_product_attention(q.handle, k.handle, v.handle, mask?.handle, dropout, isCausal, scale ?? -1, $0) }
    }

    public static func embedding(_ indices: Tensor, weight: Tensor) throws -> Tensor {
        try produce { ct_embedding(weight.handle, indices.handle, $0) }
    }

    public static func mseLoss(_ input: Tensor, _ target: Tensor, reduction: Reduction = .mean) throws -> Tensor {
        try produce { ct_mse_loss(input.handle, target.handle, reduction.rawValue, $0) }
    }

    public static func crossEntropy(_ logits: Tensor, _ target: Tensor, reduction: Reduction = .mean,
                                    ignoreIndex: Int = -100) throws -> Tensor {
        try produce { ct_cross_entropy(logits.handle, target.handle, reduction.rawValue, Int64(ignoreIndex), $0) }
    }
}
