// diffusers schedulers/scheduling_dpmsolver_multistep.py: DPMSolverMultistepScheduler (Lu et al. 2022,
// DPM-Solver++), the sampler A1111 calls "DPM++ 2M" ("Karras" with use_karras_sigmas) and, with
// algorithm_type "sde-dpmsolver++", "DPM++ 2M SDE".
import Foundation
import Torch

public final class DPMSolverMultistepScheduler: IndexedScheduler {
    public enum AlgorithmType: String, Sendable {
        case dpmsolverPlusPlus = "dpmsolver++"
        case sdeDpmsolverPlusPlus = "sde-dpmsolver++"
    }
    public enum SolverType: String, Sendable { case midpoint, heun }

    public let config: SchedulerConfig
    public let schedule: NoiseSchedule
    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    public let algorithmType: AlgorithmType
    public let solverType: SolverType
    public let solverOrder: Int
    public let lowerOrderFinal: Bool
    public let eulerAtFinal: Bool
    public let useKarrasSigmas: Bool
    public let finalSigmaIsZero: Bool
    public let lambdaMinClipped: Double
    public let stepsOffset: Int
    public private(set) var timesteps: [Double]
    public private(set) var sigmaValues: [Float]
    public private(set) var numInferenceSteps: Int?
    public var sigmas: [Float]? { sigmaValues }
    public var timestepDType: DType { .int64 }
    public var initNoiseSigma: Double { 1 }
    public var numTrainTimesteps: Int { schedule.numTrainTimesteps }
    public private(set) var stepIndex: Int?
    public var beginIndex: Int?

    private let trainingSigmas: [Float]
    private let logSigmas: [Float]
    /// log(α_t) − log(σ_t) over the training timesteps, flipped to ascending (float32).
    private let lambdasAscending: [Float]
    private var modelOutputs: [Tensor?]
    private var lowerOrderNums = 0

    public init(config: SchedulerConfig = SchedulerConfig()) throws {
        let name = "DPMSolverMultistepScheduler"
        let r = ConfigReader(config: config, scheduler: name)
        self.config = config
        schedule = try NoiseSchedule(config, scheduler: name, terminalAlphaCumprod: true)
        predictionType = try r.prediction(allowed: [.epsilon, .vPrediction, .sample])
        timestepSpacing = try r.spacing(default: .linspace)
        // diffusers maps the retired "deis" onto dpmsolver++ and the retired solver types onto midpoint.
        let algorithm = config.algorithmType == "deis" ? "dpmsolver++" : config.algorithmType
        algorithmType = try r.choice("algorithm_type", algorithm, default: AlgorithmType.dpmsolverPlusPlus,
                                     allowed: [.dpmsolverPlusPlus, .sdeDpmsolverPlusPlus])
        let solver = ["logrho", "bh1", "bh2"].contains(config.solverType ?? "") ? "midpoint" : config.solverType
        solverType = try r.choice("solver_type", solver, default: SolverType.midpoint, allowed: [.midpoint, .heun])
        solverOrder = config.solverOrder ?? 2
        guard (1...3).contains(solverOrder) else {
            throw SchedulerError.unsupported(name, "solver_order", "\(solverOrder)", ["1", "2", "3"])
        }
        lowerOrderFinal = config.lowerOrderFinal ?? true
        eulerAtFinal = config.eulerAtFinal ?? false
        useKarrasSigmas = config.useKarrasSigmas ?? false
        finalSigmaIsZero = try r.string("final_sigmas_type", config.finalSigmasType, default: "zero",
                                        allowed: ["zero", "sigma_min"]) == "zero"
        lambdaMinClipped = config.lambdaMinClipped ?? -Double.infinity
        stepsOffset = config.stepsOffset ?? 0
        try r.require("thresholding", config.thresholding, equals: false)
        for (key, value) in [("use_exponential_sigmas", config.useExponentialSigmas), ("use_beta_sigmas", config.useBetaSigmas),
                             ("use_lu_lambdas", config.useLuLambdas), ("use_flow_sigmas", config.useFlowSigmas)] {
            try r.require(key, value, equals: false)
        }
        if let variance = config.varianceType {
            throw SchedulerError.unsupported(name, "variance_type", variance, ["null"])
        }

        trainingSigmas = try schedule.trainingSigmas()
        logSigmas = try float32Log(trainingSigmas)
        let acp = schedule.alphasCumprod
        lambdasAscending = try (acp.sqrt().log() - (1.0 - acp).sqrt().log()).flip([0]).toArray(Float.self)
        let n = schedule.numTrainTimesteps
        timesteps = NumPy.linspace(0, Double(n - 1), n).reversed().map { Double(Float($0)) }
        sigmaValues = trainingSigmas
        modelOutputs = Array(repeating: nil, count: solverOrder)
    }

    public func setTimesteps(_ count: Int) throws {
        let n = schedule.numTrainTimesteps
        try ConfigReader(config: config, scheduler: "DPMSolverMultistepScheduler").checkStepCount(count, trainSteps: n)
        // `lambda_min_clipped` cuts the noisiest end of the schedule (searchsorted, left side).
        let clipped = lambdasAscending.filter { Double($0) < lambdaMinClipped }.count
        let last = n - clipped
        var ts: [Double]
        switch timestepSpacing {
        case .linspace:
            ts = NumPy.linspace(0, Double(last - 1), count + 1).map(NumPy.round).reversed().dropLast()
        case .leading:
            let ratio = last / (count + 1)
            ts = (0...count).reversed().dropLast().map { Double($0 * ratio + stepsOffset) }
        case .trailing:
            ts = NumPy.arange(Double(last), 0, -(Double(n) / Double(count))).map { NumPy.round($0) - 1 }
        }
        var sigmas: [Double]
        if useKarrasSigmas {
            // sigma_min/sigma_max are no arguments of this class, but diffusers keeps every key of the file
            // in its config and reads them from there when present.
            sigmas = karrasSigmas(sigmaMin: config.sigmaMin ?? Double(trainingSigmas[0]),
                                  sigmaMax: config.sigmaMax ?? Double(trainingSigmas[n - 1]), count: count)
            // Rounded to integers, except for the cosine schedule (then truncated by the int64 cast).
            let cosine = config.betaSchedule == BetaSchedule.squaredcosCapV2.rawValue
            ts = sigmas.map { sigma in
                let t = sigmaToT(sigma, logSigmas: logSigmas)
                return cosine ? t.rounded(.towardZero) : NumPy.round(t)
            }
        } else {
            sigmas = NumPy.interpOnIndexGrid(ts, trainingSigmas.map(Double.init))
        }
        let a0 = schedule.alphasCumprodValues[0]
        let final: Float = try finalSigmaIsZero ? 0 : sqrt32((1 - a0) / a0)
        sigmaValues = sigmas.map { Float($0) } + [final]
        timesteps = ts
        numInferenceSteps = ts.count
        modelOutputs = Array(repeating: nil, count: solverOrder)
        lowerOrderNums = 0
        stepIndex = nil
        beginIndex = nil
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor { sample }

    /// α_t = 1/√(σ² + 1), σ_t = σ·α_t (the VP parameterisation of a VE σ), float32.
    private func alphaSigma(_ sigma: Float) throws -> (alpha: Float, sigma: Float) {
        let alpha = try 1 / sqrt32(sigma * sigma + 1)
        return (alpha, sigma * alpha)
    }
    private func lambda(_ p: (alpha: Float, sigma: Float)) throws -> Float {
        try log32(p.alpha) - log32(p.sigma)
    }

    public func step(modelOutput: Tensor, timestep: Double, sample: Tensor, generator: NoiseGenerator?) throws -> Tensor {
        guard numInferenceSteps != nil else {
            throw SchedulerError.invalidState("DPMSolverMultistepScheduler: call setTimesteps before step")
        }
        if stepIndex == nil {
            // No match means "the last step" here (diffusers' DPM-Solver rule).
            stepIndex = beginIndex ?? indexForTimestep(timestep, in: timesteps) ?? (timesteps.count - 1)
        }
        guard let i = stepIndex, i + 1 < sigmaValues.count else {
            throw SchedulerError.invalidState("DPMSolverMultistepScheduler: stepped past the end of the schedule")
        }
        let n = timesteps.count
        let finalStep = i == n - 1 && (eulerAtFinal || (lowerOrderFinal && n < 15) || finalSigmaIsZero)
        let secondToLast = i == n - 2 && lowerOrderFinal && n < 15

        // The data prediction x0 (dpmsolver++ works in x0 space).
        let (alphaT, sigmaT) = try alphaSigma(sigmaValues[i])
        let x0: Tensor
        switch predictionType {
        case .epsilon: x0 = try (sample - modelOutput * Double(sigmaT)) / Double(alphaT)
        case .sample: x0 = modelOutput
        case .vPrediction: x0 = try sample * Double(alphaT) - modelOutput * Double(sigmaT)
        }
        modelOutputs.removeFirst()
        modelOutputs.append(x0)

        let x = try sample.to(.float32)
        let noise = algorithmType == .sdeDpmsolverPlusPlus
            ? try randnTensor(x0.shape, generator: generator, device: x0.device, dtype: .float32) : nil
        let prev: Tensor
        if solverOrder == 1 || lowerOrderNums < 1 || finalStep {
            prev = try firstOrder(x0, x, i, noise)
        } else if solverOrder == 2 || lowerOrderNums < 2 || secondToLast {
            prev = try secondOrder(x, i, noise)
        } else {
            prev = try thirdOrder(x, i, noise)
        }
        lowerOrderNums = Swift.min(lowerOrderNums + 1, solverOrder)
        stepIndex = i + 1
        return try prev.to(x0.dtype)
    }

    /// α_t·x + σ_t·ε at each timestep's σ (diffusers' `add_noise`, in `original`'s dtype); an unknown
    /// timestep means the last step, as in `step`.
    public func addNoise(_ original: Tensor, noise: Tensor, timesteps: [Double]) throws -> Tensor {
        let indices = try noiseLevelIndices(timesteps, schedule: self.timesteps, stepIndex: stepIndex,
                                            beginIndex: beginIndex) { _ in self.timesteps.count - 1 }
        let sigma = try batchColumn(indices.map { sigmaValues[$0] }, like: original)
        let alphaT = try 1 / (sigma.pow(2) + 1).pow(0.5)
        return try alphaT * original + (sigma * alphaT) * noise
    }

    private func history(_ back: Int) throws -> Tensor {
        guard let m = modelOutputs[modelOutputs.count - 1 - back] else {
            throw SchedulerError.invalidState("DPMSolverMultistepScheduler: missing model output history")
        }
        return m
    }

    /// `dpm_solver_first_order_update` (DDIM in λ).
    private func firstOrder(_ x0: Tensor, _ x: Tensor, _ i: Int, _ noise: Tensor?) throws -> Tensor {
        let t = try alphaSigma(sigmaValues[i + 1]), s = try alphaSigma(sigmaValues[i])
        let h = try lambda(t) - lambda(s)
        if let noise {
            let e2 = try exp32(-2.0 * h)
            return try x * Double(t.sigma / s.sigma * exp32(-h)) + x0 * Double(t.alpha * (1 - e2))
                + noise * Double(t.sigma * sqrt32(1.0 - e2))
        }
        return try x * Double(t.sigma / s.sigma) - x0 * Double(t.alpha * (exp32(-h) - 1.0))
    }

    /// `multistep_dpm_solver_second_order_update`.
    private func secondOrder(_ x: Tensor, _ i: Int, _ noise: Tensor?) throws -> Tensor {
        let t = try alphaSigma(sigmaValues[i + 1]), s0 = try alphaSigma(sigmaValues[i])
        let s1 = try alphaSigma(sigmaValues[i - 1])
        let lt = try lambda(t), l0 = try lambda(s0), l1 = try lambda(s1)
        let m0 = try history(0), m1 = try history(1)
        let h = lt - l0, h0 = l0 - l1
        let r0 = h0 / h
        let d0 = m0, d1 = try (m0 - m1) * Double(1.0 / r0)
        if let noise {
            let e = try exp32(-h), e2 = try exp32(-2.0 * h)
            let c1 = solverType == .midpoint ? 0.5 * (t.alpha * (1 - e2)) : t.alpha * ((1.0 - e2) / (-2.0 * h) + 1.0)
            return try x * Double(t.sigma / s0.sigma * e) + d0 * Double(t.alpha * (1 - e2)) + d1 * Double(c1)
                + noise * Double(t.sigma * sqrt32(1.0 - e2))
        }
        let em1 = try exp32(-h) - 1.0
        let base = try x * Double(t.sigma / s0.sigma) - d0 * Double(t.alpha * em1)
        switch solverType {
        case .midpoint: return try base - d1 * Double(0.5 * (t.alpha * em1))
        case .heun: return try base + d1 * Double(t.alpha * (em1 / h + 1.0))
        }
    }

    /// `multistep_dpm_solver_third_order_update`.
    private func thirdOrder(_ x: Tensor, _ i: Int, _ noise: Tensor?) throws -> Tensor {
        let t = try alphaSigma(sigmaValues[i + 1]), s0 = try alphaSigma(sigmaValues[i])
        let s1 = try alphaSigma(sigmaValues[i - 1]), s2 = try alphaSigma(sigmaValues[i - 2])
        let lt = try lambda(t), l0 = try lambda(s0), l1 = try lambda(s1), l2 = try lambda(s2)
        let m0 = try history(0), m1 = try history(1), m2 = try history(2)
        let h = lt - l0, h0 = l0 - l1, h1 = l1 - l2
        let r0 = h0 / h, r1 = h1 / h
        let d0 = m0
        let d10 = try (m0 - m1) * Double(1.0 / r0), d11 = try (m1 - m2) * Double(1.0 / r1)
        let d1 = try d10 + (d10 - d11) * Double(r0 / (r0 + r1))
        let d2 = try (d10 - d11) * Double(1.0 / (r0 + r1))
        if let noise {
            let e = try exp32(-h), e2 = try exp32(-2.0 * h)
            let c2 = t.alpha * ((1.0 - e2 - 2.0 * h) / ((2.0 * h) * (2.0 * h)) - 0.5)
            return try x * Double(t.sigma / s0.sigma * e) + d0 * Double(t.alpha * (1.0 - e2))
                + d1 * Double(t.alpha * ((1.0 - e2) / (-2.0 * h) + 1.0)) + d2 * Double(c2)
                + noise * Double(t.sigma * sqrt32(1.0 - e2))
        }
        let e = try exp32(-h)
        return try x * Double(t.sigma / s0.sigma) - d0 * Double(t.alpha * (e - 1.0))
            + d1 * Double(t.alpha * ((e - 1.0) / h + 1.0)) - d2 * Double(t.alpha * ((e - 1.0 + h) / (h * h) - 0.5))
    }
}
