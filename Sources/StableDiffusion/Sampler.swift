// The sampler names users type (A1111's vocabulary) and what each means: a diffusers scheduler
// class, whether it uses Karras sigmas, and the name A1111 writes into an image's parameters.
public enum Sampler: String, CaseIterable, Codable, Sendable, CustomStringConvertible {
    case pndm, ddim, ddpm, euler
    case eulerA = "euler-a"
    case dpmpp2m = "dpm++2m"
    case dpmpp2mKarras = "dpm++2m-karras"
    case eulerKarras = "euler-karras"

    /// The name users type (and configs hold).
    public var description: String { rawValue }

    public var schedulerKind: SchedulerKind {
        switch self {
        case .pndm: return .pndm
        case .ddim: return .ddim
        case .ddpm: return .ddpm
        case .euler, .eulerKarras: return .eulerDiscrete
        case .eulerA: return .eulerAncestralDiscrete
        case .dpmpp2m, .dpmpp2mKarras: return .dpmSolverMultistep
        }
    }

    public var karras: Bool { self == .dpmpp2mKarras || self == .eulerKarras }

    /// A1111's sampler name and (≥ 1.9) schedule type.
    public var a1111: (sampler: String, schedule: String?) {
        switch self {
        case .pndm: return ("PLMS", nil)
        case .ddim: return ("DDIM", nil)
        case .ddpm: return ("DDPM", nil)
        case .euler: return ("Euler", nil)
        case .eulerKarras: return ("Euler", "Karras")
        case .eulerA: return ("Euler a", nil)
        case .dpmpp2m: return ("DPM++ 2M", nil)
        case .dpmpp2mKarras: return ("DPM++ 2M", "Karras")
        }
    }

    /// The sampler a scheduler config's `_class_name` corresponds to (for a model's default).
    public init?(kind: SchedulerKind) {
        switch kind {
        case .pndm: self = .pndm
        case .ddim: self = .ddim
        case .ddpm: self = .ddpm
        case .eulerDiscrete: self = .euler
        case .eulerAncestralDiscrete: self = .eulerA
        case .dpmSolverMultistep: self = .dpmpp2m
        }
    }
}

extension GenerationOptions {
    /// Sets the scheduler and sigmas `sampler` stands for: the one place a sampler name becomes options.
    public mutating func use(_ sampler: Sampler) {
        scheduler = sampler.schedulerKind
        karrasSigmas = sampler.karras
    }
}
