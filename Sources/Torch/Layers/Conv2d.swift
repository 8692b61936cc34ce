// torch.nn.Conv2d with square kernels, weight [out, in / groups, k, k]; initialised as PyTorch does.
public final class Conv2d {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int
    public let padding: Int
    public let dilation: Int
    public let groups: Int
    /// Applied in order after the convolution (see `LayerAdapter`); with none the layer is exactly `F.conv2d`.
    public var adapters: [any LayerAdapter] = []

    public init(_ path: VarPath, inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1,
                padding: Int = 0, dilation: Int = 1, groups: Int = 1, bias: Bool = true) throws {
        guard groups > 0, inChannels % groups == 0, outChannels % groups == 0 else {
            throw TorchError.invalidArgument("\(path.prefix): channels \(inChannels)→\(outChannels) not divisible by groups \(groups)")
        }
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        let fanIn = inChannels / groups * kernelSize * kernelSize
        weight = try path.parameter("weight", shape: [outChannels, inChannels / groups, kernelSize, kernelSize],
                                    initializer: .kaimingUniform(a: 5.0.squareRoot(), fanIn: fanIn))
        let bound = 1 / Double(fanIn).squareRoot()
        self.bias = bias ? try path.parameter("bias", shape: [outChannels], initializer: .uniform(-bound, bound)) : nil
        path.store.register(module: self, at: path.prefix)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        var y = try F.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
        for adapter in adapters { y = try adapter.adapt(x, output: y) }
        return y
    }
}
