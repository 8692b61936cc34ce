// diffusers schedulers/scheduling_heun_discrete.py: HeunDiscreteScheduler (Karras et al. 2022, algorithm 1
// without churn): an Euler step to the next σ, then a second model evaluation there and the step redone
// with the mean of both slopes. Two model evaluations per step, so every inner timestep is visited twice.
import Foundation
import Torch

public final class HeunDiscreteScheduler: IndexedScheduler {
    public let config: SchedulerConfig
    public let schedule: NoiseSchedule
    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    public let useKarrasSigmas: Bool
    public let stepsOffset: Int
    /// `clip_sample`: clamp the predicted x0 to ±`clipSampleRange` (off by default here, unlike DDPM).
    public let clipSample: Bool
    public let clipSampleRange: Double
    /// [t0, t1, t1, t2, t2, …]: the first of each pair is the Euler evaluation, the second the correction.
    public private(set) var timesteps: [Double]
    /// [σ0, σ1, σ1, …, σn−1, σn−1, 0], aligned with `timesteps` plus the final σ.
    public private(set) var sigmaValues: [Float]
    public var sigmas: [Float]? { sigmaValues }
    public var timestepDType: DType { .float32 }
    public var timestepsPerStep: Int { 2 }
    public var numTrainTimesteps: Int { schedule.numTrainTimesteps }
    public private(set) var initNoiseSigma: Double = 1
    public private(set) var stepIndex: Int?
    public var beginIndex: Int?

    /// The Euler half-step in flight: its slope, its Δσ and the sample it started from.
    private var pending: (derivative: Tensor, dt: Float, sample: Tensor)?
    /// diffusers' `state_in_first_order`: the next `step` is an Euler step (not a correction).
    public var stateInFirstOrder: Bool { pending == nil }

    private let trainingSigmas: [Float]
    private let logSigmas: [Float]
    private static let name = "HeunDiscreteScheduler"

    public init(config: SchedulerConfig = SchedulerConfig()) throws {
        let r = ConfigReader(config: config, scheduler: Self.name)
        self.config = config
        // No rescale_betas_zero_snr in this class: the key is ignored, as from_config ignores it.
        schedule = try NoiseSchedule(config, scheduler: Self.name, rescaleOption: false)
        predictionType = try r.prediction(allowed: [.epsilon, .vPrediction, .sample])
        timestepSpacing = try r.spacing(default: .linspace)
        try r.require("use_exponential_sigmas", config.useExponentialSigmas, equals: false)
        try r.require("use_beta_sigmas", config.useBetaSigmas, equals: false)
        useKarrasSigmas = config.useKarrasSigmas ?? false
        stepsOffset = config.stepsOffset ?? 0
        clipSample = config.clipSample ?? false
        clipSampleRange = config.clipSampleRange ?? 1
        trainingSigmas = try schedule.trainingSigmas()
        logSigmas = try float32Log(trainingSigmas)
        // diffusers' __init__ ends with set_timesteps(num_train_timesteps).
        (timesteps, sigmaValues) = Self.makeSchedule(schedule.numTrainTimesteps, trainingSigmas: trainingSigmas,
                                                     logSigmas: logSigmas, spacing: timestepSpacing, offset: stepsOffset,
                                                     karras: useKarrasSigmas, config: config)
        initNoiseSigma = try EulerDiscreteScheduler.initNoiseSigma(sigmaValues, timestepSpacing)
    }

    private static func makeSchedule(_ count: Int, trainingSigmas: [Float], logSigmas: [Float], spacing: TimestepSpacing,
                                 offset: Int, karras: Bool, config: SchedulerConfig) -> ([Double], [Float]) {
        // sigma_min/sigma_max are no arguments of this class, but from_config keeps every key of the file
        // and `_convert_to_karras` reads them from there.
        let (ts, sigmas) = discreteSigmaSchedule(count, trainingSigmas: trainingSigmas, logSigmas: logSigmas,
                                                 spacing: spacing, offset: offset, karras: karras,
                                                 sigmaMin: config.sigmaMin, sigmaMax: config.sigmaMax)
        let t32 = ts.map { Double(Float($0)) }
        let s32 = sigmas.map { Float($0) } + [0]
        return ([t32[0]] + repeatedTwice(t32.dropFirst()),
                [s32[0]] + repeatedTwice(s32.dropFirst().dropLast()) + [0])
    }

    public func setTimesteps(_ count: Int) throws {
        let n = schedule.numTrainTimesteps
        try ConfigReader(config: config, scheduler: Self.name).checkStepCount(count, trainSteps: n)
        (timesteps, sigmaValues) = Self.makeSchedule(count, trainingSigmas: trainingSigmas, logSigmas: logSigmas,
                                                     spacing: timestepSpacing, offset: stepsOffset,
                                                     karras: useKarrasSigmas, config: config)
        initNoiseSigma = try EulerDiscreteScheduler.initNoiseSigma(sigmaValues, timestepSpacing)
        pending = nil
        stepIndex = nil
        beginIndex = nil
    }

    private func currentIndex(_ timestep: Double) throws -> Int {
        try resolveStepIndex(&stepIndex, beginIndex: beginIndex, timestep: timestep, in: timesteps, scheduler: Self.name)
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor {
        try scaledForModel(sample, sigma: sigmaValues[try currentIndex(timestep)])
    }

    public func step(modelOutput: Tensor, timestep: Double, sample: Tensor, generator: NoiseGenerator?) throws -> Tensor {
        let i = try currentIndex(timestep)
        guard i + 1 < sigmaValues.count, pending == nil || i >= 1 else {
            throw SchedulerError.invalidState("\(Self.name): stepped past the end of the schedule")
        }
        // σ̂ = σ (no churn). The Euler half evaluates the model at σ, the correction at the next σ.
        let sigmaHat = pending == nil ? sigmaValues[i] : sigmaValues[i - 1]
        let sigmaNext = pending == nil ? sigmaValues[i + 1] : sigmaValues[i]
        let sigmaInput = pending == nil ? sigmaHat : sigmaNext
        var x0: Tensor
        switch predictionType {
        case .epsilon: x0 = try sample - modelOutput * Double(sigmaInput)
        case .sample: x0 = modelOutput
        case .vPrediction:
            let c = try -sigmaInput / sqrt32(sigmaInput * sigmaInput + 1)
            x0 = try modelOutput * Double(c) + sample / Double(sigmaInput * sigmaInput + 1)
        }
        if clipSample { x0 = try x0.clamp(min: -clipSampleRange, max: clipSampleRange) }

        let prev: Tensor
        if let first = pending {
            let derivative = try ((sample - x0) / Double(sigmaNext) + first.derivative) / 2
            prev = try first.sample + derivative * Double(first.dt)
            pending = nil
        } else {
            let derivative = try (sample - x0) / Double(sigmaHat)
            let dt = sigmaNext - sigmaHat
            prev = try sample + derivative * Double(dt)
            pending = (derivative, dt, sample)
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
