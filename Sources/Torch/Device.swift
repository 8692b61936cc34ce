// Where tensors live. `Device.best` picks CUDA when present; INKWELL_DEVICE overrides.
import CTorch
import Foundation

public enum Device: Equatable, Hashable, Sendable, CustomStringConvertible {
    case cpu
    case cuda(Int)
    /// The virtual GPU: host memory and CPU kernels under CUDA's rules (a tensor on it never mixes with a
    /// CPU tensor but a 0-dim one, random ops need its own generators, autograd runs on a device thread).
    /// It exists so that tests prove device-correctness without a GPU and compare every result with the
    /// CPU's; users never need it. See Sources/CTorch/vgpu.cpp.
    case vgpu

    public static var cudaAvailable: Bool { ct_cuda_is_available() }
    public static var cudaDeviceCount: Int { Int(ct_cuda_device_count()) }

    /// CUDA device 0 when one is usable, else the CPU. `INKWELL_DEVICE=cpu|cuda|cuda:N` overrides.
    public static var best: Device {
        if let forced = ProcessInfo.processInfo.environment["INKWELL_DEVICE"], let device = Device(name: forced) {
            return device
        }
        return cudaAvailable ? .cuda(0) : .cpu
    }

    /// Parses "cpu", "cuda", "cuda:1" (and "vgpu", the virtual GPU of the tests).
    public init?(name: String) {
        let lower = name.lowercased()
        if lower == "cpu" { self = .cpu; return }
        if lower == "vgpu" || lower == "vgpu:0" { self = .vgpu; return }
        if lower == "cuda" || lower == "gpu" { self = .cuda(0); return }
        if lower.hasPrefix("cuda:"), let n = Int(lower.dropFirst(5)), n >= 0 { self = .cuda(n); return }
        return nil
    }

    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .cuda(let n): return "cuda:\(n)"
        case .vgpu: return "vgpu:0"
        }
    }

    /// The shim's device code (internal.h): 0 CPU, 1 CUDA, 2 the virtual GPU.
    var type: Int32 {
        switch self {
        case .cpu: return 0
        case .cuda: return 1
        case .vgpu: return 2
        }
    }
    var index: Int32 {
        if case .cuda(let n) = self { return Int32(n) }
        return 0
    }

    /// The most bytes tensors have held on this GPU since the last `resetPeakMemory()`
    /// (torch.cuda.max_memory_allocated); nil on the CPU.
    public func peakAllocatedBytes() throws -> Int? {
        guard case .cuda(let n) = self else { return nil }
        var bytes: UInt64 = 0
        try check(ct_cuda_peak_allocated_bytes(Int32(n), &bytes))
        return Int(bytes)
    }

    /// Starts a new peak for `peakAllocatedBytes()` (torch.cuda.reset_peak_memory_stats); a no-op on CPU.
    public func resetPeakMemory() throws {
        if case .cuda(let n) = self { try check(ct_cuda_reset_peak(Int32(n))) }
    }

    /// Waits for queued GPU work (for timing); a no-op on CPU.
    public func synchronize() throws {
        if case .cuda(let n) = self { try check(ct_cuda_synchronize(Int32(n))) }
    }
}

/// libtorch's intra-op thread count (`torch.set_num_threads`).
public enum Threads {
    public static var count: Int {
        get { Int(ct_get_num_threads()) }
        set { ct_set_num_threads(Int32(newValue)) }
    }
}
