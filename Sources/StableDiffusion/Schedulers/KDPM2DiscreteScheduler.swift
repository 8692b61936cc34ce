// diffusers schedulers/scheduling_k_dpm_2_discrete.py: KDPM2DiscreteScheduler (k-diffusion's sample_dpm_2,
// A1111's "DPM2"): a midpoint method in log σ. Each step evaluates the model at σ, takes an Euler step to
// the geometric midpoint of σ and the next σ, evaluates there and steps the whole way with that slope.
import Foundation
import Torch

public final class KDPM2DiscreteScheduler: IndexedScheduler {
    public let config: SchedulerConfig
    public let schedule: NoiseSchedule
    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    public let useKarrasSigmas: Bool
    public let stepsOffset: Int
    /// [t0, t½, t1, t1½, t2, …]: each σ's timestep, then its midpoint's (the second evaluation).
    public private(set) var timesteps: [Double]
    /// [σ0, σ1, σ1, …, 0, 0, 0] and the midpoints laid out alike (diffusers' `sigmas`, `sigmas_interpol`).
    public private(set) var sigmaValues: [Float]
    public private(set) var midpointSigmas: [Float]
    public var sigmas: [Float]? { sigmaValues }
    /// float64 with Karras σ (their timesteps are rounded numpy float64), float32 otherwise, as diffusers.
    public var timestepDType: DType { useKarrasSigmas ? .float64 : .float32 }
    public var timestepsPerStep: Int { 2 }
    public var numTrainTimesteps: Int { schedule.numTrainTimesteps }
    public private(set) var initNoiseSigma: Double = 1
    public private(set) var stepIndex: Int?
    public var beginIndex: Int?

    /// The sample the step in flight started from (diffusers' `self.sample`).
    private var pendingSample: Tensor?
    public var stateInFirstOrder: Bool { pendingSample == nil }

    private let trainingSigmas: [Float]
    private let logSigmas: [Float]
    private static let name = "KDPM2DiscreteScheduler"

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
        (timesteps, sigmaValues, midpointSigmas) = try Self.makeSchedule(
            schedule.numTrainTimesteps, trainingSigmas: trainingSigmas, logSigmas: logSigmas, spacing: timestepSpacing,
            offset: stepsOffset, karras: useKarrasSigmas, config: config)
        initNoiseSigma = try EulerDiscreteScheduler.initNoiseSigma(sigmaValues, timestepSpacing)
    }

    private static func makeSchedule(_ count: Int, trainingSigmas: [Float], logSigmas: [Float], spacing: TimestepSpacing,
                                 offset: Int, karras: Bool, config: SchedulerConfig) throws -> ([Double], [Float], [Float]) {
        // sigma_min/sigma_max: read from the config when the file has them (from_config keeps every key).
        let (ts, sigmas) = discreteSigmaSchedule(count, trainingSigmas: trainingSigmas, logSigmas: logSigmas,
                                                 spacing: spacing, offset: offset, karras: karras,
                                                 sigmaMin: config.sigmaMin, sigmaMax: config.sigmaMax)
        let t = karras ? ts.map(NumPy.round) : ts.map { Double(Float($0)) }
        let s = sigmas.map { Float($0) } + [0]
        // exp(lerp(log σ_i, log σ_{i−1}, ½)) on the tensors, as diffusers computes it (σ_0's is NaN and the
        // final 0's is 0; neither is used).
        let sigmaTensor = try Tensor(s)
        let previous = try Tensor([s[s.count - 1]] + s.dropLast())
        let mid = try sigmaTensor.log().lerp(previous.log(), weight: 0.5).exp().toArray(Float.self)
        let midT = try mid.map { Double(try sigmaToT32($0, logSigmas: logSigmas)) }
        var interleaved = [t[0]]
        for k in 1..<Swift.max(t.count, 1) { interleaved += [midT[k], t[k]] }
        return (interleaved, [s[0]] + repeatedTwice(s.dropFirst()) + [s[s.count - 1]],
                [mid[0]] + repeatedTwice(mid.dropFirst()) + [mid[mid.count - 1]])
    }

    public func setTimesteps(_ count: Int) throws {
        let n = schedule.numTrainTimesteps
        try ConfigReader(config: config, scheduler: Self.name).checkStepCount(count, trainSteps: n)
        (timesteps, sigmaValues, midpointSigmas) = try Self.makeSchedule(
            count, trainingSigmas: trainingSigmas, logSigmas: logSigmas, spacing: timestepSpacing, offset: stepsOffset,
            karras: useKarrasSigmas, config: config)
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
        return try scaledForModel(sample, sigma: stateInFirstOrder ? sigmaValues[i] : midpointSigmas[i])
    }

    public func step(modelOutput: Tensor, timestep: Double, sample: Tensor, generator: NoiseGenerator?) throws -> Tensor {
        let i = try currentIndex(timestep)
        guard i + 1 < sigmaValues.count, pendingSample == nil || i >= 1 else {
            throw SchedulerError.invalidState("\(Self.name): stepped past the end of the schedule")
        }
        let first = pendingSample == nil
        // σ̂ = σ (no churn).
        let sigmaHat = first ? sigmaValues[i] : sigmaValues[i - 1]
        let midpoint = first ? midpointSigmas[i + 1] : midpointSigmas[i]
        let sigmaNext = first ? sigmaValues[i + 1] : sigmaValues[i]
        let sigmaInput = first ? sigmaHat : midpoint
        let x0 = try KDPM2DiscreteScheduler.predictedSample(modelOutput, sample, sigma: sigmaInput, predictionType,
                                                                  scheduler: Self.name)
        let prev: Tensor
        if let start = pendingSample {
            prev = try start + (sample - x0) / Double(midpoint) * Double(sigmaNext - sigmaHat)
            pendingSample = nil
        } else {
            prev = try sample + (sample - x0) / Double(sigmaHat) * Double(midpoint - sigmaHat)
            pendingSample = sample
        }
        stepIndex = i + 1
        return prev
    }

    /// The predicted x0 of both KDPM2 schedulers at the σ the model saw (ε or v; no "sample").
    static func predictedSample(_ modelOutput: Tensor, _ sample: Tensor, sigma: Float,
                                _ predictionType: PredictionType, scheduler: String) throws -> Tensor {
        switch predictionType {
        case .epsilon: return try sample - modelOutput * Double(sigma)
        case .vPrediction:
            let c = try -sigma / sqrt32(sigma * sigma + 1)
            return try modelOutput * Double(c) + sample / Double(sigma * sigma + 1)
        case .sample:
            throw SchedulerError.unsupported(scheduler, "prediction_type", "sample", ["epsilon", "v_prediction"])
        }
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
