// diffusers schedulers/scheduling_euler_discrete.py: EulerDiscreteScheduler (Karras et al. 2022,
// algorithm 2 without churn): an Euler ODE step in σ, optionally on the Karras σ schedule.
import Foundation
import Torch

public final class EulerDiscreteScheduler: IndexedScheduler {
    public let config: SchedulerConfig
    public let schedule: NoiseSchedule
    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    public let useKarrasSigmas: Bool
    public let stepsOffset: Int
    /// "zero" (default) ends the schedule at σ = 0; "sigma_min" at the smallest training σ.
    public let finalSigmaIsZero: Bool
    public private(set) var timesteps: [Double]
    public private(set) var sigmaValues: [Float]
    public var sigmas: [Float]? { sigmaValues }
    public var timestepDType: DType { .float32 }
    public var numTrainTimesteps: Int { schedule.numTrainTimesteps }
    public private(set) var initNoiseSigma: Double = 1
    /// The index into `sigmas` of the next step; set from the first timestep seen, as diffusers does.
    public private(set) var stepIndex: Int?
    /// Where to start instead (img2img): diffusers' `set_begin_index`.
    public var beginIndex: Int?

    private let trainingSigmas: [Float]
    private let logSigmas: [Float]

    public init(config: SchedulerConfig = SchedulerConfig()) throws {
        let name = "EulerDiscreteScheduler"
        let r = ConfigReader(config: config, scheduler: name)
        self.config = config
        schedule = try NoiseSchedule(config, scheduler: name, terminalAlphaCumprod: true)
        predictionType = try r.prediction(allowed: [.epsilon, .vPrediction, .sample])
        timestepSpacing = try r.spacing(default: .linspace)
        _ = try r.string("interpolation_type", config.interpolationType, default: "linear", allowed: ["linear"])
        _ = try r.string("timestep_type", config.timestepType, default: "discrete", allowed: ["discrete"])
        finalSigmaIsZero = try r.string("final_sigmas_type", config.finalSigmasType, default: "zero",
                                        allowed: ["zero", "sigma_min"]) == "zero"
        try r.require("use_exponential_sigmas", config.useExponentialSigmas, equals: false)
        try r.require("use_beta_sigmas", config.useBetaSigmas, equals: false)
        useKarrasSigmas = config.useKarrasSigmas ?? false
        stepsOffset = config.stepsOffset ?? 0
        trainingSigmas = try schedule.trainingSigmas()
        logSigmas = try float32Log(trainingSigmas)
        let n = schedule.numTrainTimesteps
        timesteps = NumPy.linspace(0, Double(n - 1), n).reversed().map { Double(Float($0)) }
        sigmaValues = trainingSigmas.reversed() + [0]
        initNoiseSigma = try EulerDiscreteScheduler.initNoiseSigma(sigmaValues, timestepSpacing)
    }

    /// The float32 timesteps Euler and Euler-ancestral share, in visiting order.
    static func floatTimesteps(_ count: Int, trainSteps n: Int, spacing: TimestepSpacing, offset: Int) -> [Float] {
        switch spacing {
        case .linspace:
            return NumPy.linspace(0, Double(n - 1), count).reversed().map { Float($0) }
        case .leading:
            let ratio = n / count
            return (0..<count).reversed().map { Float(Double($0 * ratio)) + Float(offset) }
        case .trailing:
            return NumPy.arange(Double(n), 0, -(Double(n) / Double(count))).map { Float(NumPy.round($0)) - 1 }
        }
    }

    /// max σ for "linspace"/"trailing"; √(max σ² + 1) for "leading" (float32 maths).
    static func initNoiseSigma(_ sigmas: [Float], _ spacing: TimestepSpacing) throws -> Double {
        let maxSigma = sigmas.max() ?? 1
        return Double(spacing == .leading ? try sqrt32(maxSigma * maxSigma + 1) : maxSigma)
    }

    public func setTimesteps(_ count: Int) throws {
        let n = schedule.numTrainTimesteps
        try ConfigReader(config: config, scheduler: "EulerDiscreteScheduler").checkStepCount(count, trainSteps: n)
        var ts = EulerDiscreteScheduler.floatTimesteps(count, trainSteps: n, spacing: timestepSpacing, offset: stepsOffset)
            .map(Double.init)
        var sigmas = NumPy.interpOnIndexGrid(ts, trainingSigmas.map(Double.init))
        if useKarrasSigmas {
            guard let first = sigmas.first, let last = sigmas.last else { return }
            sigmas = karrasSigmas(sigmaMin: config.sigmaMin ?? last, sigmaMax: config.sigmaMax ?? first, count: count)
            ts = sigmas.map { Double(Float(sigmaToT($0, logSigmas: logSigmas))) }
        }
        let a0 = schedule.alphasCumprodValues[0]
        let final: Float = try finalSigmaIsZero ? 0 : sqrt32((1 - a0) / a0)
        sigmaValues = sigmas.map { Float($0) } + [final]
        initNoiseSigma = try EulerDiscreteScheduler.initNoiseSigma(sigmaValues, timestepSpacing)
        timesteps = ts
        stepIndex = nil
        beginIndex = nil
    }

    private func currentIndex(_ timestep: Double) throws -> Int {
        try resolveStepIndex(&stepIndex, beginIndex: beginIndex, timestep: timestep, in: timesteps, scheduler: "EulerDiscreteScheduler")
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor {
        try scaledForModel(sample, sigma: sigmaValues[try currentIndex(timestep)])
    }

    public func step(modelOutput: Tensor, timestep: Double, sample: Tensor, generator: NoiseGenerator?) throws -> Tensor {
        let i = try currentIndex(timestep)
        guard i + 1 < sigmaValues.count else {
            throw SchedulerError.invalidState("EulerDiscreteScheduler: stepped past the end of the schedule")
        }
        let x = try sample.to(.float32)
        // No churn (s_churn = 0): σ̂ = σ·(0 + 1) = σ.
        let sigma = sigmaValues[i]
        let sigmaHat = sigma * 1
        let x0: Tensor
        switch predictionType {
        case .sample: x0 = modelOutput
        case .epsilon: x0 = try x - modelOutput * Double(sigmaHat)
        case .vPrediction:
            let c = try -sigma / sqrt32(sigma * sigma + 1)
            x0 = try modelOutput * Double(c) + x / Double(sigma * sigma + 1)
        }
        let derivative = try (x - x0) / Double(sigmaHat)
        let dt = sigmaValues[i + 1] - sigmaHat
        let prev = try x + derivative * Double(dt)
        stepIndex = i + 1
        return try prev.to(modelOutput.dtype)
    }

    /// x + ε·σ (diffusers' `add_noise` of the σ schedulers).
    public func addNoise(_ original: Tensor, noise: Tensor, timesteps: [Double]) throws -> Tensor {
        let indices = try noiseLevelIndices(timesteps, schedule: self.timesteps, stepIndex: stepIndex,
                                            beginIndex: beginIndex) { t in
            throw SchedulerError.invalidState("EulerDiscreteScheduler: timestep \(t) is not in the schedule")
        }
        return try original + noise * batchColumn(indices.map { sigmaValues[$0] }, like: original)
    }
}
