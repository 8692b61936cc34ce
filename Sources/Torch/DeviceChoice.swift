// Checking a user's device and dtype choice once, before any model loads, with errors that name the flag or
// config key that made it and say what to do (a CUDA error from deep inside a model load says neither).
import Foundation

/// A device or dtype choice that cannot work; `description` names the setting and the fix.
public struct DeviceChoiceError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public enum DeviceChoice {
    /// The device a setting names, checked against the machine. `name` nil or "auto" means the best device,
    /// which `INKWELL_DEVICE` in `environment` overrides (and is then checked, named as that variable).
    /// `setting` is how the user wrote the choice (`--device`, `model.device`). `cudaCount`: GPUs present.
    public static func resolve(_ name: String?, setting: String,
                               environment: [String: String] = ProcessInfo.processInfo.environment,
                               cudaCount: Int = Device.cudaDeviceCount) throws -> Device {
        let (text, source): (String?, String) = {
            if let name, name.lowercased() != "auto" { return (name, setting) }
            if let forced = environment["INKWELL_DEVICE"] { return (forced, "INKWELL_DEVICE") }
            return (nil, setting)
        }()
        guard let text else { return cudaCount > 0 ? .cuda(0) : .cpu }
        guard let device = Device(name: text.trimmingCharacters(in: .whitespaces)) else {
            throw DeviceChoiceError("\(source) must be auto, cpu, cuda or cuda:N, got '\(text)'")
        }
        if case .cuda(let index) = device {
            if cudaCount == 0 {
                throw DeviceChoiceError("""
                    \(source) is '\(text)', but no CUDA GPU is usable here (no NVIDIA driver or device found, or this \
                    libtorch has no CUDA support): set \(source) to cpu, or run on a machine with an NVIDIA GPU
                    """)
            }
            if index >= cudaCount {
                let valid = cudaCount == 1 ? "cuda:0 (or cuda)" : "cuda:0 … cuda:\(cudaCount - 1)"
                throw DeviceChoiceError("\(source) is '\(text)', but this machine has \(cudaCount) CUDA GPU\(cudaCount == 1 ? "" : "s"): use \(valid)")
            }
        }
        return device
    }

    /// Checks a weights dtype for `device`; returns warnings to print, or throws for a choice that cannot work
    /// well. fp16 on the CPU is refused: libtorch's CPU half kernels are slow (no fast path on most CPUs) and
    /// some ops lack them, and half's range exists to save GPU memory, which the CPU does not need. bf16 on the
    /// CPU runs, but slowly on CPUs without native bf16 (AVX512-BF16 / AMX), so it only warns.
    public static func check(dtype: DType, on device: Device, setting: String) throws -> [String] {
        guard device == .cpu else { return [] }
        switch dtype {
        case .float16:
            throw DeviceChoiceError("""
                \(setting) is fp16 on the CPU, which Inkwell refuses: CPU half-precision kernels are slow and \
                incomplete, and fp16 only pays off on a GPU. Use fp32 (the CPU default) or bf16, or run on a GPU
                """)
        case .bfloat16:
            return ["\(setting) is bf16 on the CPU: this works, but is slow on most CPUs (only those with AVX512-BF16 or AMX compute bf16 natively); fp32 is usually faster there"]
        default:
            return []
        }
    }
}
