// torch.nn.Embedding: a lookup table [count, dim], initialised N(0, 1) as PyTorch does.
public final class Embedding {
    public let weight: Tensor

    public init(_ path: VarPath, count: Int, dim: Int) throws {
        weight = try path.parameter("weight", shape: [count, dim], initializer: .normal(mean: 0, std: 1))
    }

    public func callAsFunction(_ indices: Tensor) throws -> Tensor {
        try F.embedding(indices, weight: weight)
    }
}
