// diffusers schedulers/scheduling_unipc_multistep.py: UniPCMultistepScheduler (Zhao et al. 2023): a
// multistep predictor (UniP) in λ = log(α/σ), and a corrector (UniC) that refines each new sample with the
// model output evaluated at it before the next prediction, at no extra model evaluation.
import Foundation
import Torch

public final class UniPCMultistepScheduler: IndexedScheduler {
    /// B(h) of the paper: `bh1` is h, `bh2` (default) is e^h − 1.
    public enum SolverType: String, Sendable { case bh1, bh2 }

    public let config: SchedulerConfig
    public let schedule: NoiseSchedule
    public let predictionType: PredictionType
    public let timestepSpacing: TimestepSpacing
    public let solverType: SolverType
    public let solverOrder: Int
    /// Work with data predictions (UniPC's default and the paper's "x0" variant) instead of noise predictions.
    public let predictX0: Bool
    public let lowerOrderFinal: Bool
    /// Step indices whose corrector is skipped (diffusers' `disable_corrector`).
    public let disableCorrector: Set<Int>
    public let useKarrasSigmas: Bool
    public let finalSigmaIsZero: Bool
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
    /// The converted model outputs of the last `solverOrder` steps, newest last.
    private var modelOutputs: [Tensor?]
    private var lowerOrderNums = 0
    /// The sample the last prediction started from, and that prediction's order: the corrector's inputs.
    private var lastSample: Tensor?
    private var lastOrder = 1
    private static let name = "UniPCMultistepScheduler"

    public init(config: SchedulerConfig = SchedulerConfig()) throws {
        let r = ConfigReader(config: config, scheduler: Self.name)
        self.config = config
        schedule = try NoiseSchedule(config, scheduler: Self.name, terminalAlphaCumprod: true)
        predictionType = try r.prediction(allowed: [.epsilon, .vPrediction, .sample])
        timestepSpacing = try r.spacing(default: .linspace)
        // diffusers maps the DPM-Solver solver types onto bh2.
        let solver = ["midpoint", "heun", "logrho"].contains(config.solverType ?? "") ? "bh2" : config.solverType
        solverType = try r.choice("solver_type", solver, default: SolverType.bh2, allowed: [.bh1, .bh2])
        solverOrder = config.solverOrder ?? 2
        guard (1...3).contains(solverOrder) else {
            throw SchedulerError.unsupported(Self.name, "solver_order", "\(solverOrder)", ["1", "2", "3"])
        }
        predictX0 = config.predictX0 ?? true
        lowerOrderFinal = config.lowerOrderFinal ?? true
        disableCorrector = Set(config.disableCorrector ?? [])
        useKarrasSigmas = config.useKarrasSigmas ?? false
        finalSigmaIsZero = try r.string("final_sigmas_type", config.finalSigmasType, default: "zero",
                                        allowed: ["zero", "sigma_min"]) == "zero"
        stepsOffset = config.stepsOffset ?? 0
        try r.require("thresholding", config.thresholding, equals: false)
        for (key, value) in [("use_exponential_sigmas", config.useExponentialSigmas), ("use_beta_sigmas", config.useBetaSigmas),
                             ("use_flow_sigmas", config.useFlowSigmas), ("use_dynamic_shifting", config.useDynamicShifting)] {
            try r.require(key, value, equals: false)
        }
        trainingSigmas = try schedule.trainingSigmas()
        logSigmas = try float32Log(trainingSigmas)
        let n = schedule.numTrainTimesteps
        timesteps = NumPy.linspace(0, Double(n - 1), n).reversed().map { Double(Float($0)) }
        sigmaValues = trainingSigmas
        modelOutputs = Array(repeating: nil, count: solverOrder)
    }

    public func setTimesteps(_ count: Int) throws {
        let n = schedule.numTrainTimesteps
        try ConfigReader(config: config, scheduler: Self.name).checkStepCount(count, trainSteps: n)
        var ts: [Double]
        switch timestepSpacing {
        case .linspace:
            ts = NumPy.linspace(0, Double(n - 1), count + 1).map(NumPy.round).reversed().dropLast()
        case .leading:
            let ratio = n / (count + 1)
            ts = (0...count).reversed().dropLast().map { Double($0 * ratio + stepsOffset) }
        case .trailing:
            ts = NumPy.arange(Double(n), 0, -(Double(n) / Double(count))).map { NumPy.round($0) - 1 }
        }
        let sigmas: [Double]
        let final: Float
        if useKarrasSigmas {
            // sigma_min/sigma_max are arguments of this class, defaulting to the training schedule's ends.
            sigmas = karrasSigmas(sigmaMin: config.sigmaMin ?? Double(trainingSigmas[0]),
                                  sigmaMax: config.sigmaMax ?? Double(trainingSigmas[n - 1]), count: count)
            ts = sigmas.map { NumPy.round(sigmaToT($0, logSigmas: logSigmas)) }
            final = finalSigmaIsZero ? 0 : Float(sigmas[sigmas.count - 1])
        } else {
            sigmas = NumPy.interpOnIndexGrid(ts, trainingSigmas.map(Double.init))
            let a0 = schedule.alphasCumprodValues[0]
            final = try finalSigmaIsZero ? 0 : sqrt32((1 - a0) / a0)
        }
        sigmaValues = sigmas.map { Float($0) } + [final]
        timesteps = ts
        numInferenceSteps = ts.count
        modelOutputs = Array(repeating: nil, count: solverOrder)
        lowerOrderNums = 0
        lastSample = nil
        stepIndex = nil
        beginIndex = nil
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor { sample }

    /// α_t = 1/√(σ² + 1), σ_t = σ·α_t (float32), and λ = log α_t − log σ_t.
    private func alphaSigma(_ index: Int) throws -> (alpha: Float, sigma: Float, lambda: Float) {
        let sigma = sigmaValues[index]
        let alpha = try 1 / sqrt32(sigma * sigma + 1)
        return (alpha, sigma * alpha, try log32(alpha) - log32(sigma * alpha))
    }

    /// `convert_model_output`: the data prediction x0 (`predict_x0`) or the noise prediction ε.
    private func converted(_ modelOutput: Tensor, sample: Tensor, at i: Int) throws -> Tensor {
        let (alpha, sigma, _) = try alphaSigma(i)
        switch (predictX0, predictionType) {
        case (true, .epsilon): return try (sample - modelOutput * Double(sigma)) / Double(alpha)
        case (true, .sample): return modelOutput
        case (true, .vPrediction): return try sample * Double(alpha) - modelOutput * Double(sigma)
        case (false, .epsilon): return modelOutput
        case (false, .sample): return try (sample - modelOutput * Double(alpha)) / Double(sigma)
        case (false, .vPrediction): return try modelOutput * Double(alpha) + sample * Double(sigma)
        }
    }

    public func step(modelOutput: Tensor, timestep: Double, sample: Tensor, generator: NoiseGenerator?) throws -> Tensor {
        guard numInferenceSteps != nil else {
            throw SchedulerError.invalidState("\(Self.name): call setTimesteps before step")
        }
        if stepIndex == nil {
            // No match means "the last step" here (diffusers' UniPC rule).
            stepIndex = beginIndex ?? indexForTimestep(timestep, in: timesteps) ?? (timesteps.count - 1)
        }
        guard let i = stepIndex, i + 1 < sigmaValues.count else {
            throw SchedulerError.invalidState("\(Self.name): stepped past the end of the schedule")
        }
        let output = try converted(modelOutput, sample: sample, at: i)
        var x = sample
        if i > 0, !disableCorrector.contains(i - 1), let last = lastSample {
            x = try correct(from: last, with: output, at: i, order: lastOrder)
        }
        modelOutputs.removeFirst()
        modelOutputs.append(output)

        var order = lowerOrderFinal ? Swift.min(solverOrder, timesteps.count - i) : solverOrder
        order = Swift.min(order, lowerOrderNums + 1)  // warm-up: no more history than steps taken
        lastOrder = order
        lastSample = x
        let prev = try predict(x, at: i, order: order)
        lowerOrderNums = Swift.min(lowerOrderNums + 1, solverOrder)
        stepIndex = i + 1
        return prev
    }

    /// The coefficients UniP and UniC share for a step from index `s0` to `t`, with the earlier outputs at
    /// `history` (index, output), newest first: the scale of x, of m0, of the correction terms, the
    /// differences D1 (one per earlier output) and the linear system R·ρ = b over the ratios r_k.
    private struct Coefficients {
        var xScale: Float, m0Scale: Float, correctionScale: Float
        var differences: [Tensor]
        var r: Tensor, b: Tensor
    }

    private func coefficients(from s0: Int, to t: Int, m0: Tensor, history: [(Int, Tensor)],
                              order: Int) throws -> Coefficients {
        let pt = try alphaSigma(t), p0 = try alphaSigma(s0)
        let h = pt.lambda - p0.lambda
        var rks: [Float] = []
        var differences: [Tensor] = []
        for (index, output) in history {
            let rk = try (alphaSigma(index).lambda - p0.lambda) / h
            rks.append(rk)
            differences.append(try (output - m0) / Double(rk))
        }
        rks.append(1)
        let hh = predictX0 ? -h : h
        let hPhi1 = try expMinusOne32(hh)  // h·φ₁(h) = e^h − 1
        var hPhiK = hPhi1 / hh - 1
        let bh = solverType == .bh1 ? hh : try expMinusOne32(hh)
        let rksTensor = try Tensor(rks)
        var rows: [Tensor] = []
        var b: [Float] = []
        var factorial = 1
        for i in 1...order {
            rows.append(try rksTensor.pow(Double(i - 1)))
            b.append(hPhiK * Float(factorial) / bh)
            factorial *= i + 1
            hPhiK = hPhiK / hh - Float(1.0 / Double(factorial))
        }
        let xScale = predictX0 ? pt.sigma / p0.sigma : pt.alpha / p0.alpha
        let m0Scale = (predictX0 ? pt.alpha : pt.sigma) * hPhi1
        let correctionScale = (predictX0 ? pt.alpha : pt.sigma) * bh
        return Coefficients(xScale: xScale, m0Scale: m0Scale, correctionScale: correctionScale,
                            differences: differences, r: try Tensor.stack(rows), b: try Tensor(b))
    }

    /// Σ_k ρ_k·D1_k as diffusers contracts it (`einsum("k,bkc...->bc...")`).
    private func combination(_ rhos: Tensor, _ differences: [Tensor], like x: Tensor) throws -> Tensor {
        try Tensor.einsum("k,bkc...->bc...", [rhos.to(x.device, dtype: x.dtype), Tensor.stack(differences, dim: 1)])
    }

    /// `multistep_uni_p_bh_update`: the sample at the next timestep.
    private func predict(_ x: Tensor, at i: Int, order: Int) throws -> Tensor {
        guard let m0 = modelOutputs[modelOutputs.count - 1] else {
            throw SchedulerError.invalidState("\(Self.name): missing model output history")
        }
        let history = try (1..<order).map { k -> (Int, Tensor) in
            guard let m = modelOutputs[modelOutputs.count - 1 - k] else {
                throw SchedulerError.invalidState("\(Self.name): missing model output history")
            }
            return (i - k, m)
        }
        let c = try coefficients(from: i, to: i + 1, m0: m0, history: history, order: order)
        var prev = try x * Double(c.xScale) - m0 * Double(c.m0Scale)
        if !c.differences.isEmpty {
            // Order 2 takes ρ = ½ outright; higher orders solve the system without its last row and column.
            let rhos = order == 2 ? try Tensor([Float(0.5)])
                : try c.r.narrow(dim: 0, start: 0, length: order - 1).narrow(dim: 1, start: 0, length: order - 1)
                    .linalgSolve(c.b.narrow(dim: 0, start: 0, length: order - 1))
            prev = try prev - combination(rhos, c.differences, like: x) * Double(c.correctionScale)
        }
        return try prev.to(x.dtype)
    }

    /// `multistep_uni_c_bh_update`: the sample at step `i`, predicted from `last`, again, now with the model
    /// output evaluated at the prediction.
    private func correct(from last: Tensor, with output: Tensor, at i: Int, order: Int) throws -> Tensor {
        guard let m0 = modelOutputs[modelOutputs.count - 1] else {
            throw SchedulerError.invalidState("\(Self.name): missing model output history")
        }
        let history = try (1..<order).map { k -> (Int, Tensor) in
            guard let m = modelOutputs[modelOutputs.count - 1 - k] else {
                throw SchedulerError.invalidState("\(Self.name): missing model output history")
            }
            return (i - (k + 1), m)
        }
        let c = try coefficients(from: i - 1, to: i, m0: m0, history: history, order: order)
        let rhos = order == 1 ? try Tensor([Float(0.5)]) : try c.r.linalgSolve(c.b)
        let last_ = try Float(rhos.select(dim: 0, index: order - 1).item())
        var correction = try (output - m0) * Double(last_)
        if !c.differences.isEmpty {
            correction = try combination(rhos.narrow(dim: 0, start: 0, length: order - 1), c.differences, like: last)
                + correction
        }
        let base = try last * Double(c.xScale) - m0 * Double(c.m0Scale)
        return try (base - correction * Double(c.correctionScale)).to(last.dtype)
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
}
