// torch.nn.Linear: y = x Wᵀ + b, weight [out, in]; initialised as PyTorch does.
public final class Linear {
    public let weight: Tensor
    public let bias: Tensor?
    public let inFeatures: Int
    public let outFeatures: Int

    public init(_ path: VarPath, inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = try path.parameter("weight", shape: [outFeatures, inFeatures],
                                    initializer: .kaimingUniform(a: 5.0.squareRoot(), fanIn: inFeatures))
        let bound = 1 / Double(inFeatures).squareRoot()
        self.bias = bias ? try path.parameter("bias", shape: [outFeatures], initializer: .uniform(-bound, bound)) : nil
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try F.linear(x, weight: weight, bias: bias)
    }
}
