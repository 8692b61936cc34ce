// diffusers configuration_utils.py (ConfigMixin.from_config for schedulers) and schedulers/scheduling_utils.py:
// the scheduler_config.json every scheduler is built from, the common protocol, and the class registry.
import Foundation
import Torch

/// `scheduler/scheduler_config.json` as written, every key optional. A key the file leaves out takes the
/// default of the class being built (as `X.from_config(config)` does), so the same file gives DDIM
/// "leading" spacing and Euler "linspace"; keys a class has no use for are ignored, as diffusers does.
public struct SchedulerConfig: Codable, Equatable, Sendable {
    /// `_class_name`: the scheduler the file was saved from (SD1.5: "PNDMScheduler").
    public var className: String?
    public var numTrainTimesteps: Int?
    public var betaStart: Double?
    public var betaEnd: Double?
    public var betaSchedule: String?
    public var trainedBetas: [Double]?
    public var predictionType: String?
    public var timestepSpacing: String?
    public var stepsOffset: Int?
    public var rescaleBetasZeroSnr: Bool?
    public var thresholding: Bool?
    // DDPM / DDIM / PNDM
    public var clipSample: Bool?
    public var clipSampleRange: Double?
    public var setAlphaToOne: Bool?
    public var skipPrkSteps: Bool?
    public var varianceType: String?
    // Euler / DPM-Solver
    public var useKarrasSigmas: Bool?
    public var useExponentialSigmas: Bool?
    public var useBetaSigmas: Bool?
    public var useLuLambdas: Bool?
    public var useFlowSigmas: Bool?
    public var sigmaMin: Double?
    public var sigmaMax: Double?
    public var interpolationType: String?
    public var timestepType: String?
    public var finalSigmasType: String?
    public var solverOrder: Int?
    public var algorithmType: String?
    public var solverType: String?
    public var lowerOrderFinal: Bool?
    public var eulerAtFinal: Bool?
    public var lambdaMinClipped: Double?
    // UniPC
    public var predictX0: Bool?
    public var disableCorrector: [Int]?
    public var useDynamicShifting: Bool?

    enum CodingKeys: String, CodingKey {
        case className = "_class_name", numTrainTimesteps = "num_train_timesteps", betaStart = "beta_start"
        case betaEnd = "beta_end", betaSchedule = "beta_schedule", trainedBetas = "trained_betas"
        case predictionType = "prediction_type", timestepSpacing = "timestep_spacing", stepsOffset = "steps_offset"
        case rescaleBetasZeroSnr = "rescale_betas_zero_snr", thresholding, clipSample = "clip_sample"
        case clipSampleRange = "clip_sample_range", setAlphaToOne = "set_alpha_to_one", skipPrkSteps = "skip_prk_steps"
        case varianceType = "variance_type", useKarrasSigmas = "use_karras_sigmas"
        case useExponentialSigmas = "use_exponential_sigmas", useBetaSigmas = "use_beta_sigmas"
        case useLuLambdas = "use_lu_lambdas", useFlowSigmas = "use_flow_sigmas", sigmaMin = "sigma_min"
        case sigmaMax = "sigma_max", interpolationType = "interpolation_type", timestepType = "timestep_type"
        case finalSigmasType = "final_sigmas_type", solverOrder = "solver_order", algorithmType = "algorithm_type"
        case solverType = "solver_type", lowerOrderFinal = "lower_order_final", eulerAtFinal = "euler_at_final"
        case lambdaMinClipped = "lambda_min_clipped", predictX0 = "predict_x0", disableCorrector = "disable_corrector"
        case useDynamicShifting = "use_dynamic_shifting"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // diffusers passes an explicit null on to the class, where a boolean option reads it as false
        // (`clip_sample: null` does not clip, although the default is true); other nulls mean "default".
        func flag(_ key: CodingKeys) throws -> Bool? {
            c.contains(key) ? try c.decodeIfPresent(Bool.self, forKey: key) ?? false : nil
        }
        className = try c.decodeIfPresent(String.self, forKey: .className)
        numTrainTimesteps = try c.decodeIfPresent(Int.self, forKey: .numTrainTimesteps)
        betaStart = try c.decodeIfPresent(Double.self, forKey: .betaStart)
        betaEnd = try c.decodeIfPresent(Double.self, forKey: .betaEnd)
        betaSchedule = try c.decodeIfPresent(String.self, forKey: .betaSchedule)
        trainedBetas = try c.decodeIfPresent([Double].self, forKey: .trainedBetas)
        predictionType = try c.decodeIfPresent(String.self, forKey: .predictionType)
        timestepSpacing = try c.decodeIfPresent(String.self, forKey: .timestepSpacing)
        stepsOffset = try c.decodeIfPresent(Int.self, forKey: .stepsOffset)
        rescaleBetasZeroSnr = try flag(.rescaleBetasZeroSnr)
        thresholding = try flag(.thresholding)
        clipSample = try flag(.clipSample)
        clipSampleRange = try c.decodeIfPresent(Double.self, forKey: .clipSampleRange)
        setAlphaToOne = try flag(.setAlphaToOne)
        skipPrkSteps = try flag(.skipPrkSteps)
        varianceType = try c.decodeIfPresent(String.self, forKey: .varianceType)
        useKarrasSigmas = try flag(.useKarrasSigmas)
        useExponentialSigmas = try flag(.useExponentialSigmas)
        useBetaSigmas = try flag(.useBetaSigmas)
        useLuLambdas = try flag(.useLuLambdas)
        useFlowSigmas = try flag(.useFlowSigmas)
        sigmaMin = try c.decodeIfPresent(Double.self, forKey: .sigmaMin)
        sigmaMax = try c.decodeIfPresent(Double.self, forKey: .sigmaMax)
        interpolationType = try c.decodeIfPresent(String.self, forKey: .interpolationType)
        timestepType = try c.decodeIfPresent(String.self, forKey: .timestepType)
        finalSigmasType = try c.decodeIfPresent(String.self, forKey: .finalSigmasType)
        solverOrder = try c.decodeIfPresent(Int.self, forKey: .solverOrder)
        algorithmType = try c.decodeIfPresent(String.self, forKey: .algorithmType)
        solverType = try c.decodeIfPresent(String.self, forKey: .solverType)
        lowerOrderFinal = try flag(.lowerOrderFinal)
        eulerAtFinal = try flag(.eulerAtFinal)
        lambdaMinClipped = try c.decodeIfPresent(Double.self, forKey: .lambdaMinClipped)
        predictX0 = try flag(.predictX0)
        disableCorrector = try c.decodeIfPresent([Int].self, forKey: .disableCorrector)
        useDynamicShifting = try flag(.useDynamicShifting)
    }

    /// Decodes JSON as Python's `json` writes it (which includes `-Infinity` for `lambda_min_clipped`).
    public init(json data: Data, source: String = "scheduler config") throws {
        let decoder = JSONDecoder()
        decoder.allowsJSON5 = true
        do { self = try decoder.decode(SchedulerConfig.self, from: data) } catch {
            throw SchedulerError.invalidConfig("\(source): \(error)")
        }
    }

    public static func load(from url: URL) throws -> SchedulerConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SchedulerError.invalidConfig("cannot read \(url.path): \(error.localizedDescription)")
        }
        return try SchedulerConfig(json: data, source: url.path)
    }

    /// Builds `kind` (default: the file's `_class_name`) from this config, as `Kind.from_config(config)`.
    public func makeScheduler(_ kind: SchedulerKind? = nil) throws -> any Scheduler {
        guard let kind = kind ?? className.flatMap(SchedulerKind.init(rawValue:)) else {
            throw SchedulerError.invalidConfig(
                "_class_name \(className.map { "\"\($0)\"" } ?? "is absent"); supported: "
                    + SchedulerKind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        switch kind {
        case .ddpm: return try DDPMScheduler(config: self)
        case .ddim: return try DDIMScheduler(config: self)
        case .pndm: return try PNDMScheduler(config: self)
        case .eulerDiscrete: return try EulerDiscreteScheduler(config: self)
        case .eulerAncestralDiscrete: return try EulerAncestralDiscreteScheduler(config: self)
        case .dpmSolverMultistep: return try DPMSolverMultistepScheduler(config: self)
        case .heunDiscrete: return try HeunDiscreteScheduler(config: self)
        case .lmsDiscrete: return try LMSDiscreteScheduler(config: self)
        case .uniPCMultistep: return try UniPCMultistepScheduler(config: self)
        case .kdpm2Discrete: return try KDPM2DiscreteScheduler(config: self)
        case .kdpm2AncestralDiscrete: return try KDPM2AncestralDiscreteScheduler(config: self)
        }
    }
}

public enum SchedulerKind: String, CaseIterable, Sendable {
    case ddpm = "DDPMScheduler"
    case ddim = "DDIMScheduler"
    case pndm = "PNDMScheduler"
    case eulerDiscrete = "EulerDiscreteScheduler"
    case eulerAncestralDiscrete = "EulerAncestralDiscreteScheduler"
    case dpmSolverMultistep = "DPMSolverMultistepScheduler"
    case heunDiscrete = "HeunDiscreteScheduler"
    case lmsDiscrete = "LMSDiscreteScheduler"
    case uniPCMultistep = "UniPCMultistepScheduler"
    case kdpm2Discrete = "KDPM2DiscreteScheduler"
    case kdpm2AncestralDiscrete = "KDPM2AncestralDiscreteScheduler"
}

public enum SchedulerError: Error, CustomStringConvertible, Equatable {
    case invalidConfig(String)
    /// A config value this scheduler does not implement: scheduler, key, value, what it accepts.
    case unsupported(String, String, String, [String])
    case invalidState(String)

    public var description: String {
        switch self {
        case .invalidConfig(let why): return "invalid scheduler config: \(why)"
        case .unsupported(let scheduler, let key, let value, let allowed):
            return "\(scheduler): \(key) \"\(value)\" is not supported (supported: \(allowed.joined(separator: ", ")))"
        case .invalidState(let why): return why
        }
    }
}

public enum PredictionType: String, Sendable {
    case epsilon
    case vPrediction = "v_prediction"
    case sample
}

public enum TimestepSpacing: String, Sendable {
    case leading, linspace, trailing
}

/// What the denoising loop needs from any scheduler (diffusers' SchedulerMixin protocol as the pipeline
/// uses it). Schedulers carry state across `step` calls (multistep history, step index), hence classes.
public protocol Scheduler: AnyObject {
    /// The timesteps of the schedule in the order they are visited, exactly as diffusers holds them:
    /// integers for DDPM/DDIM/PNDM/DPM-Solver/UniPC (int64 there), float32 values for the Euler, Heun, LMS
    /// and KDPM2 schedulers (float64 for KDPM2's with Karras σ). Heun's and KDPM2's repeat or interleave
    /// entries: one per model evaluation.
    /// Pass them to the UNet (which embeds them in float32) and back to `step`.
    var timesteps: [Double] { get }
    /// The dtype diffusers gives `scheduler.timesteps`.
    var timestepDType: DType { get }
    /// diffusers' class attribute `order`: entries of `timesteps` per inference step (2 for Heun and KDPM2,
    /// which visit each timestep after the first twice; 1 otherwise). img2img skips whole steps by it.
    var timestepsPerStep: Int { get }
    /// The noise level σ per step and a final one, for schedulers that have them (float32 values).
    var sigmas: [Float]? { get }
    /// Initial latents are `randn * initNoiseSigma`.
    var initNoiseSigma: Double { get }
    var predictionType: PredictionType { get }
    var numTrainTimesteps: Int { get }
    /// β, ᾱ of the training process (add_noise, velocity and SNR live there).
    var schedule: NoiseSchedule { get }
    func setTimesteps(_ count: Int) throws
    func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor
    /// One denoising step: the sample at the next timestep. `generator` draws the noise of the
    /// stochastic samplers (DDPM, DDIM with eta > 0, Euler ancestral, SDE-DPM-Solver++, KDPM2 ancestral);
    /// the others ignore it.
    func step(modelOutput: Tensor, timestep: Double, sample: Tensor, generator: NoiseGenerator?) throws -> Tensor
    /// diffusers' `add_noise` on the inference schedule (img2img): `original` [B, ...] noised to the level
    /// of `timesteps[b]` (values of `timesteps`, one per batch item).
    func addNoise(_ original: Tensor, noise: Tensor, timesteps: [Double]) throws -> Tensor
}

/// The σ-schedule schedulers that track their position by a step index (diffusers' `step_index` /
/// `set_begin_index`): img2img sets `beginIndex` to start mid-schedule.
public protocol IndexedScheduler: Scheduler {
    var stepIndex: Int? { get }
    var beginIndex: Int? { get set }
}

extension Scheduler {
    public var timestepsPerStep: Int { 1 }

    /// `scheduler.timesteps` as the tensor diffusers holds (int64 or float32).
    public func timestepsTensor(device: Device = .cpu) throws -> Tensor {
        try Tensor(timesteps, shape: [timesteps.count]).to(device, dtype: timestepDType)
    }
}

// MARK: - Resolving keys with a class's defaults

/// Reads keys with the defaults of one scheduler class and rejects values it does not implement.
struct ConfigReader {
    let config: SchedulerConfig
    let scheduler: String

    func choice<T: RawRepresentable>(_ key: String, _ value: String?, default fallback: T,
                                     allowed: [T]) throws -> T where T.RawValue == String {
        guard let value else { return fallback }
        guard let parsed = T(rawValue: value), allowed.contains(where: { $0.rawValue == parsed.rawValue }) else {
            throw SchedulerError.unsupported(scheduler, key, value, allowed.map(\.rawValue))
        }
        return parsed
    }

    func string(_ key: String, _ value: String?, default fallback: String, allowed: [String]) throws -> String {
        let v = value ?? fallback
        guard allowed.contains(v) else { throw SchedulerError.unsupported(scheduler, key, v, allowed) }
        return v
    }

    /// A boolean option this implementation only supports in one state.
    func require(_ key: String, _ value: Bool?, equals expected: Bool) throws {
        if let value, value != expected {
            throw SchedulerError.unsupported(scheduler, key, "\(value)", ["\(expected)"])
        }
    }

    func prediction(allowed: [PredictionType]) throws -> PredictionType {
        try choice("prediction_type", config.predictionType, default: .epsilon, allowed: allowed)
    }

    func spacing(default fallback: TimestepSpacing) throws -> TimestepSpacing {
        try choice("timestep_spacing", config.timestepSpacing, default: fallback, allowed: [.leading, .linspace, .trailing])
    }

    func checkStepCount(_ count: Int, trainSteps: Int) throws {
        guard count >= 1, count <= trainSteps else {
            throw SchedulerError.invalidState(
                "\(scheduler): num_inference_steps \(count) must be in 1...\(trainSteps) (num_train_timesteps)")
        }
    }
}


/// The step index of `timestep` as diffusers' `index_for_timestep` finds it: the second match when the
/// schedule repeats it (so img2img starting mid-schedule does not skip a sigma), else the first.
func indexForTimestep(_ timestep: Double, in timesteps: [Double]) -> Int? {
    let matches = timesteps.indices.filter { timesteps[$0] == timestep }
    return matches.count > 1 ? matches[1] : matches.first
}

/// diffusers' `_init_step_index` for the σ schedulers: the begin index when one is set, else the timestep's
/// position in the schedule; remembered in `stepIndex` until `setTimesteps` clears it.
func resolveStepIndex(_ stepIndex: inout Int?, beginIndex: Int?, timestep: Double, in timesteps: [Double],
                      scheduler: String) throws -> Int {
    if let stepIndex { return stepIndex }
    guard let index = beginIndex ?? indexForTimestep(timestep, in: timesteps) else {
        throw SchedulerError.invalidState("\(scheduler): timestep \(timestep) is not in the schedule")
    }
    stepIndex = index
    return index
}

/// x / √(σ² + 1), the σ schedulers' `scale_model_input`: the UNet was trained on unit-variance inputs.
func scaledForModel(_ sample: Tensor, sigma: Float) throws -> Tensor {
    try sample / Double(sqrt32(sigma * sigma + 1))
}

/// The σ of each batch item as diffusers' sigma-based `add_noise` picks them: by timestep lookup unless a
/// begin index is set, then the current step index if stepping has started, else the begin index.
func noiseLevelIndices(_ timesteps: [Double], schedule: [Double], stepIndex: Int?, beginIndex: Int?,
                       missing: (Double) throws -> Int) throws -> [Int] {
    guard let beginIndex else {
        return try timesteps.map { try indexForTimestep($0, in: schedule) ?? missing($0) }
    }
    return Array(repeating: stepIndex ?? beginIndex, count: timesteps.count)
}

/// `values` as a [B, 1, 1, ...] tensor in `x`'s dtype and device, to broadcast over a batch.
func batchColumn(_ values: [Float], like x: Tensor) throws -> Tensor {
    try Tensor(values).to(x.device, dtype: x.dtype).reshape([values.count] + Array(repeating: 1, count: Swift.max(x.rank - 1, 0)))
}

/// An integer timestep (DDPM/DDIM/PNDM index the schedule with it).
func integerTimestep(_ timestep: Double, _ scheduler: String, limit: Int) throws -> Int {
    guard let t = Int(exactly: timestep), t >= 0, t < limit else {
        throw SchedulerError.invalidState("\(scheduler): timestep \(timestep) is not an integer in 0..<\(limit)")
    }
    return t
}

/// The training-side helpers of the schedulers whose timesteps are integer indices into ᾱ (DDPM, DDIM):
/// they all delegate to the noise schedule.
public protocol IntegerTimestepTraining: Scheduler {}

extension IntegerTimestepTraining {
    public func addNoise(_ original: Tensor, noise: Tensor, timesteps: Tensor) throws -> Tensor {
        try schedule.addNoise(original, noise: noise, timesteps: timesteps)
    }
    public func addNoise(_ original: Tensor, noise: Tensor, timesteps: [Double]) throws -> Tensor {
        let name = String(describing: Self.self)
        let ids = try timesteps.map { try integerTimestep($0, name, limit: schedule.numTrainTimesteps) }
        return try schedule.addNoise(original, noise: noise, timesteps: Tensor(ids))
    }
    public func velocity(_ sample: Tensor, noise: Tensor, timesteps: Tensor) throws -> Tensor {
        try schedule.velocity(sample, noise: noise, timesteps: timesteps)
    }
}
