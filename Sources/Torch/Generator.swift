// Random numbers through libtorch's generators: for the same seed, the CPU generator yields the
// same numbers as `torch.Generator().manual_seed(seed)` in PyTorch.
import CTorch

public final class Generator {
    let handle: ct_generator
    public let device: Device

    public init(seed: UInt64, device: Device = .cpu) throws {
        var out: ct_generator?
        try check(ct_generator_new(device.type, device.index, seed, &out))
        guard let out else { throw TorchError.other("libtorch returned no generator") }
        handle = out
        self.device = device
    }
    init(handle: ct_generator, device: Device) {
        self.handle = handle
        self.device = device
    }
    deinit { ct_generator_free(handle) }

    /// The device's default generator: the one `manualSeed` seeds and ops without an explicit
    /// generator (dropout) draw from. Its state is what a resumable run must save and restore.
    public static func defaultGenerator(_ device: Device = .cpu) throws -> Generator {
        var out: ct_generator?
        try check(ct_default_generator(device.type, device.index, &out))
        guard let out else { throw TorchError.other("libtorch returned no generator") }
        return Generator(handle: out, device: device)
    }

    public func manualSeed(_ seed: UInt64) throws { try check(ct_generator_set_seed(handle, seed)) }

    /// The full generator state (`torch.Generator.get_state()`), a uint8 tensor.
    public func state() throws -> Tensor { try produce { ct_generator_get_state(handle, $0) } }
    public func setState(_ state: Tensor) throws { try check(ct_generator_set_state(handle, state.handle)) }
}

/// Seeds libtorch's default generators (`torch.manual_seed`).
public func manualSeed(_ seed: UInt64) throws { try check(ct_manual_seed(seed)) }

extension Tensor {
    public static func randn(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu,
                             generator: Generator? = nil) throws -> Tensor {
        try produce { out in
            int64s(shape).withUnsafeBufferPointer {
                ct_randn($0.baseAddress, Int64(shape.count), dtype.rawValue, device.type, device.index, generator?.handle, out)
            }
        }
    }
    public static func rand(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu,
                            generator: Generator? = nil) throws -> Tensor {
        try produce { out in
            int64s(shape).withUnsafeBufferPointer {
                ct_rand($0.baseAddress, Int64(shape.count), dtype.rawValue, device.type, device.index, generator?.handle, out)
            }
        }
    }
    /// Integers uniform in [low, high).
    public static func randint(_ low: Int, _ high: Int, _ shape: [Int], dtype: DType = .int64, device: Device = .cpu,
                               generator: Generator? = nil) throws -> Tensor {
        try produce { out in
            int64s(shape).withUnsafeBufferPointer {
                ct_randint(Int64(low), Int64(high), $0.baseAddress, Int64(shape.count), dtype.rawValue, device.type,
                           device.index, generator?.handle, out)
            }
        }
    }
    public static func randperm(_ n: Int, device: Device = .cpu, generator: Generator? = nil) throws -> Tensor {
        try produce { ct_randperm(Int64(n), DType.int64.rawValue, device.type, device.index, generator?.handle, $0) }
    }
    /// Samples indices from each row of (unnormalised) probabilities.
    public func multinomial(_ samples: Int, replacement: Bool = false, generator: Generator? = nil) throws -> Tensor {
        try produce { ct_multinomial(handle, Int64(samples), replacement, generator?.handle, $0) }
    }
    /// In place: fills with U(low, high) (parameter initialisation).
    public func uniform_(_ low: Double, _ high: Double, generator: Generator? = nil) throws {
        try check(ct_uniform_(handle, low, high, generator?.handle))
    }
    /// In place: fills with N(mean, std²).
    public func normal_(mean: Double = 0, std: Double = 1, generator: Generator? = nil) throws {
        try check(ct_normal_(handle, mean, std, generator?.handle))
    }
}

// MARK: - Random data for another device
// The one place where random data crosses devices on purpose: a seeded draw happens where its generator
// lives (the CPU, for the seeds users give) and the result moves to the device that computes with it, as
// diffusers' `randn_tensor` does. Seeded images and training runs then do not depend on the device.

/// diffusers' `randn_tensor`: standard normal noise of `shape` on `device`, drawn by `generator` on its own device.
public func randnTensor(_ shape: [Int], generator: Generator?, device: Device, dtype: DType = .float32) throws -> Tensor {
    guard let generator, generator.device != device else {
        return try Tensor.randn(shape, dtype: dtype, device: device, generator: generator)
    }
    return try Tensor.randn(shape, dtype: dtype, device: generator.device, generator: generator).to(device)
}

/// Integers uniform in [low, high) on `device`, drawn by `generator` on its own device.
public func randintTensor(_ low: Int, _ high: Int, _ shape: [Int], generator: Generator, device: Device) throws -> Tensor {
    try Tensor.randint(low, high, shape, device: generator.device, generator: generator).to(device)
}
