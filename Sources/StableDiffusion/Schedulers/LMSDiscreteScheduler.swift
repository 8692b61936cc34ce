// diffusers schedulers/scheduling_lms_discrete.py: LMSDiscreteScheduler (k-diffusion's sample_lms): a
// linear multistep method in σ over the last four slopes, each weighted by the integral of its Lagrange
// basis polynomial across the step.
import Foundation
import Torch

public final class LMSDiscreteScheduler: IndexedScheduler {
    public let config: SchedulerConfig
    public let schedule: NoiseSchedule
    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    public let useKarrasSigmas: Bool
    public let stepsOffset: Int
    /// The number of past slopes combined: `step`'s `order` argument, which pipelines leave at 4.
    public let order = 4
    public private(set) var timesteps: [Double]
    public private(set) var sigmaValues: [Float]
    public var sigmas: [Float]? { sigmaValues }
    public var timestepDType: DType { .float32 }
    public var numTrainTimesteps: Int { schedule.numTrainTimesteps }
    public private(set) var initNoiseSigma: Double = 1
    public private(set) var stepIndex: Int?
    public var beginIndex: Int?

    /// The slopes of the last `order` steps, newest last.
    private var derivatives: [Tensor] = []
    private let trainingSigmas: [Float]
    private let logSigmas: [Float]
    private static let name = "LMSDiscreteScheduler"

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
        trainingSigmas = try schedule.trainingSigmas()
        logSigmas = try float32Log(trainingSigmas)
        // diffusers' __init__ ends with set_timesteps(num_train_timesteps).
        (timesteps, sigmaValues) = Self.makeSchedule(schedule.numTrainTimesteps, trainingSigmas: trainingSigmas,
                                                     logSigmas: logSigmas, spacing: timestepSpacing, offset: stepsOffset,
                                                     karras: useKarrasSigmas)
        initNoiseSigma = try EulerDiscreteScheduler.initNoiseSigma(sigmaValues, timestepSpacing)
    }

    private static func makeSchedule(_ count: Int, trainingSigmas: [Float], logSigmas: [Float], spacing: TimestepSpacing,
                                 offset: Int, karras: Bool) -> ([Double], [Float]) {
        // This class's `_convert_to_karras` takes its bounds from the interpolated σ only, never the config.
        let (ts, sigmas) = discreteSigmaSchedule(count, trainingSigmas: trainingSigmas, logSigmas: logSigmas,
                                                 spacing: spacing, offset: offset, karras: karras)
        return (ts.map { Double(Float($0)) }, sigmas.map { Float($0) } + [0])
    }

    public func setTimesteps(_ count: Int) throws {
        let n = schedule.numTrainTimesteps
        try ConfigReader(config: config, scheduler: Self.name).checkStepCount(count, trainSteps: n)
        (timesteps, sigmaValues) = Self.makeSchedule(count, trainingSigmas: trainingSigmas, logSigmas: logSigmas,
                                                     spacing: timestepSpacing, offset: stepsOffset, karras: useKarrasSigmas)
        initNoiseSigma = try EulerDiscreteScheduler.initNoiseSigma(sigmaValues, timestepSpacing)
        derivatives = []
        stepIndex = nil
        beginIndex = nil
    }

    private func currentIndex(_ timestep: Double) throws -> Int {
        try resolveStepIndex(&stepIndex, beginIndex: beginIndex, timestep: timestep, in: timesteps, scheduler: Self.name)
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor {
        try scaledForModel(sample, sigma: sigmaValues[try currentIndex(timestep)])
    }

    /// diffusers' `get_lms_coefficient(order, t, current_order)`: ∫ from σ_t to σ_{t+1} of the Lagrange
    /// basis polynomial through σ_t, σ_{t−1}, … that is 1 at σ_{t−j}. diffusers integrates it numerically
    /// (scipy's quad on a float32 integrand); the integrand is a product of linear factors, so here it is
    /// expanded and integrated exactly, which agrees with quad to float32 rounding (the scheduler tests
    /// check the coefficients against diffusers').
    static func coefficient(_ sigmas: [Float], order: Int, t: Int, current j: Int) -> Double {
        // In u = τ − σ_t the bounds are 0 and h, and the factors (u − r_k) with r_k = σ_{t−k} − σ_t:
        // small numbers, no cancellation between large powers.
        let start = Double(sigmas[t]), h = Double(sigmas[t + 1]) - start
        var polynomial: [Double] = [1]  // coefficients, lowest degree first
        var denominator = 1.0
        for k in 0..<order where k != j {
            let root = Double(sigmas[t - k]) - start
            var product = [Double](repeating: 0, count: polynomial.count + 1)
            for (degree, c) in polynomial.enumerated() {
                product[degree + 1] += c
                product[degree] -= c * root
            }
            polynomial = product
            // diffusers forms this difference in float32.
            denominator *= Double(sigmas[t - j] - sigmas[t - k])
        }
        // ∫₀ʰ Σ c_d u^d du = Σ c_d h^(d+1) / (d+1), by Horner.
        let integral = polynomial.enumerated().reversed().reduce(0.0) { $0 * h + $1.element / Double($1.offset + 1) } * h
        return integral / denominator
    }

    /// The coefficients of step `t`, one per past slope, newest first.
    func coefficients(at t: Int) -> [Double] {
        let order = Swift.min(t + 1, self.order)
        return (0..<order).map { Self.coefficient(sigmaValues, order: order, t: t, current: $0) }
    }

    public func step(modelOutput: Tensor, timestep: Double, sample: Tensor, generator: NoiseGenerator?) throws -> Tensor {
        let i = try currentIndex(timestep)
        guard i + 1 < sigmaValues.count else {
            throw SchedulerError.invalidState("\(Self.name): stepped past the end of the schedule")
        }
        let sigma = sigmaValues[i]
        let x0: Tensor
        switch predictionType {
        case .epsilon: x0 = try sample - modelOutput * Double(sigma)
        case .sample: x0 = modelOutput
        case .vPrediction:
            let c = try -sigma / sqrt32(sigma * sigma + 1)
            x0 = try modelOutput * Double(c) + sample / Double(sigma * sigma + 1)
        }
        derivatives.append(try (sample - x0) / Double(sigma))
        if derivatives.count > order { derivatives.removeFirst() }
        // Newest slope with the first coefficient; zip stops at the shorter list, as diffusers' does when
        // an img2img start leaves fewer slopes than the order.
        var sum: Tensor?
        for (c, d) in zip(coefficients(at: i), derivatives.reversed()) {
            let term = try d * c
            sum = try sum.map { try $0 + term } ?? term
        }
        stepIndex = i + 1
        guard let sum else { return sample }
        return try sample + sum
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
