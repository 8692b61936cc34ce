// diffusers schedulers (betas_for_alpha_bar, rescale_zero_terminal_snr, the beta schedules of every
// scheduler's __init__, add_noise, get_velocity) and training_utils.py compute_snr; plus the numpy
// routines set_timesteps uses (linspace, arange, interp, round), reproduced to the bit.
import Foundation
import Torch

public enum BetaSchedule: String, Sendable {
    case linear
    case scaledLinear = "scaled_linear"
    case squaredcosCapV2 = "squaredcos_cap_v2"
}

/// β_t, α_t and ᾱ_t (float32 on the CPU, as diffusers keeps them) and the training-side maths on them.
public struct NoiseSchedule {
    public let numTrainTimesteps: Int
    public let betas: Tensor
    public let alphasCumprod: Tensor
    /// `alphasCumprod` as Swift values, for the per-step scalar maths.
    public let alphasCumprodValues: [Float]

    /// The betas every scheduler builds in `__init__`. `rescaleOption`: the class has
    /// `rescale_betas_zero_snr` (PNDM has not, and ignores the key); `terminalAlphaCumprod`: the Euler/DPM
    /// rule that sets ᾱ_T to 2^-24 after that rescale (so σ stays finite).
    init(_ config: SchedulerConfig, scheduler: String, rescaleOption: Bool = true,
         terminalAlphaCumprod: Bool = false) throws {
        let reader = ConfigReader(config: config, scheduler: scheduler)
        let steps = config.numTrainTimesteps ?? 1000
        guard steps >= 2 else { throw SchedulerError.invalidConfig("num_train_timesteps \(steps) must be at least 2") }
        numTrainTimesteps = steps
        let start = config.betaStart ?? 0.0001, end = config.betaEnd ?? 0.02
        var betas: Tensor
        if let trained = config.trainedBetas {
            guard trained.count == steps else {
                throw SchedulerError.invalidConfig("trained_betas has \(trained.count) values, num_train_timesteps is \(steps)")
            }
            betas = try Tensor(trained.map { Float($0) })
        } else {
            let schedule = try reader.choice("beta_schedule", config.betaSchedule, default: BetaSchedule.linear,
                                             allowed: [.linear, .scaledLinear, .squaredcosCapV2])
            switch schedule {
            case .linear:
                betas = try Tensor.linspace(start, end, steps: steps, dtype: .float32)
            case .scaledLinear:
                // Python's `beta_start**0.5` is C pow, not sqrt.
                betas = try Tensor.linspace(Foundation.pow(start, 0.5), Foundation.pow(end, 0.5), steps: steps,
                                            dtype: .float32).pow(2)
            case .squaredcosCapV2:
                betas = try Tensor(NoiseSchedule.cosineBetas(steps).map { Float($0) })
            }
        }
        let rescale = rescaleOption && (config.rescaleBetasZeroSnr ?? false)
        if rescale { betas = try NoiseSchedule.rescaleZeroTerminalSNR(betas) }
        self.betas = betas
        var cumprod = try (1.0 - betas).cumprod(dim: 0)
        if terminalAlphaCumprod && rescale {
            cumprod = try Tensor.cat([cumprod.narrow(dim: 0, start: 0, length: steps - 1),
                                      Tensor([Float(1.0 / 16_777_216.0)])])
        }
        alphasCumprod = cumprod
        alphasCumprodValues = try cumprod.toArray(Float.self)
    }

    /// `betas_for_alpha_bar` with the cosine ᾱ of Nichol & Dhariwal, in Python float64.
    static func cosineBetas(_ steps: Int, maxBeta: Double = 0.999) -> [Double] {
        func alphaBar(_ t: Double) -> Double {
            let c = Foundation.cos((t + 0.008) / 1.008 * Double.pi / 2)
            return Foundation.pow(c, 2)
        }
        return (0..<steps).map { i in
            let t1 = Double(i) / Double(steps), t2 = Double(i + 1) / Double(steps)
            return Swift.min(1 - alphaBar(t2) / alphaBar(t1), maxBeta)
        }
    }

    /// `rescale_zero_terminal_snr` (Lin et al. 2023, algorithm 1) with the same float32 tensor ops.
    static func rescaleZeroTerminalSNR(_ betas: Tensor) throws -> Tensor {
        let n = betas.size(0)
        let sqrtBar = try (1.0 - betas).cumprod(dim: 0).sqrt()
        let first = try sqrtBar.select(dim: 0, index: 0), last = try sqrtBar.select(dim: 0, index: n - 1)
        let shifted = try (sqrtBar - last) * (first / (first - last))
        let bar = try shifted.pow(2)
        let alphas = try Tensor.cat([bar.narrow(dim: 0, start: 0, length: 1),
                                     bar.narrow(dim: 0, start: 1, length: n - 1) / bar.narrow(dim: 0, start: 0, length: n - 1)])
        return try 1 - alphas
    }

    /// σ_t = √((1 − ᾱ_t) / ᾱ_t) over the training timesteps (float32 tensor maths).
    func trainingSigmas() throws -> [Float] {
        try ((1.0 - alphasCumprod) / alphasCumprod).pow(0.5).toArray(Float.self)
    }

    // MARK: Training (add_noise, get_velocity, compute_snr)

    /// √ᾱ_t and √(1 − ᾱ_t) at `timesteps`, in `like`'s dtype and device, shaped to broadcast over it.
    private func coefficients(_ timesteps: Tensor, like x: Tensor) throws -> (Tensor, Tensor) {
        let acp = try alphasCumprod.to(x.device, dtype: x.dtype)
        let t = try timesteps.to(x.device, dtype: .int64).flatten()
        let picked = try acp.indexSelect(dim: 0, index: t)
        var a = try picked.pow(0.5), s = try (1 - picked).pow(0.5)
        while a.rank < x.rank { a = try a.unsqueeze(-1) }
        while s.rank < x.rank { s = try s.unsqueeze(-1) }
        return (a, s)
    }

    /// The forward process q(x_t | x_0): √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε (diffusers `add_noise`).
    public func addNoise(_ original: Tensor, noise: Tensor, timesteps: Tensor) throws -> Tensor {
        let (a, s) = try coefficients(timesteps, like: original)
        return try a * original + s * noise
    }

    /// The v-prediction target √ᾱ_t·ε − √(1 − ᾱ_t)·x_0 (diffusers `get_velocity`).
    public func velocity(_ sample: Tensor, noise: Tensor, timesteps: Tensor) throws -> Tensor {
        let (a, s) = try coefficients(timesteps, like: sample)
        return try a * noise - s * sample
    }

    /// SNR(t) = ᾱ_t / (1 − ᾱ_t) for min-SNR-γ loss weighting, computed as diffusers' `compute_snr`
    /// ((√ᾱ / √(1 − ᾱ))², float32), in the shape and on the device of `timesteps`.
    public func snr(_ timesteps: Tensor) throws -> Tensor {
        let device = timesteps.device
        let t = try timesteps.to(.int64).flatten()
        let alpha = try alphasCumprod.pow(0.5).to(device).indexSelect(dim: 0, index: t).to(.float32)
        let sigma = try (1.0 - alphasCumprod).pow(0.5).to(device).indexSelect(dim: 0, index: t).to(.float32)
        return try (alpha / sigma).pow(2).reshape(timesteps.shape)
    }
}

// MARK: - numpy, reproduced

enum NumPy {
    /// `np.linspace(start, stop, num)` in float64: `arange(num) * step + start`, the last value `stop`.
    static func linspace(_ start: Double, _ stop: Double, _ num: Int) -> [Double] {
        guard num > 1 else { return num == 1 ? [start] : [] }
        let step = (stop - start) / Double(num - 1)
        var y = (0..<num).map { Double($0) * step + start }
        y[num - 1] = stop
        return y
    }

    /// `np.arange(start, stop, step)` with float arguments: numpy fills `start + i·δ` where
    /// δ = (start + step) − start, not `step` itself; the length is ⌈(stop − start) / step⌉.
    static func arange(_ start: Double, _ stop: Double, _ step: Double) -> [Double] {
        let length = Int(((stop - start) / step).rounded(.up))
        guard length > 0 else { return [] }
        guard length > 1 else { return [start] }
        let delta = (start + step) - start
        return (0..<length).map { $0 == 0 ? start : start + Double($0) * delta }
    }

    /// `np.round`: half to even.
    static func round(_ x: Double) -> Double { x.rounded(.toNearestOrEven) }

    /// `np.interp(x, arange(fp.count), fp)` in float64 (numpy's arr_interp, exact hits returned as is).
    static func interpOnIndexGrid(_ xs: [Double], _ fp: [Double]) -> [Double] {
        let last = fp.count - 1
        return xs.map { x in
            if x.isNaN { return x }
            if x < 0 { return fp[0] }
            if x >= Double(last) { return fp[last] }
            let j = Int(x.rounded(.down))
            if Double(j) == x { return fp[j] }
            let slope = (fp[j + 1] - fp[j]) / (Double(j + 1) - Double(j))
            return slope * (x - Double(j)) + fp[j]
        }
    }
}

/// diffusers' `_convert_to_karras` (Karras et al. 2022, ρ = 7) in numpy float64.
func karrasSigmas(sigmaMin: Double, sigmaMax: Double, count: Int) -> [Double] {
    let rho = 7.0
    let minInv = Foundation.pow(sigmaMin, 1 / rho), maxInv = Foundation.pow(sigmaMax, 1 / rho)
    return NumPy.linspace(0, 1, count).map { Foundation.pow(maxInv + $0 * (minInv - maxInv), rho) }
}

/// diffusers' `_sigma_to_t`: the fractional training timestep of σ by linear interpolation in log σ.
/// `logSigmas` are `np.log` of the float32 training sigmas (a float32 array).
func sigmaToT(_ sigma: Double, logSigmas: [Float]) -> Double {
    let logSigma = Foundation.log(Swift.max(sigma, 1e-10))
    // cumsum(dists >= 0).argmax() is the last index whose log σ is ≤ log_sigma (0 if none), capped.
    var low = 0
    for (i, l) in logSigmas.enumerated() where logSigma - Double(l) >= 0 { low = i }
    low = Swift.min(low, logSigmas.count - 2)
    let lo = logSigmas[low], hi = logSigmas[low + 1]
    var w = (Double(lo) - logSigma) / Double(lo - hi)
    w = Swift.min(Swift.max(w, 0), 1)
    return (1 - w) * Double(low) + w * Double(low + 1)
}

/// `np.log` of a float32 array, taken through libtorch's float32 log. numpy's SIMD float32 log is not
/// the same function in the last bit for every input; for the SD schedules the Karras timesteps derived
/// from it still come out identical (the scheduler tests check that), a mismatch would cost ~1 ulp.
func float32Log(_ values: [Float]) throws -> [Float] {
    try Tensor(values).log().toArray(Float.self)
}

// Scalar float32 maths where diffusers applies torch to 0-d float32 CPU tensors (ᾱ_t, σ_t): running the
// same libtorch kernels gives the same bits. That matters beyond exp/log: libtorch's float32 sqrt is not
// the correctly rounded IEEE square root on every CPU (its AVX-512 path differs in the last bit for ~15%
// of inputs), so `Float.squareRoot()` would drift from diffusers. + − × ÷ are IEEE in both and stay Swift.
func sqrt32(_ x: Float) throws -> Float { try Float(Tensor(scalar: x).sqrt().item()) }
func log32(_ x: Float) throws -> Float { try Float(Tensor(scalar: x).log().item()) }
func exp32(_ x: Float) throws -> Float { try Float(Tensor(scalar: x).exp().item()) }
func expMinusOne32(_ x: Float) throws -> Float { try Float(Tensor(scalar: x).expm1().item()) }

/// `set_timesteps` of the k-diffusion discrete schedulers (Heun, LMS, KDPM2, KDPM2 ancestral) before each
/// interleaves or extends it: float32 timesteps by spacing with σ interpolated from the training sigmas
/// (float64), or Karras σ between the interpolated ends (or the config's bounds) with their fractional
/// timesteps `_sigma_to_t` (float64, unrounded: each class casts or rounds them its own way).
func discreteSigmaSchedule(_ count: Int, trainingSigmas: [Float], logSigmas: [Float], spacing: TimestepSpacing,
                           offset: Int, karras: Bool, sigmaMin: Double? = nil, sigmaMax: Double? = nil)
    -> (timesteps: [Double], sigmas: [Double]) {
    let ts = EulerDiscreteScheduler.floatTimesteps(count, trainSteps: trainingSigmas.count, spacing: spacing,
                                                   offset: offset).map(Double.init)
    let sigmas = NumPy.interpOnIndexGrid(ts, trainingSigmas.map(Double.init))
    guard karras, let first = sigmas.first, let last = sigmas.last else { return (ts, sigmas) }
    let k = karrasSigmas(sigmaMin: sigmaMin ?? last, sigmaMax: sigmaMax ?? first, count: count)
    return (k.map { sigmaToT($0, logSigmas: logSigmas) }, k)
}

/// `x.repeat_interleave(2)` of a slice: the second-order schedulers visit each inner σ twice, once per
/// model evaluation of a step.
func repeatedTwice<T>(_ values: ArraySlice<T>) -> [T] { values.flatMap { [$0, $0] } }

/// `_sigma_to_t` as the KDPM2 schedulers call it on their interpolated σ: a float32 tensor in, so every step
/// is float32 (torch maths, numpy's log) where the other callers work in float64.
func sigmaToT32(_ sigma: Float, logSigmas: [Float]) throws -> Float {
    let logSigma = try log32(sigma.isNaN ? sigma : Swift.max(sigma, 1e-10))
    var low = 0
    for (i, l) in logSigmas.enumerated() where logSigma - l >= 0 { low = i }
    low = Swift.min(low, logSigmas.count - 2)
    let lo = logSigmas[low], hi = logSigmas[low + 1]
    var w = (lo - logSigma) / (lo - hi)
    if !w.isNaN { w = Swift.min(Swift.max(w, 0), 1) }
    return (1 - w) * Float(low) + w * Float(low + 1)
}
