// torch.nn.GroupNorm and torch.nn.LayerNorm (affine, weight 1 and bias 0 at creation).
public final class GroupNorm {
    public let weight: Tensor
    public let bias: Tensor
    public let groups: Int
    public let eps: Double

    public init(_ path: VarPath, groups: Int, channels: Int, eps: Double = 1e-5) throws {
        guard groups > 0, channels % groups == 0 else {
            throw TorchError.invalidArgument("\(path.prefix): \(channels) channels not divisible into \(groups) groups")
        }
        self.groups = groups
        self.eps = eps
        weight = try path.parameter("weight", shape: [channels], initializer: .ones)
        bias = try path.parameter("bias", shape: [channels], initializer: .zeros)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try F.groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps)
    }
}

public final class LayerNorm {
    public let weight: Tensor
    public let bias: Tensor
    public let normalizedShape: [Int]
    public let eps: Double

    public init(_ path: VarPath, _ normalizedShape: [Int], eps: Double = 1e-5) throws {
        self.normalizedShape = normalizedShape
        self.eps = eps
        weight = try path.parameter("weight", shape: normalizedShape, initializer: .ones)
        bias = try path.parameter("bias", shape: normalizedShape, initializer: .zeros)
    }

    public convenience init(_ path: VarPath, _ features: Int, eps: Double = 1e-5) throws {
        try self.init(path, [features], eps: eps)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try F.layerNorm(x, normalizedShape: normalizedShape, weight: weight, bias: bias, eps: eps)
    }
}
