// The device lane: Inkwell's GPU paths (generation with every sampler, LoRAs applied and fused, VAE encode
// and the latent cache, LoRA training in fp32/fp16/bf16 with validation and samples, BLIP captions, CLIP
// score) run with the models on a device and again on the CPU, and the results are compared. On the
// virtual GPU (`Device.vgpu`, CPU kernels under CUDA's device rules) the two agree to rounding and a
// forgotten `.to(device)` throws as it would on CUDA: that is how `make test` proves device-correctness
// without a GPU. On a real GPU (`inkwell device-check --device cuda`) the same checks run against CUDA's
// kernels, with tolerances for their different rounding (TF32 convolutions, other reduction orders).
import Foundation
import RunFiles
import StableDiffusion
import Torch
import Training

/// One check's outcome: what was compared, the largest difference seen, and the bound it had to meet.
public struct DeviceCheckResult: Sendable, CustomStringConvertible {
    public let check: DeviceLane.Check
    public let detail: String
    public let passed: Bool
    public let seconds: Double

    public var description: String {
        "\(passed ? "pass" : "FAIL")  \(check.rawValue.padding(toLength: 22, withPad: " ", startingAt: 0)) \(detail)"
            + String(format: "  (%.1f s)", seconds)
    }
}

public final class DeviceLane: Sendable {
    public enum Check: String, CaseIterable, Sendable {
        case generation, lora = "lora-applied-fused", vaeEncode = "vae-encode-cache", training, fp16Training = "training-fp16"
        case bf16Training = "training-bf16", trainingResume = "training-resume", captioning = "blip-captions"
        case clipScore = "clip-score"
        case offload = "offload-vae-tiling"
    }

    public let device: Device
    let work: URL
    /// Bounds for device-vs-CPU differences: exact up to float reordering on the virtual GPU (the same
    /// kernels), looser on a real GPU.
    let tolerance: Tolerance

    struct Tolerance: Sendable {
        /// Images, in 8-bit levels.
        var levels: Double
        /// fp32 tensors (latent moments, LoRA weights after training, scores), absolute.
        var fp32: Double
        /// Half-precision training: losses after a few steps, absolute.
        var halfPrecisionLoss: Double
        /// Half-precision training: adapter weights after a few steps. Adam's first updates are about ±lr
        /// per weight whatever the gradient's size, so a half-precision rounding difference that flips the
        /// sign of a near-zero gradient moves that weight by up to 2·lr (4e-3 in the lane's runs).
        var halfPrecisionWeights: Double
    }

    /// `workDirectory` receives the tiny random models (made once) and the runs.
    public init(device: Device, workDirectory: URL) {
        self.device = device
        work = workDirectory
        tolerance = device == .vgpu ? Tolerance(levels: 1, fp32: 1e-4, halfPrecisionLoss: 1e-3, halfPrecisionWeights: 5e-3)
                                    : Tolerance(levels: 8, fp32: 2e-2, halfPrecisionLoss: 2e-2, halfPrecisionWeights: 2e-2)
    }

    /// Runs `checks` in order; a check that throws is a failed row with the error, and the rest go on.
    public func run(_ checks: [Check] = Check.allCases, report: (DeviceCheckResult) -> Void = { _ in }) -> [DeviceCheckResult] {
        checks.map { check in
            let start = Date()
            let (passed, detail): (Bool, String)
            do {
                (passed, detail) = try run(check)
            } catch {
                (passed, detail) = (false, "error: \(error)")
            }
            let result = DeviceCheckResult(check: check, detail: detail, passed: passed,
                                           seconds: Date().timeIntervalSince(start))
            report(result)
            return result
        }
    }

    func run(_ check: Check) throws -> (Bool, String) {
        switch check {
        case .generation: return try generation()
        case .lora: return try loraAppliedAndFused()
        case .vaeEncode: return try vaeEncodeAndCache()
        case .training: return try training(precision: .no)
        case .fp16Training: return try training(precision: .fp16)
        case .bf16Training: return try training(precision: .bf16)
        case .trainingResume: return try trainingResume()
        case .captioning: return try captioning()
        case .clipScore: return try clipScore()
        case .offload: return try offloadAndTiling()
        }
    }

    // MARK: Shared fixtures

    /// The tiny random SD1.x folder (DemoModels), made once per work directory.
    var modelFolder: URL {
        get throws {
            let folder = work.appendingPathComponent("model")
            if !FileManager.default.fileExists(atPath: folder.appendingPathComponent("model_index.json").path) {
                try DemoModels.writeStableDiffusion(to: folder, seed: 7, words: Self.words)
            }
            return folder
        }
    }

    static let words = ["a", "ring", "star", "line", "art", "bold", "tattoo", "of", "the", "two"]

    func pipeline(on device: Device, dtype: DType = .float32, vaeDType: DType? = nil) throws -> StableDiffusionPipeline {
        try StableDiffusionPipeline.load(.diffusersFolder(try modelFolder), device: device, dtype: dtype, vaeDType: vaeDType)
    }

    /// "max difference X ≤ bound" and whether it holds (NaN never does).
    static func within(_ difference: Double, _ bound: Double, unit: String = "") -> (Bool, String) {
        (difference <= bound, String(format: "max |device - cpu| %.3g%@ (bound %.3g%@)", difference, unit, bound, unit))
    }
}

/// Largest absolute difference of two tensors on any devices, in float64.
func maxDifference(_ a: Tensor, _ b: Tensor) throws -> Double {
    guard a.shape == b.shape else { throw TorchError.invalidArgument("shapes differ: \(a.shape) vs \(b.shape)") }
    return try (a.to(.cpu, dtype: .float64) - b.to(.cpu, dtype: .float64)).abs().max().item()
}
