// diffusers schedulers/scheduling_ddim.py: DDIMScheduler (Song et al. 2020), deterministic for eta = 0,
// with σ_t = eta·√var fresh noise per step otherwise.
import Foundation
import Torch

public final class DDIMScheduler: Scheduler, IntegerTimestepTraining {
    public let config: SchedulerConfig
    public let schedule: NoiseSchedule
    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    public let clipSample: Bool
    public let clipSampleRange: Double
    public let stepsOffset: Int
    /// ᾱ used after the last step: 1 with `set_alpha_to_one` (the class default), else ᾱ_0 (SD1.5).
    public let finalAlphaCumprod: Float
    /// The stochasticity η of `step` (diffusers passes it per call; the pipeline's `eta` argument).
    public var eta: Double = 0
    public private(set) var timesteps: [Double]
    public private(set) var numInferenceSteps: Int?
    public var timestepDType: DType { .int64 }
    public var sigmas: [Float]? { nil }
    public var initNoiseSigma: Double { 1 }
    public var numTrainTimesteps: Int { schedule.numTrainTimesteps }

    public init(config: SchedulerConfig = SchedulerConfig()) throws {
        let name = "DDIMScheduler"
        let r = ConfigReader(config: config, scheduler: name)
        self.config = config
        schedule = try NoiseSchedule(config, scheduler: name)
        predictionType = try r.prediction(allowed: [.epsilon, .vPrediction, .sample])
        timestepSpacing = try r.spacing(default: .leading)
        try r.require("thresholding", config.thresholding, equals: false)
        clipSample = config.clipSample ?? true
        clipSampleRange = config.clipSampleRange ?? 1
        stepsOffset = config.stepsOffset ?? 0
        finalAlphaCumprod = (config.setAlphaToOne ?? true) ? 1 : schedule.alphasCumprodValues[0]
        timesteps = (0..<schedule.numTrainTimesteps).reversed().map(Double.init)
    }

    public func setTimesteps(_ count: Int) throws {
        let n = schedule.numTrainTimesteps
        try ConfigReader(config: config, scheduler: "DDIMScheduler").checkStepCount(count, trainSteps: n)
        numInferenceSteps = count
        timesteps = DDPMScheduler.discreteTimesteps(count, trainSteps: n, spacing: timestepSpacing, offset: stepsOffset)
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor { sample }

    public func step(modelOutput: Tensor, timestep: Double, sample: Tensor, generator: NoiseGenerator?) throws -> Tensor {
        guard let count = numInferenceSteps else {
            throw SchedulerError.invalidState("DDIMScheduler: call setTimesteps before step")
        }
        let n = schedule.numTrainTimesteps
        let t = try integerTimestep(timestep, "DDIMScheduler", limit: n)
        // The previous timestep is one stride back whatever the spacing (diffusers does the same).
        let prevT = t - n / count
        let acp = schedule.alphasCumprodValues
        let alphaProdT = acp[t]
        let alphaProdTPrev = prevT >= 0 ? acp[prevT] : finalAlphaCumprod
        let betaProdT = 1 - alphaProdT
        let sqrtA = try Double(sqrt32(alphaProdT)), sqrtB = try Double(sqrt32(betaProdT))

        var x0: Tensor
        let epsilon: Tensor
        switch predictionType {
        case .epsilon:
            x0 = try (sample - modelOutput * sqrtB) / sqrtA
            epsilon = modelOutput
        case .sample:
            x0 = modelOutput
            epsilon = try (sample - x0 * sqrtA) / sqrtB
        case .vPrediction:
            x0 = try sample * sqrtA - modelOutput * sqrtB
            epsilon = try modelOutput * sqrtA + sample * sqrtB
        }
        if clipSample { x0 = try x0.clamp(min: -clipSampleRange, max: clipSampleRange) }

        // `_get_variance`, then σ_t = η·√variance, all float32.
        let betaProdTPrev = 1 - alphaProdTPrev
        let variance = (betaProdTPrev / betaProdT) * (1 - alphaProdT / alphaProdTPrev)
        let std = try Float(eta) * sqrt32(variance)
        let direction = try epsilon * Double(sqrt32(1 - alphaProdTPrev - std * std))
        var prev = try x0 * Double(sqrt32(alphaProdTPrev)) + direction
        if eta > 0 {
            let noise = try randnTensor(modelOutput.shape, generator: generator, device: modelOutput.device,
                                        dtype: modelOutput.dtype)
            prev = try prev + noise * Double(std)
        }
        return prev
    }

    // MARK: Training

}
