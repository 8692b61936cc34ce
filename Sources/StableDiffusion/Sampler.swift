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

    /// A sampler by any name users type: ours (`dpm++2m-karras`), A1111's (`DPM++ 2M Karras`, `Euler a`,
    /// `PLMS`), ComfyUI's (`dpmpp_2m` and `dpmpp_2m karras` for its karras scheduler, `euler_ancestral`) and
    /// the snake-case forms (`dpmpp_2m_karras`, `euler_a`). Case, spaces and punctuation do not matter, and
    /// "++" may be spelt "pp".
    public init?(name: String) {
        let key = Self.key(name)
        guard let sampler = Self.allCases.first(where: { $0.aliases.contains(key) }) else { return nil }
        self = sampler
    }

    /// Every name `init(name:)` accepts for this sampler, as keys.
    var aliases: Set<String> {
        let a1111 = a1111
        var names: Set<String> = [Self.key(rawValue), Self.key(a1111.sampler + (a1111.schedule ?? ""))]
        if self == .eulerA { names.insert("eulerancestral") }
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
        case .heunDiscrete, .lmsDiscrete, .kdpm2Discrete, .kdpm2AncestralDiscrete, .uniPCMultistep: return nil
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
