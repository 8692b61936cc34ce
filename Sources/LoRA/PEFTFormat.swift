// The diffusers/PEFT formats. Written as diffusers 0.42's `save_lora_weights` writes a peft state dict:
// `unet.<module>.lora_A.weight` / `.lora_B.weight`, metadata `format: pt` and the LoraConfig as JSON under
// `lora_adapter_metadata` (keys prefixed `unet.`/`text_encoder.`), which is where alpha lives. Read: that,
// peft's own `base_model.model.` files (alpha from adapter_config.json), `.lora_A.<adapter>.weight`, and the
// older diffusers spellings `.lora.down`, `.lora_linear_layer.down`, `…processor.to_q_lora.down`.
import Foundation
import Torch

/// The scale-related part of a peft `LoraConfig`.
public struct PEFTAdapterConfig: Sendable, Equatable {
    public var rank: Int?
    public var alpha: Double?
    /// Per-module alphas by peft pattern (matched as peft's `get_pattern_key`: the key ends with the pattern
    /// after a dot; a leading "^" anchors it at the start).
    public var alphaPattern: [String: Double] = [:]
    /// peft's `use_rslora`: scale alpha / √r instead of alpha / r.
    public var useRSLoRA = false
    public var useDoRA = false

    public init(rank: Int? = nil, alpha: Double? = nil, alphaPattern: [String: Double] = [:], useRSLoRA: Bool = false) {
        self.rank = rank
        self.alpha = alpha
        self.alphaPattern = alphaPattern
        self.useRSLoRA = useRSLoRA
    }

    /// peft's `adapter_config.json`.
    public init(json: Data, source: String) throws {
        guard let object = try? JSONSerialization.jsonObject(with: json), let dict = object as? [String: Any] else {
            throw LoRAError.invalidConfig("\(source) is not a JSON object")
        }
        try self.init(dictionary: dict, source: source)
    }

    init(dictionary d: [String: Any], source: String) throws {
        func number(_ key: String) throws -> Double? {
            guard let value = d[key], !(value is NSNull) else { return nil }
            guard let n = value as? NSNumber, n.doubleValue.isFinite else {
                throw LoRAError.invalidConfig("\(source): '\(key)' must be a number, got \(value)")
            }
            return n.doubleValue
        }
        rank = try number("r").map { Int($0) }
        alpha = try number("lora_alpha")
        if let patterns = d["alpha_pattern"] as? [String: Any] {
            for (k, v) in patterns {
                guard let n = v as? NSNumber else { throw LoRAError.invalidConfig("\(source): alpha_pattern['\(k)'] is not a number") }
                alphaPattern[k] = n.doubleValue
            }
        }
        useRSLoRA = (d["use_rslora"] as? Bool) ?? false
        useDoRA = (d["use_dora"] as? Bool) ?? false
    }

    /// The alpha to use for module `key` of rank `rank`, folded so that alpha / rank is peft's scaling.
    func alpha(for key: String, rank: Int) -> Double? {
        var value = alpha
        if let pattern = alphaPattern.keys.sorted().first(where: { Self.patternMatches($0, key) }) {
            value = alphaPattern[pattern]
        }
        guard let value else { return nil }
        return useRSLoRA ? value * Double(rank).squareRoot() : value
    }

    /// `re.match(rf"(.*\.)?({pattern})$", key)`.
    static func patternMatches(_ pattern: String, _ key: String) -> Bool {
        guard let regex = try? NSRegularExpression(pattern: "^(.*\\.)?(\(pattern))$") else { return false }
        return regex.firstMatch(in: key, range: NSRange(key.startIndex..., in: key)) != nil
    }
}

enum PEFTFormat {
    static let metadataKey = "lora_adapter_metadata"

    /// The configs a file carries: diffusers' `lora_adapter_metadata` per component, and peft's
    /// adapter_config.json for `base_model.model.` keys.
    static func adapterConfigs(metadata: [String: String], file: PEFTAdapterConfig?, path: String)
        throws -> (components: [LoRAComponent: PEFTAdapterConfig], file: PEFTAdapterConfig?) {
        var components: [LoRAComponent: PEFTAdapterConfig] = [:]
        if let text = metadata[metadataKey] {
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)), let dict = object as? [String: Any] else {
                throw LoRAError.invalidConfig("\(path): metadata '\(metadataKey)' is not a JSON object")
            }
            for component in LoRAComponent.allCases {
                let prefix = component.diffusersPrefix + "."
                let own = dict.filter { $0.key.hasPrefix(prefix) }
                guard !own.isEmpty else { continue }
                components[component] = try PEFTAdapterConfig(
                    dictionary: Dictionary(uniqueKeysWithValues: own.map { (String($0.key.dropFirst(prefix.count)), $0.value) }),
                    source: "\(path) metadata '\(metadataKey)'")
            }
        }
        return (components, file)
    }

    enum Role { case down, up, alpha }

    /// What one dotted key is: (component, module key, role, format), or why it is not usable.
    enum Parsed {
        case weight(LoRAComponent, String, Role, LoRAFileFormat, fromPEFTFile: Bool)
        case unsupported(String)
        case unrecognized
    }

    static func parse(_ key: String) -> Parsed {
        var rest = key
        var component: LoRAComponent?
        var fromPEFTFile = false
        if rest.hasPrefix("unet.") {
            component = .unet
            rest.removeFirst(5)
        } else if rest.hasPrefix("text_encoder_2.") {
            return .unsupported("SDXL's second text encoder (text_encoder_2), not in SD1.x")
        } else if rest.hasPrefix("text_encoder.") {
            component = .textEncoder
            rest.removeFirst(13)
        } else if rest.hasPrefix("base_model.model.") {
            rest.removeFirst(17)
            fromPEFTFile = true
        }
        // diffusers drops `.processor.` from every key (KEYS_TO_ALWAYS_REPLACE).
        rest = rest.replacingOccurrences(of: ".processor.", with: ".")
        // Keys without a component prefix: CLIP's modules live under `text_model.` (`encoder.` once
        // transformers 5 flattened the model); everything else is the UNet's.
        let inferred = component ?? (rest.hasPrefix("text_model.") || rest.hasPrefix("encoder.layers.") ? .textEncoder : .unet)

        if rest.contains(".lora_magnitude_vector") { return .unsupported("DoRA (weight-decomposed LoRA)") }
        if rest.contains(".lora_embedding_") { return .unsupported("LoRA on an embedding layer") }
        if rest.contains(".hada_") { return .unsupported("LoHa (LyCORIS)") }
        if rest.contains(".lokr_") { return .unsupported("LoKr (LyCORIS)") }
        if rest.hasSuffix(".alpha") {
            return .weight(inferred, String(rest.dropLast(6)), .alpha, .diffusers, fromPEFTFile: fromPEFTFile)
        }
        // peft: `<module>.lora_A.weight`, or `<module>.lora_A.<adapter>.weight` straight from a model's state dict.
        if let (module, marker, tail) = split(rest, at: [".lora_A.", ".lora_B."]) {
            let parts = tail.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.last == "weight", parts.count <= 2 else {
                return parts.last == "bias" ? .unsupported("a LoRA bias (peft lora_bias)") : .unrecognized
            }
            return .weight(inferred, module, marker == ".lora_A." ? .down : .up, .peft, fromPEFTFile: fromPEFTFile)
        }
        // Older diffusers: `.lora.down.weight`, `.lora_linear_layer.down.weight`, `….to_q_lora.down.weight`.
        for (marker, role) in [(".lora.down.weight", Role.down), (".lora.up.weight", .up),
                               (".lora_linear_layer.down.weight", .down), (".lora_linear_layer.up.weight", .up)]
        where rest.hasSuffix(marker) {
            return .weight(inferred, String(rest.dropLast(marker.count)), role, .diffusers, fromPEFTFile: fromPEFTFile)
        }
        for (marker, role) in [("_lora.down.weight", Role.down), ("_lora.up.weight", .up)] where rest.hasSuffix(marker) {
            guard let module = oldProcessorModule(String(rest.dropLast(marker.count)), component: inferred) else { return .unrecognized }
            return .weight(inferred, module, role, .diffusers, fromPEFTFile: fromPEFTFile)
        }
        return .unrecognized
    }

    /// Splits `key` at the first occurrence of any of `markers` (tried in order): (before, marker, after).
    static func split(_ key: String, at markers: [String]) -> (String, String, String)? {
        for marker in markers {
            if let r = key.range(of: marker) {
                return (String(key[..<r.lowerBound]), marker, String(key[r.upperBound...]))
            }
        }
        return nil
    }

    /// The attention-processor names (`attn1.to_q_lora`, `self_attn.to_out_lora`) of the module they adapt.
    static func oldProcessorModule(_ stem: String, component: LoRAComponent) -> String? {
        guard let dot = stem.lastIndex(of: ".") else { return nil }
        let parent = stem[..<dot], leaf = stem[stem.index(after: dot)...]
        let names: [Substring: String] = component == .unet
            ? ["to_q": "to_q", "to_k": "to_k", "to_v": "to_v", "to_out": "to_out.0"]
            : ["to_q": "q_proj", "to_k": "k_proj", "to_v": "v_proj", "to_out": "out_proj"]
        return names[leaf].map { "\(parent).\($0)" }
    }

    static func read(_ tensors: [String: Tensor], keys: [String],
                     configs: (components: [LoRAComponent: PEFTAdapterConfig], file: PEFTAdapterConfig?),
                     problems: inout LoRAFileError) -> ([LoRAModuleWeights], LoRAFileFormat?) {
        struct Group { var down: String?, up: String?, alpha: String?, fromPEFTFile = false }
        var groups: [String: Group] = [:]
        var order: [(LoRAComponent, String)] = []
        var format: LoRAFileFormat?
        for key in keys.sorted() {
            switch parse(key) {
            case .unsupported(let kind): problems.unsupported.append((key, kind))
            case .unrecognized: problems.unrecognized.append(key)
            case .weight(let component, let module, let role, let keyFormat, let fromPEFTFile):
                if role != .alpha { format = format == .peft ? .peft : keyFormat }
                let id = LoRANetwork.indexKey(component, module)
                if groups[id] == nil { groups[id] = Group(); order.append((component, module)) }
                groups[id]?.fromPEFTFile = fromPEFTFile
                switch role {
                case .down: groups[id]?.down = key
                case .up: groups[id]?.up = key
                case .alpha: groups[id]?.alpha = key
                }
            }
        }
        var modules: [LoRAModuleWeights] = []
        for (component, module) in order {
            guard let group = groups[LoRANetwork.indexKey(component, module)] else { continue }
            let present = [group.down, group.up, group.alpha].compactMap { $0 }
            guard let down = group.down, let up = group.up, let downTensor = tensors[down], let upTensor = tensors[up] else {
                problems.incomplete += present.map { "\($0) (the module needs both its down/A and up/B weights)" }
                continue
            }
            var alpha: Double?
            if let key = group.alpha {
                guard let t = tensors[key], t.count == 1, let value = try? t.item(), value.isFinite else {
                    problems.incomplete.append("\(key) (alpha must be one finite number)")
                    continue
                }
                alpha = value == 0 ? nil : value
            } else if let config = group.fromPEFTFile ? configs.file : configs.components[component] {
                if config.useDoRA {
                    problems.unsupported.append((down, "DoRA (use_dora in the adapter config)"))
                    continue
                }
                alpha = config.alpha(for: module, rank: downTensor.shape.first ?? 1)
            }
            modules.append(LoRAModuleWeights(component: component, name: .dotted(module), down: downTensor, up: upTensor,
                                             alpha: alpha, downKey: down, upKey: up))
        }
        return (modules, format)
    }

    // MARK: Writing

    /// The name peft matches a module by. transformers 5 flattened CLIPTextModel (`encoder.layers.0…`, no
    /// `text_model.`), and peft matches names by suffix, so text-encoder names without `text_model.` fit both
    /// layouts; UNet names are the full keys.
    static func target(_ adapter: LoRAAdapter) -> String {
        adapter.component == .textEncoder && adapter.key.hasPrefix("text_model.")
            ? String(adapter.key.dropFirst("text_model.".count)) : adapter.key
    }

    /// An `alpha_pattern`/`rank_pattern` key: anchored (as diffusers writes its rank patterns) where the name is
    /// the full key, a suffix otherwise (see `target`).
    static func pattern(_ adapter: LoRAAdapter) -> String {
        let name = target(adapter)
        return name == adapter.key ? "^" + name : name
    }

    static func stateDict(_ adapters: [LoRAAdapter], foldScale: Bool) throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for adapter in adapters {
            let prefix = LoRANetwork.indexKey(adapter.component, adapter.key)
            let up = try adapter.up.detach().to(.cpu).contiguous()
            let fold = adapter.alpha / Double(adapter.rank)
            out[prefix + ".lora_A.weight"] = try adapter.down.detach().to(.cpu).contiguous()
            out[prefix + ".lora_B.weight"] = foldScale && fold != 1 ? try (up * fold).to(up.dtype) : up
        }
        return out
    }

    /// The LoraConfig of each component as diffusers writes it: prefixed keys, the most common rank and alpha,
    /// the others as anchored patterns, the exact module keys as targets.
    static func adapterMetadata(_ adapters: [LoRAAdapter], dropout: Double) -> PythonJSON {
        var pairs: [(String, PythonJSON)] = []
        func number(_ d: Double) -> PythonJSON { d.rounded() == d && abs(d) < 1e15 ? .int(Int(d)) : .double(d) }
        for component in LoRAComponent.allCases {
            let own = adapters.filter { $0.component == component }
            guard !own.isEmpty else { continue }
            func mode<T: Hashable & Comparable>(_ values: [T]) -> T {
                let counts = Dictionary(values.map { ($0, 1) }, uniquingKeysWith: +)
                return counts.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key ?? values[0]
            }
            let rank = mode(own.map(\.rank)), alpha = mode(own.map(\.alpha))
            let p = component.diffusersPrefix + "."
            pairs += [
                (p + "r", .int(rank)),
                (p + "lora_alpha", number(alpha)),
                (p + "rank_pattern", .object(own.filter { $0.rank != rank }.map { (pattern($0), .int($0.rank)) })),
                (p + "alpha_pattern", .object(own.filter { $0.alpha != alpha }.map { (pattern($0), number($0.alpha)) })),
                (p + "target_modules", .array(own.map { .string(target($0)) })),
                (p + "lora_dropout", .double(dropout)),
                (p + "bias", .string("none")),
                (p + "use_rslora", .bool(false)),
                (p + "use_dora", .bool(false)),
                (p + "lora_bias", .bool(false)),
                (p + "init_lora_weights", .bool(true)),
            ]
        }
        return .object(pairs)
    }
}

extension LoRANetwork {
    /// The PEFT state dict with diffusers' component prefixes (see `savePEFT`).
    public func peftStateDict(foldScale: Bool = false) throws -> [String: Tensor] {
        try PEFTFormat.stateDict(adapters, foldScale: foldScale)
    }

    /// Writes `unet.<module>.lora_A.weight` / `.lora_B.weight` keys as diffusers' `save_lora_weights` does.
    /// With `adapterMetadata` (diffusers ≥ 0.34 reads it) alpha and rank go into `lora_adapter_metadata`;
    /// without it, alpha / rank is folded into B so that readers which assume scale 1 get the same result.
    public func savePEFT(to url: URL, adapterMetadata: Bool = true) throws {
        guard !adapters.isEmpty else { throw LoRAError.invalidConfig("network '\(name)' has no adapters to save") }
        var metadata = ["format": "pt"]
        if adapterMetadata {
            let dropout = adapters.map(\.dropout).max() ?? 0
            metadata[PEFTFormat.metadataKey] = PEFTFormat.adapterMetadata(adapters, dropout: dropout).dumps(indent: 2, sortKeys: true)
        }
        try Safetensors.save(peftStateDict(foldScale: !adapterMetadata), metadata: metadata, to: url)
    }
}
