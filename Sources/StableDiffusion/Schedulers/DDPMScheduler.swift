// diffusers schedulers/scheduling_ddpm.py: DDPMScheduler (Ho et al. 2020). The training noise schedule
// (add_noise, get_velocity, SNR) and ancestral sampling.
import Foundation
import Torch

public final class DDPMScheduler: Scheduler, IntegerTimestepTraining {
    public enum VarianceType: String, Sendable {
        case fixedSmall = "fixed_small", fixedSmallLog = "fixed_small_log", fixedLarge = "fixed_large"
    }

    public let config: SchedulerConfig
    public let schedule: NoiseSchedule
    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    public let varianceType: VarianceType
    public let clipSample: Bool
    public let clipSampleRange: Double
    public let stepsOffset: Int
    public private(set) var timesteps: [Double]
    public private(set) var numInferenceSteps: Int?
    public var timestepDType: DType { .int64 }
    public var sigmas: [Float]? { nil }
    public var initNoiseSigma: Double { 1 }
    public var numTrainTimesteps: Int { schedule.numTrainTimesteps }

    public init(config: SchedulerConfig = SchedulerConfig()) throws {
        let name = "DDPMScheduler"
        let r = ConfigReader(config: config, scheduler: name)
        self.config = config
        schedule = try NoiseSchedule(config, scheduler: name)
        predictionType = try r.prediction(allowed: [.epsilon, .vPrediction, .sample])
        timestepSpacing = try r.spacing(default: .leading)
        varianceType = try r.choice("variance_type", config.varianceType, default: VarianceType.fixedSmall,
                                    allowed: [.fixedSmall, .fixedSmallLog, .fixedLarge])
        try r.require("thresholding", config.thresholding, equals: false)
        clipSample = config.clipSample ?? true
        clipSampleRange = config.clipSampleRange ?? 1
        stepsOffset = config.stepsOffset ?? 0
        timesteps = (0..<schedule.numTrainTimesteps).reversed().map(Double.init)
    }

    public func setTimesteps(_ count: Int) throws {
        let n = schedule.numTrainTimesteps
        try ConfigReader(config: config, scheduler: "DDPMScheduler").checkStepCount(count, trainSteps: n)
        numInferenceSteps = count
        timesteps = DDPMScheduler.discreteTimesteps(count, trainSteps: n, spacing: timestepSpacing, offset: stepsOffset)
    }

    /// The integer schedules DDPM and DDIM share (their `set_timesteps`), in visiting order.
    static func discreteTimesteps(_ count: Int, trainSteps n: Int, spacing: TimestepSpacing, offset: Int) -> [Double] {
        switch spacing {
        case .linspace:
            return NumPy.linspace(0, Double(n - 1), count).reversed().map(NumPy.round)
        case .leading:
            let ratio = n / count
            return (0..<count).reversed().map { Double($0 * ratio + offset) }
        case .trailing:
            let ratio = Double(n) / Double(count)
            return NumPy.arange(Double(n), 0, -ratio).map { NumPy.round($0) - 1 }
        }
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor { sample }

    /// `previous_timestep`: the next entry of the inference schedule (−1 after the last), or t − 1
    /// before `setTimesteps`.
    func previousTimestep(_ t: Int) throws -> Int {
        guard numInferenceSteps != nil else { return t - 1 }
        guard let index = timesteps.firstIndex(of: Double(t)) else {
            throw SchedulerError.invalidState("DDPMScheduler: timestep \(t) is not in the schedule")
        }
        return index == timesteps.count - 1 ? -1 : Int(timesteps[index + 1])
    }

    public func step(modelOutput: Tensor, timestep: Double, sample: Tensor, generator: NoiseGenerator?) throws -> Tensor {
        let t = try integerTimestep(timestep, "DDPMScheduler", limit: schedule.numTrainTimesteps)
        let prevT = try previousTimestep(t)
        let acp = schedule.alphasCumprodValues
        // 0-d float32 tensor maths in diffusers; Float arithmetic rounds identically.
        let alphaProdT = acp[t]
        let alphaProdTPrev: Float = prevT >= 0 ? acp[prevT] : 1
        let betaProdT = 1 - alphaProdT
        let betaProdTPrev = 1 - alphaProdTPrev
        let currentAlphaT = alphaProdT / alphaProdTPrev
        let currentBetaT = 1 - currentAlphaT

        var x0: Tensor
        switch predictionType {
        case .epsilon: x0 = try (sample - modelOutput * Double(sqrt32(betaProdT))) / Double(sqrt32(alphaProdT))
        case .sample: x0 = modelOutput
        case .vPrediction:
            x0 = try sample * Double(sqrt32(alphaProdT)) - modelOutput * Double(sqrt32(betaProdT))
        }
        if clipSample { x0 = try x0.clamp(min: -clipSampleRange, max: clipSampleRange) }

        let x0Coeff = try sqrt32(alphaProdTPrev) * currentBetaT / betaProdT
        let sampleCoeff = try sqrt32(currentAlphaT) * betaProdTPrev / betaProdT
        var prev = try x0 * Double(x0Coeff) + sample * Double(sampleCoeff)

        if t > 0 {
            let noise = try randnTensor(modelOutput.shape, generator: generator, device: modelOutput.device,
                                        dtype: modelOutput.dtype)
            // `_get_variance`: clamped at 1e-20 (a float32 clamp of a float32 value).
            let variance = Swift.max((1 - alphaProdTPrev) / (1 - alphaProdT) * currentBetaT, Float(1e-20))
            let scale: Float
            switch varianceType {
            case .fixedSmall: scale = try sqrt32(variance)
            case .fixedSmallLog: scale = try exp32(0.5 * log32(variance))
            case .fixedLarge: scale = try sqrt32(currentBetaT)
            }
            prev = try prev + noise * Double(scale)
        }
        return prev
    }

    // MARK: Training

    public func snr(_ timesteps: Tensor) throws -> Tensor { try schedule.snr(timesteps) }
}
