// Several LoRA networks applied at once (`--lora a.safetensors:0.8 --lora b.safetensors:0.5`), each with
// its own multiplier, and fusing them into the base weights for inference speed. Unfusing restores the
// exact original weights: the stack keeps a copy of every weight it changed.
import Foundation
import Torch

/// One `--lora FILE[:SCALE]` argument.
public struct LoRAReference: Sendable, Equatable {
    public var url: URL
    public var multiplier: Double

    public init(url: URL, multiplier: Double = 1) {
        self.url = url
        self.multiplier = multiplier
    }

    /// The largest scale magnitude accepted: far beyond any useful strength (A1111's sliders stop at 2), and
    /// small enough that scale × B·A stays finite in fp16 for any sane LoRA.
    public static let maxMultiplier = 100.0

    /// "path/to/file.safetensors:0.8". Without a colon, or when the whole argument names an existing file (a
    /// path with a colon in it), the argument is the path and the scale is 1. Otherwise the text after the last
    /// colon is the scale unless it ends like a path (a "/" or a weights extension), and one that is not a finite number within ±`maxMultiplier` is refused here.
    public init(parsing argument: String) throws {
        var path = argument
        multiplier = 1
        if let colon = argument.lastIndex(of: ":"), !FileManager.default.fileExists(atPath: argument) {
            let text = String(argument[argument.index(after: colon)...])
            // "a:b.safetensors" is a path with a colon; "a.safetensors:notanumber" is a bad scale.
            let isPathPart = text.contains("/") || ["safetensors", "ckpt", "pt", "pth", "bin"]
                .contains((text as NSString).pathExtension.lowercased())
            if !isPathPart {
                guard let scale = Double(text), scale.isFinite, abs(scale) <= Self.maxMultiplier else {
                    throw LoRAError.invalidConfig("--lora '\(argument)': the scale '\(text)' is not a finite number "
                        + "within ±\(Int(Self.maxMultiplier)) (expected FILE or FILE:SCALE, e.g. style.safetensors:0.8)")
                }
                path = String(argument[..<colon])
                multiplier = scale
            }
        }
        guard !path.isEmpty, !path.hasSuffix("/") else {
            throw LoRAError.invalidConfig("'\(argument)' names no file (expected FILE or FILE:SCALE)")
        }
        url = URL(fileURLWithPath: path)
    }
}

public final class LoRAStack {
    public private(set) var networks: [LoRANetwork]
    /// The original weight of every layer the fuse changed (the layer's tensor, its untouched copy).
    private var originals: [(weight: Tensor, copy: Tensor)] = []
    public var isFused: Bool { !originals.isEmpty }

    public init(_ networks: [LoRANetwork] = []) { self.networks = networks }

    /// Loads every file with its scale into the models (see `LoRANetwork.load`); the first file that does not fit
    /// stops the load with its error, and the networks loaded before it are taken off the model again.
    public convenience init(loading references: [LoRAReference], into models: [LoRAComponent: VarStore],
                            ldmTranslation: LDMKeyTranslation? = nil, dtype: DType? = nil) throws {
        var loaded: [LoRANetwork] = []
        do {
            for reference in references {
                loaded.append(try LoRANetwork.load(reference.url, into: models, ldmTranslation: ldmTranslation,
                                                   multiplier: reference.multiplier, dtype: dtype))
            }
        } catch {
            for network in loaded { try? network.removeFromModel() }
            throw error
        }
        self.init(loaded)
    }

    public func append(_ network: LoRANetwork) throws {
        guard !isFused else { throw LoRAError.fused("cannot add network '\(network.name)' while the stack is fused") }
        networks.append(network)
    }

    /// Sets each network's strength (`multipliers[i]` for `networks[i]`).
    public func setMultipliers(_ multipliers: [Double]) throws {
        guard multipliers.count == networks.count else {
            throw LoRAError.invalidConfig("\(multipliers.count) multipliers for \(networks.count) networks")
        }
        guard !isFused else { throw LoRAError.fused("unfuse before changing multipliers: the fused weights hold the old ones") }
        for (network, m) in zip(networks, multipliers) { network.multiplier = m }
    }

    /// Adds Σ multiplierᵢ · alphaᵢ/rᵢ · Bᵢ Aᵢ of every enabled adapter to its base weight (summed in float32,
    /// added once per layer), then turns those adapters' forward off. The current multipliers are baked in.
    public func fuse() throws {
        guard !isFused else { throw LoRAError.fused("the stack is already fused") }
        if let taken = networks.first(where: { $0.isFused }) {
            throw LoRAError.fused("network '\(taken.name)' is already fused by another stack")
        }
        // Group the deltas by layer weight: two networks on the same layer sum before one rounding.
        var order: [ObjectIdentifier] = []
        var groups: [ObjectIdentifier: (weight: Tensor, adapters: [LoRAAdapter])] = [:]
        for adapter in networks.flatMap(\.adapters) where adapter.isEnabled {
            let weight = adapter.base.weight
            let id = ObjectIdentifier(weight)
            if groups[id] == nil { order.append(id); groups[id] = (weight, []) }
            groups[id]?.adapters.append(adapter)
        }
        var saved: [(weight: Tensor, copy: Tensor)] = []
        do {
            try noGrad {
                for id in order {
                    guard let (weight, adapters) = groups[id] else { continue }
                    let copy = try weight.clone()
                    var delta = try adapters[0].deltaWeight()
                    for adapter in adapters.dropFirst() { delta = try delta + adapter.deltaWeight() }
                    // weight + ΔW in float32, rounded once to the weight's dtype.
                    let fused = try weight.to(.float32) + delta.to(weight.device)
                    try weight.copy_(fused)
                    saved.append((weight, copy))
                    for adapter in adapters { adapter.isFused = true }
                }
            }
        } catch {
            // Leave nothing half-fused.
            try? noGrad { for (weight, copy) in saved { try weight.copy_(copy) } }
            for adapter in networks.flatMap(\.adapters) { adapter.isFused = false }
            throw error
        }
        originals = saved
    }

    /// Restores every fused weight bit for bit and turns the adapters' forward back on.
    public func unfuse() throws {
        guard isFused else { return }
        try noGrad { for (weight, copy) in originals { try weight.copy_(copy) } }
        originals = []
        for adapter in networks.flatMap(\.adapters) { adapter.isFused = false }
    }
}
