// Which layers get adapters: module-key patterns with peft's `target_modules` semantics, the model part
// (UNet or text encoder) they belong to, and the settings of a fresh adapter.
import Foundation
import Torch

/// The model part an adapter lives in; it fixes the key prefixes of every file format.
public enum LoRAComponent: String, Sendable, CaseIterable, CustomStringConvertible {
    case unet
    case textEncoder

    /// kohya's module-name prefix (`lora_unet_…`, `lora_te_…`; SD1.x has one text encoder).
    public var kohyaPrefix: String { self == .unet ? "lora_unet" : "lora_te" }
    /// The prefix diffusers' `save_lora_weights` puts before the module key (`unet.…`, `text_encoder.…`).
    public var diffusersPrefix: String { self == .unet ? "unet" : "text_encoder" }
    public var description: String { self == .unet ? "UNet" : "text encoder" }
}

/// Module-key patterns, matched as peft matches a `target_modules` list: a module is a target when its key
/// equals a pattern or ends with "." + pattern (`to_out.0` matches `…attn1.to_out.0`, not `…to_out.01`).
public struct LoRATargets: Sendable, Equatable, ExpressibleByArrayLiteral {
    public var patterns: [String]

    public init(_ patterns: [String]) { self.patterns = patterns }
    public init(arrayLiteral elements: String...) { patterns = elements }

    /// The attention projections of every UNet transformer block, self- and cross-attention (the default).
    public static let unetAttention: LoRATargets = ["to_q", "to_k", "to_v", "to_out.0"]
    /// The transformer blocks' input/output projections (1×1 convolutions in SD1.x, linear in SD2).
    public static let unetProjections: LoRATargets = ["proj_in", "proj_out"]
    /// The feed-forward layers of the transformer blocks (GEGLU input and output).
    public static let unetFeedForward: LoRATargets = ["ff.net.0.proj", "ff.net.2"]
    /// CLIP's self-attention projections.
    public static let textEncoderAttention: LoRATargets = ["q_proj", "k_proj", "v_proj", "out_proj"]

    public static func + (a: LoRATargets, b: LoRATargets) -> LoRATargets { LoRATargets(a.patterns + b.patterns) }

    public func matches(_ key: String) -> Bool {
        patterns.contains { key == $0 || key.hasSuffix("." + $0) }
    }
}

/// How a fresh adapter's down (A) matrix is drawn; up (B) always starts at zero, so a fresh adapter
/// leaves the model's output unchanged.
public enum LoRAInitialization: Sendable, Equatable {
    /// peft's `init_lora_weights=True` and kohya's: `kaiming_uniform_(A, a=√5)`, i.e. U(±1/√fanIn).
    case kaimingUniform
    /// peft's `init_lora_weights="gaussian"` (the diffusers training scripts): A ~ N(0, (1/r)²).
    case gaussian
}

/// The settings of the adapters `LoRANetwork.addAdapters` creates.
public struct LoRAConfig: Sendable, Equatable {
    public var rank: Int
    /// The output is scaled by alpha / rank; alpha = rank gives scale 1.
    public var alpha: Double
    /// Dropout on the adapter's input, in training mode only (peft's `lora_dropout`).
    public var dropout: Double
    public var targets: LoRATargets
    public var initialization: LoRAInitialization

    public init(rank: Int = 4, alpha: Double? = nil, dropout: Double = 0, targets: LoRATargets = .unetAttention,
                initialization: LoRAInitialization = .kaimingUniform) {
        self.rank = rank
        self.alpha = alpha ?? Double(rank)
        self.dropout = dropout
        self.targets = targets
        self.initialization = initialization
    }

    /// The ranks a training run may ask for.
    public static let rankRange = 1...128

    func validate() throws {
        guard Self.rankRange.contains(rank) else {
            throw LoRAError.invalidConfig("rank \(rank) is outside \(Self.rankRange.lowerBound)–\(Self.rankRange.upperBound)")
        }
        guard alpha.isFinite, alpha > 0 else { throw LoRAError.invalidConfig("alpha must be a positive number, got \(alpha)") }
        guard dropout >= 0, dropout < 1 else { throw LoRAError.invalidConfig("dropout must be in [0, 1), got \(dropout)") }
        guard !targets.patterns.isEmpty else { throw LoRAError.invalidConfig("no target modules given") }
    }
}

/// Misuse of the LoRA API (bad settings, wrong state); file problems are `LoRAFileError`.
public enum LoRAError: Error, CustomStringConvertible, Equatable {
    case invalidConfig(String)
    /// No module of the component matched the patterns; lists a few of the keys there are.
    case noTargets(component: LoRAComponent, patterns: [String], available: [String])
    /// A matched module that LoRA cannot adapt (a k×k convolution, a grouped convolution, ...).
    case unsupportedModule(key: String, reason: String)
    /// The network already has an adapter on this module.
    case duplicateAdapter(String)
    case fused(String)

    public var description: String {
        switch self {
        case .invalidConfig(let m): return "LoRA: \(m)"
        case .noTargets(let component, let patterns, let available):
            let sample = available.prefix(8).joined(separator: ", ")
            return "LoRA: no \(component) module matches \(patterns)"
                + (available.isEmpty ? " (the model registered no layers)" : "; modules look like: \(sample)")
        case .unsupportedModule(let key, let reason): return "LoRA: cannot adapt '\(key)': \(reason)"
        case .duplicateAdapter(let key): return "LoRA: '\(key)' already has an adapter of this network"
        case .fused(let m): return "LoRA: \(m)"
        }
    }
}
