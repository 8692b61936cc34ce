// The sampler names users type (A1111's vocabulary) and what each means: a diffusers scheduler
// class, whether it uses Karras sigmas, and the name A1111 writes into an image's parameters.
public enum Sampler: String, CaseIterable, Codable, Sendable, CustomStringConvertible {
    case pndm, ddim, ddpm, euler
    case eulerA = "euler-a"
    case dpmpp2m = "dpm++2m"
    case dpmpp2mKarras = "dpm++2m-karras"
    case eulerKarras = "euler-karras"
    case heun, lms
    case lmsKarras = "lms-karras"
    case unipc
    case dpmpp2mSde = "dpm++2m-sde"
    case dpmpp2mSdeKarras = "dpm++2m-sde-karras"
    case dpm2
    case dpm2Karras = "dpm2-karras"
    case dpm2A = "dpm2-a"
    case dpm2AKarras = "dpm2-a-karras"

    /// The name users type (and configs hold).
    public var description: String { rawValue }

    public var schedulerKind: SchedulerKind {
        switch self {
        case .pndm: return .pndm
        case .ddim: return .ddim
        case .ddpm: return .ddpm
        case .euler, .eulerKarras: return .eulerDiscrete
        case .eulerA: return .eulerAncestralDiscrete
        case .dpmpp2m, .dpmpp2mKarras, .dpmpp2mSde, .dpmpp2mSdeKarras: return .dpmSolverMultistep
        case .heun: return .heunDiscrete
        case .lms, .lmsKarras: return .lmsDiscrete
        case .unipc: return .uniPCMultistep
        case .dpm2, .dpm2Karras: return .kdpm2Discrete
        case .dpm2A, .dpm2AKarras: return .kdpm2AncestralDiscrete
        }
    }

    public var karras: Bool {
        [.dpmpp2mKarras, .eulerKarras, .lmsKarras, .dpmpp2mSdeKarras, .dpm2Karras, .dpm2AKarras].contains(self)
    }

    /// DPM-Solver++'s variant, for the samplers built on DPMSolverMultistepScheduler: set explicitly, so that
    /// "DPM++ 2M" is the ODE solver even where a model's own config asks for the SDE one.
    public var dpmSolverAlgorithm: DPMSolverMultistepScheduler.AlgorithmType? {
        switch self {
        case .dpmpp2m, .dpmpp2mKarras: return .dpmsolverPlusPlus
        case .dpmpp2mSde, .dpmpp2mSdeKarras: return .sdeDpmsolverPlusPlus
        default: return nil
        }
    }

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
        case .heun: return ("Heun", nil)
        case .lms: return ("LMS", nil)
        case .lmsKarras: return ("LMS", "Karras")
        case .unipc: return ("UniPC", nil)
        case .dpmpp2mSde: return ("DPM++ 2M SDE", nil)
        case .dpmpp2mSdeKarras: return ("DPM++ 2M SDE", "Karras")
        case .dpm2: return ("DPM2", nil)
        case .dpm2Karras: return ("DPM2", "Karras")
        case .dpm2A: return ("DPM2 a", nil)
        case .dpm2AKarras: return ("DPM2 a", "Karras")
        }
    }

    /// A sampler by any name users type: ours (`dpm++2m-karras`), A1111's (`DPM++ 2M Karras`, `Euler a`,
    /// `PLMS`, `DPM2 a Karras`), ComfyUI's (`dpmpp_2m` and `dpmpp_2m karras` for its karras scheduler,
    /// `euler_ancestral`, `dpm_2_ancestral`, `uni_pc`) and the snake-case forms (`dpmpp_2m_sde_karras`,
    /// `euler_a`). Case, spaces and punctuation do not matter, and "++" may be spelt "pp".
    public init?(name: String) {
        let key = Self.key(name)
        guard let sampler = Self.allCases.first(where: { $0.aliases.contains(key) }) else { return nil }
        self = sampler
    }

    /// Every name `init(name:)` accepts for this sampler, as keys.
    var aliases: Set<String> {
        let a1111 = a1111
        var names: Set<String> = [Self.key(rawValue), Self.key(a1111.sampler + (a1111.schedule ?? ""))]
        // A1111's " a" is ComfyUI's "_ancestral" (euler_ancestral, dpm_2_ancestral).
        if a1111.sampler.hasSuffix(" a") {
            names.insert(Self.key(String(a1111.sampler.dropLast(2)) + "ancestral" + (a1111.schedule ?? "")))
        }
        return names
    }

    /// Lowercase letters and digits only, "+" read as "p" ("DPM++ 2M" and "dpmpp_2m" are the same key).
    static func key(_ name: String) -> String {
        String(name.lowercased().replacingOccurrences(of: "+", with: "p").filter { $0.isLetter || $0.isNumber })
    }

    /// The names for help texts and errors.
    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// The sampler a scheduler config's `_class_name` corresponds to (for a model's default).
    public init?(kind: SchedulerKind) {
        switch kind {
        case .pndm: self = .pndm
        case .ddim: self = .ddim
        case .ddpm: self = .ddpm
        case .eulerDiscrete: self = .euler
        case .eulerAncestralDiscrete: self = .eulerA
        case .dpmSolverMultistep: self = .dpmpp2m
        case .heunDiscrete: self = .heun
        case .lmsDiscrete: self = .lms
        case .uniPCMultistep: self = .unipc
        case .kdpm2Discrete: self = .dpm2
        case .kdpm2AncestralDiscrete: self = .dpm2A
        }
    }

    /// The sampler a model's scheduler config amounts to, Karras σ and DPM-Solver++'s SDE variant included
    /// (what the infotext names when no sampler was asked for).
    public init?(config: SchedulerConfig) {
        guard let kind = config.className.flatMap(SchedulerKind.init(rawValue:)), let base = Sampler(kind: kind) else {
            return nil
        }
        let algorithm = config.algorithmType.flatMap(DPMSolverMultistepScheduler.AlgorithmType.init(rawValue:))
        let match = Self.allCases.first {
            $0.schedulerKind == kind && $0.karras == (config.useKarrasSigmas ?? false)
                && ($0.dpmSolverAlgorithm == nil || $0.dpmSolverAlgorithm == (algorithm ?? .dpmsolverPlusPlus))
        }
        self = match ?? base
    }
}

extension GenerationOptions {
    /// Sets the scheduler and sigmas `sampler` stands for: the one place a sampler name becomes options.
    public mutating func use(_ sampler: Sampler) {
        scheduler = sampler.schedulerKind
        karrasSigmas = sampler.karras
        dpmSolverAlgorithm = sampler.dpmSolverAlgorithm
    }
}
