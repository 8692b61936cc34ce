// diffusers schedulers/scheduling_pndm.py: PNDMScheduler (Liu et al. 2022, pseudo numerical methods).
// SD1.5's own scheduler: with `skip_prk_steps` (its config) only the linear multistep (PLMS) part runs.
import Foundation
import Torch

public final class PNDMScheduler: Scheduler {
    public let config: SchedulerConfig
    public let schedule: NoiseSchedule
    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    public let skipPrkSteps: Bool
    public let stepsOffset: Int
    public let finalAlphaCumprod: Float
    public private(set) var timesteps: [Double] = []
    public private(set) var numInferenceSteps: Int?
    public var timestepDType: DType { .int64 }
    public var sigmas: [Float]? { nil }
    public var initNoiseSigma: Double { 1 }
    public var numTrainTimesteps: Int { schedule.numTrainTimesteps }

    private let pndmOrder = 4
    private var prkTimesteps: [Int] = []
    // Multistep state: past model outputs, the step counter, and the Runge–Kutta accumulators.
    private var ets: [Tensor] = []
    private var counter = 0
    private var curSample: Tensor?
    private var curModelOutput: Tensor?

    public init(config: SchedulerConfig = SchedulerConfig()) throws {
        let name = "PNDMScheduler"
        let r = ConfigReader(config: config, scheduler: name)
        self.config = config
        schedule = try NoiseSchedule(config, scheduler: name, rescaleOption: false)
        predictionType = try r.prediction(allowed: [.epsilon, .vPrediction])
        timestepSpacing = try r.spacing(default: .leading)
        skipPrkSteps = config.skipPrkSteps ?? false
        stepsOffset = config.stepsOffset ?? 0
        finalAlphaCumprod = (config.setAlphaToOne ?? false) ? 1 : schedule.alphasCumprodValues[0]
    }

    public func setTimesteps(_ count: Int) throws {
        let n = schedule.numTrainTimesteps
        let reader = ConfigReader(config: config, scheduler: "PNDMScheduler")
        try reader.checkStepCount(count, trainSteps: n)
        guard skipPrkSteps || count >= pndmOrder else {
            throw SchedulerError.invalidState("PNDMScheduler: Runge–Kutta warm-up needs at least \(pndmOrder) steps, got \(count)")
        }
        // `_timesteps`, ascending.
        let base: [Int]
        switch timestepSpacing {
        case .linspace: base = NumPy.linspace(0, Double(n - 1), count).map { Int(NumPy.round($0)) }
        case .leading: base = (0..<count).map { $0 * (n / count) + stepsOffset }
        case .trailing:
            base = NumPy.arange(Double(n), 0, -Double(n) / Double(count)).reversed().map { Int(NumPy.round($0)) - 1 }
        }
        let plms: [Int]
        if skipPrkSteps {
            // Every timestep but the last, the second-to-last again, then the last, all reversed: the
            // repeat lets the first PLMS step take its two-evaluation warm-up at one timestep.
            var ts = Array(base.dropLast())
            if base.count >= 2 { ts.append(base[base.count - 2]) }
            ts.append(base[base.count - 1])
            prkTimesteps = []
            plms = ts.reversed()
        } else {
            // The last four timesteps, each with its half-step midpoint, as RK4's evaluation points.
            let half = n / count / 2
            let tail = base.suffix(pndmOrder)
            let pairs = tail.flatMap { [$0, $0 + half] }
            var repeated = pairs.dropLast().flatMap { [$0, $0] }
            repeated = Array(repeated.dropFirst().dropLast())
            prkTimesteps = repeated.reversed()
            plms = base.dropLast(3).reversed()
        }
        timesteps = (prkTimesteps + plms).map(Double.init)
        numInferenceSteps = count
        ets = []
        counter = 0
        curSample = nil
        curModelOutput = nil
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor { sample }

    public func step(modelOutput: Tensor, timestep: Double, sample: Tensor, generator: NoiseGenerator?) throws -> Tensor {
        guard numInferenceSteps != nil else {
            throw SchedulerError.invalidState("PNDMScheduler: call setTimesteps before step")
        }
        let t = try integerTimestep(timestep, "PNDMScheduler", limit: schedule.numTrainTimesteps)
        if counter < prkTimesteps.count && !skipPrkSteps {
            return try stepPRK(modelOutput, t, sample)
        }
        return try stepPLMS(modelOutput, t, sample)
    }

    /// Fourth-order Runge–Kutta warm-up: four evaluations per timestep (weights 1/6, 1/3, 1/3, 1/6).
    private func stepPRK(_ modelOutput: Tensor, _ timestep: Int, _ sample: Tensor) throws -> Tensor {
        guard let count = numInferenceSteps else { throw SchedulerError.invalidState("PNDMScheduler: no schedule") }
        let n = schedule.numTrainTimesteps
        let diffToPrev = counter % 2 == 1 ? 0 : n / count / 2
        let prevT = timestep - diffToPrev
        let t = prkTimesteps[counter / 4 * 4]
        var output = modelOutput
        switch counter % 4 {
        case 0:
            curModelOutput = try accumulate(modelOutput * (1.0 / 6.0))
            ets.append(modelOutput)
            curSample = sample
        case 1, 2:
            curModelOutput = try accumulate(modelOutput * (1.0 / 3.0))
        default:
            output = try accumulate(modelOutput * (1.0 / 6.0))
            curModelOutput = nil
        }
        let prev = try previousSample(curSample ?? sample, t, prevT, output)
        counter += 1
        return prev
    }

    /// `cur_model_output + x`, where diffusers' accumulator starts as the integer 0.
    private func accumulate(_ x: Tensor) throws -> Tensor {
        guard let current = curModelOutput else { return x }
        return try current + x
    }

    /// Linear multistep (Adams–Bashforth) over the last four model outputs.
    private func stepPLMS(_ modelOutput: Tensor, _ timestep: Int, _ sample: Tensor) throws -> Tensor {
        guard let count = numInferenceSteps else { throw SchedulerError.invalidState("PNDMScheduler: no schedule") }
        if !skipPrkSteps && ets.count < 3 {
            throw SchedulerError.invalidState("PNDMScheduler: PLMS steps need the 12 Runge–Kutta steps first")
        }
        let stride = schedule.numTrainTimesteps / count
        var t = timestep, prevT = timestep - stride
        if counter != 1 {
            ets = Array(ets.suffix(3))
            ets.append(modelOutput)
        } else {
            // The second call re-evaluates the first timestep: step from it again.
            prevT = timestep
            t = timestep + stride
        }
        var x = sample
        let output: Tensor
        let e = ets
        if e.count == 1 && counter == 0 {
            output = modelOutput
            curSample = sample
        } else if e.count == 1 && counter == 1 {
            output = try (modelOutput + e[0]) / 2
            guard let saved = curSample else { throw SchedulerError.invalidState("PNDMScheduler: lost warm-up sample") }
            x = saved
            curSample = nil
        } else if e.count == 2 {
            output = try (e[1] * 3 - e[0]) / 2
        } else if e.count == 3 {
            output = try (e[2] * 23 - e[1] * 16 + e[0] * 5) / 12
        } else {
            output = try (e[3] * 55 - e[2] * 59 + e[1] * 37 - e[0] * 9) * (1.0 / 24.0)
        }
        let prev = try previousSample(x, t, prevT, output)
        counter += 1
        return prev
    }

    public func addNoise(_ original: Tensor, noise: Tensor, timesteps: [Double]) throws -> Tensor {
        let ids = try timesteps.map { try integerTimestep($0, "PNDMScheduler", limit: schedule.numTrainTimesteps) }
        return try schedule.addNoise(original, noise: noise, timesteps: Tensor(ids))
    }

    /// `_get_prev_sample`: formula (9) of the PNDM paper, in float32 scalars.
    private func previousSample(_ sample: Tensor, _ t: Int, _ prevT: Int, _ modelOutput: Tensor) throws -> Tensor {
        let acp = schedule.alphasCumprodValues
        guard t >= 0, t < acp.count, prevT < acp.count else {
            throw SchedulerError.invalidState("PNDMScheduler: timestep \(t) → \(prevT) is outside the training schedule")
        }
        let alphaProdT = acp[t]
        let alphaProdTPrev = prevT >= 0 ? acp[prevT] : finalAlphaCumprod
        let betaProdT = 1 - alphaProdT
        let betaProdTPrev = 1 - alphaProdTPrev
        var output = modelOutput
        if predictionType == .vPrediction {
            output = try modelOutput * Double(sqrt32(alphaProdT)) + sample * Double(sqrt32(betaProdT))
        }
        let sampleCoeff = try sqrt32(alphaProdTPrev / alphaProdT)
        let denominator = try alphaProdT * sqrt32(betaProdTPrev) + sqrt32(alphaProdT * betaProdT * alphaProdTPrev)
        return try sample * Double(sampleCoeff) - output * Double(alphaProdTPrev - alphaProdT) / Double(denominator)
    }
}
