// diffusers schedulers/scheduling_k_dpm_2_ancestral_discrete.py: KDPM2AncestralDiscreteScheduler
// (k-diffusion's sample_dpm_2_ancestral, A1111's "DPM2 a"): the DPM2 midpoint step aimed at σ_down instead
// of the next σ, then fresh noise of size σ_up (as Euler ancestral splits its move).
import Foundation
import Torch

public final class KDPM2AncestralDiscreteScheduler: IndexedScheduler {
    public let config: SchedulerConfig
    public let schedule: NoiseSchedule
    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    public let useKarrasSigmas: Bool
    public let stepsOffset: Int
    /// [t0, t½, t1, t1½, …, tn−1]: each σ's timestep, then that of the midpoint towards its σ_down.
    public private(set) var timesteps: [Double]
    /// diffusers' `sigmas`, `sigmas_interpol`, `sigmas_up`, `sigmas_down`, each laid out [x0, x1, x1, …, xn, xn, xn].
    public private(set) var sigmaValues: [Float]
    public private(set) var midpointSigmas: [Float]
    public private(set) var upSigmas: [Float]
    public private(set) var downSigmas: [Float]
    public var sigmas: [Float]? { sigmaValues }
    /// float64 with Karras σ (their timesteps are rounded numpy float64), float32 otherwise, as diffusers.
    public var timestepDType: DType { useKarrasSigmas ? .float64 : .float32 }
    public var timestepsPerStep: Int { 2 }
    public var numTrainTimesteps: Int { schedule.numTrainTimesteps }
    public private(set) var initNoiseSigma: Double = 1
    public private(set) var stepIndex: Int?
    public var beginIndex: Int?

    private var pendingSample: Tensor?
    public var stateInFirstOrder: Bool { pendingSample == nil }

    private let trainingSigmas: [Float]
    private let logSigmas: [Float]
    private static let name = "KDPM2AncestralDiscreteScheduler"

    private struct Layout {
        var timesteps: [Double], sigmas: [Float], midpoints: [Float], up: [Float], down: [Float]
    }

    public init(config: SchedulerConfig = SchedulerConfig()) throws {
        let r = ConfigReader(config: config, scheduler: Self.name)
        self.config = config
        // No rescale_betas_zero_snr in this class: the key is ignored, as from_config ignores it.
        schedule = try NoiseSchedule(config, scheduler: Self.name, rescaleOption: false)
        // diffusers raises NotImplementedError for "sample".
        predictionType = try r.prediction(allowed: [.epsilon, .vPrediction])
        timestepSpacing = try r.spacing(default: .linspace)
        try r.require("use_exponential_sigmas", config.useExponentialSigmas, equals: false)
        try r.require("use_beta_sigmas", config.useBetaSigmas, equals: false)
        useKarrasSigmas = config.useKarrasSigmas ?? false
        stepsOffset = config.stepsOffset ?? 0
        trainingSigmas = try schedule.trainingSigmas()
        logSigmas = try float32Log(trainingSigmas)
        let layout = try Self.layout(schedule.numTrainTimesteps, trainingSigmas: trainingSigmas, logSigmas: logSigmas,
                                     spacing: timestepSpacing, offset: stepsOffset, karras: useKarrasSigmas, config: config)
        (timesteps, sigmaValues, midpointSigmas) = (layout.timesteps, layout.sigmas, layout.midpoints)
        (upSigmas, downSigmas) = (layout.up, layout.down)
        initNoiseSigma = try EulerDiscreteScheduler.initNoiseSigma(sigmaValues, timestepSpacing)
    }

    private static func layout(_ count: Int, trainingSigmas: [Float], logSigmas: [Float], spacing: TimestepSpacing,
                               offset: Int, karras: Bool, config: SchedulerConfig) throws -> Layout {
        let (ts, sigmas) = discreteSigmaSchedule(count, trainingSigmas: trainingSigmas, logSigmas: logSigmas,
                                                 spacing: spacing, offset: offset, karras: karras,
                                                 sigmaMin: config.sigmaMin, sigmaMax: config.sigmaMax)
        let t = karras ? ts.map(NumPy.round) : ts.map { Double(Float($0)) }
        let s = sigmas.map { Float($0) } + [0]
        // σ_up, σ_down and the midpoints with diffusers' float32 tensor maths (the last σ_up is 0/0 = NaN,
        // unused; the last σ_down and the last two midpoints are set to 0).
        let sigma = try Tensor(s), next = try Tensor(Array(s.dropFirst()) + [0])
        let up = try (next.pow(2) * (sigma.pow(2) - next.pow(2)) / sigma.pow(2)).pow(0.5)
        var down = try (next.pow(2) - up.pow(2)).pow(0.5).toArray(Float.self)
        down[down.count - 1] = 0
        var mid = try sigma.log().lerp(try Tensor(down).log(), weight: 0.5).exp().toArray(Float.self)
        mid[mid.count - 1] = 0
        mid[mid.count - 2] = 0
        let midT = try mid.map { Double(try sigmaToT32($0, logSigmas: logSigmas)) }
        var interleaved = [t[0]]
        for k in 1..<Swift.max(t.count, 1) { interleaved += [midT[k - 1], t[k]] }
        func laidOut(_ x: [Float]) -> [Float] { [x[0]] + repeatedTwice(x.dropFirst()) + [x[x.count - 1]] }
        return Layout(timesteps: interleaved, sigmas: laidOut(s), midpoints: laidOut(mid),
                      up: laidOut(try up.toArray(Float.self)), down: laidOut(down))
    }

    public func setTimesteps(_ count: Int) throws {
        let n = schedule.numTrainTimesteps
        try ConfigReader(config: config, scheduler: Self.name).checkStepCount(count, trainSteps: n)
        let layout = try Self.layout(count, trainingSigmas: trainingSigmas, logSigmas: logSigmas, spacing: timestepSpacing,
                                     offset: stepsOffset, karras: useKarrasSigmas, config: config)
        (timesteps, sigmaValues, midpointSigmas) = (layout.timesteps, layout.sigmas, layout.midpoints)
        (upSigmas, downSigmas) = (layout.up, layout.down)
        initNoiseSigma = try EulerDiscreteScheduler.initNoiseSigma(sigmaValues, timestepSpacing)
        pendingSample = nil
        stepIndex = nil
        beginIndex = nil
    }

    private func currentIndex(_ timestep: Double) throws -> Int {
        try resolveStepIndex(&stepIndex, beginIndex: beginIndex, timestep: timestep, in: timesteps, scheduler: Self.name)
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor {
        let i = try currentIndex(timestep)
        return try scaledForModel(sample, sigma: stateInFirstOrder ? sigmaValues[i] : midpointSigmas[i - 1])
    }

    public func step(modelOutput: Tensor, timestep: Double, sample: Tensor, generator: NoiseGenerator?) throws -> Tensor {
        let i = try currentIndex(timestep)
        guard i + 1 < sigmaValues.count, pendingSample == nil || i >= 1 else {
            throw SchedulerError.invalidState("\(Self.name): stepped past the end of the schedule")
        }
        let prev: Tensor
        if let start = pendingSample {
            // At the midpoint: the whole step with its slope, down to σ_down, plus noise of size σ_up.
            let sigmaHat = sigmaValues[i - 1], midpoint = midpointSigmas[i - 1]
            let x0 = try KDPM2DiscreteScheduler.predictedSample(modelOutput, sample, sigma: midpoint, predictionType,
                                                                scheduler: Self.name)
            let deterministic = try start + (sample - x0) / Double(midpoint) * Double(downSigmas[i - 1] - sigmaHat)
            let noise = try randnTensor(modelOutput.shape, generator: generator, device: modelOutput.device,
                                        dtype: modelOutput.dtype)
            prev = try deterministic + noise * Double(upSigmas[i - 1])
            pendingSample = nil
        } else {
            // σ̂ = σ (no churn): an Euler step to the midpoint.
            let sigmaHat = sigmaValues[i], midpoint = midpointSigmas[i]
            let x0 = try KDPM2DiscreteScheduler.predictedSample(modelOutput, sample, sigma: sigmaHat, predictionType,
                                                                scheduler: Self.name)
            prev = try sample + (sample - x0) / Double(sigmaHat) * Double(midpoint - sigmaHat)
            pendingSample = sample
        }
        stepIndex = i + 1
        return prev
    }

    /// x + ε·σ (diffusers' `add_noise` of the σ schedulers).
    public func addNoise(_ original: Tensor, noise: Tensor, timesteps: [Double]) throws -> Tensor {
        let indices = try noiseLevelIndices(timesteps, schedule: self.timesteps, stepIndex: stepIndex,
                                            beginIndex: beginIndex) { t in
            throw SchedulerError.invalidState("\(Self.name): timestep \(t) is not in the schedule")
        }
        return try original + noise * batchColumn(indices.map { sigmaValues[$0] }, like: original)
    }
}
