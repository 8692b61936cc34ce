// diffusers schedulers/scheduling_euler_ancestral_discrete.py: EulerAncestralDiscreteScheduler
// (k-diffusion's sample_euler_ancestral): an Euler step down to σ_down, then fresh noise of size σ_up.
import Foundation
import Torch

public final class EulerAncestralDiscreteScheduler: IndexedScheduler {
    public let config: SchedulerConfig
    public let schedule: NoiseSchedule
    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    public let stepsOffset: Int
    public private(set) var timesteps: [Double]
    public private(set) var sigmaValues: [Float]
    public var sigmas: [Float]? { sigmaValues }
    public var timestepDType: DType { .float32 }
    public var numTrainTimesteps: Int { schedule.numTrainTimesteps }
    public private(set) var initNoiseSigma: Double = 1
    public private(set) var stepIndex: Int?
    public var beginIndex: Int?

    private let trainingSigmas: [Float]

    public init(config: SchedulerConfig = SchedulerConfig()) throws {
        let name = "EulerAncestralDiscreteScheduler"
        let r = ConfigReader(config: config, scheduler: name)
        self.config = config
        schedule = try NoiseSchedule(config, scheduler: name, terminalAlphaCumprod: true)
        // diffusers raises NotImplementedError for "sample" here.
        predictionType = try r.prediction(allowed: [.epsilon, .vPrediction])
        timestepSpacing = try r.spacing(default: .linspace)
        stepsOffset = config.stepsOffset ?? 0
        trainingSigmas = try schedule.trainingSigmas()
        let n = schedule.numTrainTimesteps
        // Before setTimesteps diffusers holds float64 timesteps here; the values are integers either way.
        timesteps = NumPy.linspace(0, Double(n - 1), n).reversed()
        sigmaValues = trainingSigmas.reversed() + [0]
        initNoiseSigma = try EulerDiscreteScheduler.initNoiseSigma(sigmaValues, timestepSpacing)
    }

    public func setTimesteps(_ count: Int) throws {
        let n = schedule.numTrainTimesteps
        try ConfigReader(config: config, scheduler: "EulerAncestralDiscreteScheduler").checkStepCount(count, trainSteps: n)
        let ts = EulerDiscreteScheduler.floatTimesteps(count, trainSteps: n, spacing: timestepSpacing, offset: stepsOffset)
            .map(Double.init)
        sigmaValues = NumPy.interpOnIndexGrid(ts, trainingSigmas.map(Double.init)).map { Float($0) } + [0]
        initNoiseSigma = try EulerDiscreteScheduler.initNoiseSigma(sigmaValues, timestepSpacing)
        timesteps = ts
        stepIndex = nil
        beginIndex = nil
    }

    private func currentIndex(_ timestep: Double) throws -> Int {
        try resolveStepIndex(&stepIndex, beginIndex: beginIndex, timestep: timestep, in: timesteps, scheduler: "EulerAncestralDiscreteScheduler")
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor {
        try scaledForModel(sample, sigma: sigmaValues[try currentIndex(timestep)])
    }

    public func step(modelOutput: Tensor, timestep: Double, sample: Tensor, generator: NoiseGenerator?) throws -> Tensor {
        let i = try currentIndex(timestep)
        guard i + 1 < sigmaValues.count else {
            throw SchedulerError.invalidState("EulerAncestralDiscreteScheduler: stepped past the end of the schedule")
        }
        let sigma = sigmaValues[i]
        let x = try sample.to(.float32)
        let x0: Tensor
        switch predictionType {
        case .epsilon: x0 = try x - modelOutput * Double(sigma)
        case .sample:
            throw SchedulerError.unsupported("EulerAncestralDiscreteScheduler", "prediction_type", "sample",
                                             ["epsilon", "v_prediction"])
        case .vPrediction:
            let c = try -sigma / sqrt32(sigma * sigma + 1)
            x0 = try modelOutput * Double(c) + x / Double(sigma * sigma + 1)
        }
        // Split the move to σ_to into a deterministic part (to σ_down) and noise (σ_up), float32 scalars.
        let from = sigma, to = sigmaValues[i + 1]
        let sigmaUp = try sqrt32(to * to * (from * from - to * to) / (from * from))
        let sigmaDown = try sqrt32(to * to - sigmaUp * sigmaUp)
        let derivative = try (x - x0) / Double(sigma)
        let dt = sigmaDown - sigma
        var prev = try x + derivative * Double(dt)
        let noise = try randnTensor(modelOutput.shape, generator: generator, device: modelOutput.device,
                                    dtype: modelOutput.dtype)
        prev = try prev + noise * Double(sigmaUp)
        stepIndex = i + 1
        return try prev.to(modelOutput.dtype)
    }

    /// x + ε·σ (diffusers' `add_noise` of the σ schedulers).
    public func addNoise(_ original: Tensor, noise: Tensor, timesteps: [Double]) throws -> Tensor {
        let indices = try noiseLevelIndices(timesteps, schedule: self.timesteps, stepIndex: stepIndex,
                                            beginIndex: beginIndex) { t in
            throw SchedulerError.invalidState("EulerAncestralDiscreteScheduler: timestep \(t) is not in the schedule")
        }
        return try original + noise * batchColumn(indices.map { sigmaValues[$0] }, like: original)
    }
}
