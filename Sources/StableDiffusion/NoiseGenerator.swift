// Where a generation's random numbers come from, as diffusers' `generator=` argument takes them: one
// generator for the whole batch, or a list with one per image. A list is how A1111 seeds a batch (image i
// from seed + i), and what lets one image of a batch be made again alone: its rows are drawn exactly as a
// batch of one with that seed draws them (diffusers' `randn_tensor` with a list of generators).
import Torch

public enum NoiseGenerator {
    case shared(Generator)
    case perImage([Generator])

    /// One generator seeded `seed`, or `count` seeded `seed`, `seed + 1`, …
    public init(seed: UInt64, perImage count: Int? = nil) throws {
        if let count {
            self = .perImage(try (0..<UInt64(count)).map { try Generator(seed: seed &+ $0) })
        } else {
            self = .shared(try Generator(seed: seed))
        }
    }
}

/// diffusers' `randn_tensor`: from one generator, or row by row from a list (one row per generator).
func randnTensor(_ shape: [Int], generator: NoiseGenerator?, device: Device, dtype: DType = .float32) throws -> Tensor {
    switch generator {
    case nil: return try randnTensor(shape, generator: nil as Generator?, device: device, dtype: dtype)
    case .shared(let g): return try randnTensor(shape, generator: g, device: device, dtype: dtype)
    case .perImage(let gs):
        guard gs.count == shape.first else {
            throw TorchError.invalidArgument("\(gs.count) generators for a batch of \(shape.first ?? 0)")
        }
        return try Tensor.cat(try gs.map { try randnTensor([1] + shape.dropFirst(), generator: $0, device: device, dtype: dtype) })
    }
}
