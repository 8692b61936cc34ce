// torch.nn.Linear: y = x Wᵀ + b, weight [out, in]; initialised as PyTorch does.

/// Adds a term to a layer's output (LoRA lives in a target above Torch and plugs in here). Called with
/// the layer's input and its output so far; returns the new output.
public protocol LayerAdapter: AnyObject {
    func adapt(_ input: Tensor, output: Tensor) throws -> Tensor
    /// The adapter's own tensors, moved with its layer by `VarStore.move(to:)`.
    var tensors: [Tensor] { get }
}

extension LayerAdapter {
    public var tensors: [Tensor] { [] }
}

public final class Linear {
    public let weight: Tensor
    public let bias: Tensor?
    public let inFeatures: Int
    public let outFeatures: Int
    /// Applied in order after the projection; with none the layer is exactly `F.linear`.
    public var adapters: [any LayerAdapter] = []

    public init(_ path: VarPath, inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = try path.parameter("weight", shape: [outFeatures, inFeatures],
                                    initializer: .kaimingUniform(a: 5.0.squareRoot(), fanIn: inFeatures))
        let bound = 1 / Double(inFeatures).squareRoot()
        self.bias = bias ? try path.parameter("bias", shape: [outFeatures], initializer: .uniform(-bound, bound)) : nil
        path.store.register(module: self, at: path.prefix)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        var y = try F.linear(x, weight: weight, bias: bias)
        for adapter in adapters { y = try adapter.adapt(x, output: y) }
        return y
    }
}
