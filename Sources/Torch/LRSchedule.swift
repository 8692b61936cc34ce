// Learning-rate schedules as pure functions of the step, equal to diffusers.optimization.get_scheduler
// (each a LambdaLR multiplier on the parameter groups' initial learning rates).
import Foundation

public struct LRScheduleError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public var description: String { message }
}

public struct LRSchedule: Equatable, Sendable {
    /// The schedule names of diffusers' `SchedulerType` (the `--lr_scheduler` values of its scripts).
    public enum Kind: String, CaseIterable, Codable, Sendable {
        case constant
        case constantWithWarmup = "constant_with_warmup"
        case linear
        case cosine
        case cosineWithRestarts = "cosine_with_restarts"
        case polynomial
        case piecewiseConstant = "piecewise_constant"

        /// Parses a diffusers name; the error lists the valid ones.
        public init(parsing name: String) throws {
            guard let kind = Kind(rawValue: name) else {
                let valid = Kind.allCases.map(\.rawValue).joined(separator: ", ")
                throw LRScheduleError(message: "unknown learning-rate schedule '\(name)'; valid names: \(valid)")
            }
            self = kind
        }
    }

    /// One rule of a piecewise-constant schedule: `multiplier` while the step is below `untilStep`.
    public struct PiecewiseRule: Equatable, Sendable {
        public let multiplier: Double
        public let untilStep: Int
    }

    public let kind: Kind
    /// Steps of linear warmup from 0 (ignored by `constant` and `piecewise_constant`, as in diffusers).
    public let warmupSteps: Int
    /// Total optimizer steps; the decaying schedules reach their end here.
    public let trainingSteps: Int
    /// Hard restarts of `cosine_with_restarts`. `cosine` is always a half cosine (diffusers'
    /// get_scheduler never passes its num_cycles on).
    public let numCycles: Int
    /// Exponent of `polynomial`.
    public let power: Double
    /// Final learning rate of `polynomial` (absolute, not a multiplier).
    public let lrEnd: Double
    /// `polynomial` divides by the optimizer's default learning rate (`optimizer.defaults["lr"]`),
    /// the same for every parameter group, so it needs that value.
    public let initialLR: Double?
    /// `piecewise_constant` rules in diffusers' syntax, e.g. "1:10,0.1:20,0.005".
    public let stepRules: String?

    private let rules: [PiecewiseRule]
    private let finalMultiplier: Double

    public init(_ kind: Kind, warmupSteps: Int = 0, trainingSteps: Int = 0, numCycles: Int = 1,
                power: Double = 1, lrEnd: Double = 1e-7, initialLR: Double? = nil, stepRules: String? = nil) throws {
        func fail(_ m: String) -> LRScheduleError { LRScheduleError(message: "\(kind.rawValue) schedule: \(m)") }
        guard warmupSteps >= 0 else { throw fail("warmup steps must not be negative, got \(warmupSteps)") }
        guard trainingSteps >= 0 else { throw fail("training steps must not be negative, got \(trainingSteps)") }
        guard numCycles >= 0 else { throw fail("cycle count must not be negative, got \(numCycles)") }
        guard power.isFinite else { throw fail("power must be finite, got \(power)") }
        self.kind = kind
        self.warmupSteps = warmupSteps
        self.trainingSteps = trainingSteps
        self.numCycles = numCycles
        self.power = power
        self.lrEnd = lrEnd
        self.initialLR = initialLR
        self.stepRules = stepRules
        if kind == .polynomial {
            guard let initialLR else { throw fail("needs the optimizer's initial learning rate") }
            // diffusers raises the same: the decay runs from initialLR down to lrEnd.
            guard initialLR > lrEnd else {
                throw fail("lr_end (\(lrEnd)) must be smaller than the initial learning rate (\(initialLR))")
            }
        }
        if kind == .piecewiseConstant {
            guard let stepRules else { throw fail("needs step rules such as \"1:10,0.1:20,0.005\"") }
            (rules, finalMultiplier) = try Self.parseRules(stepRules)
        } else {
            (rules, finalMultiplier) = ([], 1)
        }
    }

    /// diffusers' rule string: "value:step" pairs, then the value for every later step. A later pair
    /// with the same step replaces an earlier one (they are dictionary entries there).
    static func parseRules(_ text: String) throws -> ([PiecewiseRule], Double) {
        func fail(_ m: String) -> LRScheduleError {
            LRScheduleError(message: "piecewise_constant step rules '\(text)': \(m)")
        }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard let last = parts.last, let final = Double(last) else { throw fail("must end with a multiplier") }
        var byStep: [Int: Double] = [:]
        for part in parts.dropLast() {
            let pair = part.split(separator: ":", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, let value = Double(pair[0]), let step = Int(pair[1]) else {
                throw fail("'\(part)' is not 'multiplier:step'")
            }
            byStep[step] = value
        }
        let rules = byStep.keys.sorted().map { PiecewiseRule(multiplier: byStep[$0] ?? final, untilStep: $0) }
        return (rules, final)
    }

    /// LambdaLR's factor at `step` (0 for the first optimizer step): the learning rate of a group is
    /// its initial learning rate times this. Each formula is written in diffusers' operation order
    /// so that the doubles round identically.
    public func multiplier(step: Int) -> Double {
        let warmup = Double(Swift.max(1, warmupSteps))
        switch kind {
        case .constant:
            return 1
        case .piecewiseConstant:
            return rules.first { step < $0.untilStep }?.multiplier ?? finalMultiplier
        case .constantWithWarmup:
            return step < warmupSteps ? Double(step) / warmup : 1
        default:
            break
        }
        if step < warmupSteps { return Double(step) / warmup }
        let span = Double(Swift.max(1, trainingSteps - warmupSteps))
        switch kind {
        case .linear:
            // get_scheduler leaves f_min 0 and f_max 1, so f_min + (f_max - f_min) * x is x exactly.
            let progress = Double(trainingSteps - step) / span
            return Swift.max(0, progress)
        case .cosine:
            let progress = Double(step - warmupSteps) / span
            return Swift.max(0, 0.5 * (1 + cos(Double.pi * 0.5 * 2 * progress)))
        case .cosineWithRestarts:
            let progress = Double(step - warmupSteps) / span
            if progress >= 1 { return 0 }
            // Python's float % equals fmod for the non-negative operands here.
            let phase = (Double(numCycles) * progress).truncatingRemainder(dividingBy: 1)
            return Swift.max(0, 0.5 * (1 + cos(Double.pi * phase)))
        case .polynomial:
            let lrInit = initialLR ?? 1
            let decaySteps = trainingSteps - warmupSteps
            // diffusers divides by decaySteps even when it is 0 (a ZeroDivisionError at that one
            // step); the limit there is lrEnd.
            if step > trainingSteps || decaySteps == 0 { return lrEnd / lrInit }
            let remaining = 1 - Double(step - warmupSteps) / Double(decaySteps)
            let decay = (lrInit - lrEnd) * pow(remaining, power) + lrEnd
            return decay / lrInit
        case .constant, .constantWithWarmup, .piecewiseConstant:
            return 1  // handled above
        }
    }

    /// The learning rate at `step` of a group whose initial learning rate is `baseLR`.
    public func lr(step: Int, baseLR: Double) -> Double { baseLR * multiplier(step: step) }
}

// MARK: - Codable

extension LRSchedule: Codable {
    enum CodingKeys: String, CodingKey {
        case kind = "name", warmupSteps = "warmup_steps", trainingSteps = "training_steps"
        case numCycles = "num_cycles", power, lrEnd = "lr_end", initialLR = "initial_lr", stepRules = "step_rules"
    }

    /// Absent keys take diffusers' defaults; the decoded schedule is validated like `init`.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decode(String.self, forKey: .kind)
        try self.init(
            try Kind(parsing: name),
            warmupSteps: try c.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? 0,
            trainingSteps: try c.decodeIfPresent(Int.self, forKey: .trainingSteps) ?? 0,
            numCycles: try c.decodeIfPresent(Int.self, forKey: .numCycles) ?? 1,
            power: try c.decodeIfPresent(Double.self, forKey: .power) ?? 1,
            lrEnd: try c.decodeIfPresent(Double.self, forKey: .lrEnd) ?? 1e-7,
            initialLR: try c.decodeIfPresent(Double.self, forKey: .initialLR),
            stepRules: try c.decodeIfPresent(String.self, forKey: .stepRules))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind.rawValue, forKey: .kind)
        try c.encode(warmupSteps, forKey: .warmupSteps)
        try c.encode(trainingSteps, forKey: .trainingSteps)
        try c.encode(numCycles, forKey: .numCycles)
        try c.encode(power, forKey: .power)
        try c.encode(lrEnd, forKey: .lrEnd)
        try c.encodeIfPresent(initialLR, forKey: .initialLR)
        try c.encodeIfPresent(stepRules, forKey: .stepRules)
    }
}
