// kohya sd-scripts' LoRA format (networks/lora.py), the one A1111, ComfyUI and diffusers all read:
// `lora_unet_<module key with "." → "_">.lora_down.weight`, `.lora_up.weight` and a 0-d `.alpha`;
// `lora_te_…` for the text encoder. SD1.x kohya names UNet modules the diffusers way; some tools write
// LDM names (`lora_unet_input_blocks_1_1_proj_in`), which the loader translates with a mapping the caller gives.
import Foundation
import Torch

enum KohyaFormat {
    /// Name prefixes and their components; `lora_te1_` is what diffusers' `convert_state_dict_to_kohya`
    /// writes for SD1.x's single text encoder, `lora_te2_` is SDXL's second one (nil: not in SD1.x).
    static let prefixes: [(prefix: String, component: LoRAComponent?)] = [
        ("lora_unet_", .unet), ("lora_te_", .textEncoder), ("lora_te1_", .textEncoder), ("lora_te2_", nil),
    ]

    static func isKohyaKey(_ key: String) -> Bool { prefixes.contains { key.hasPrefix($0.prefix) } }

    /// The kohya module name of a module key.
    static func name(_ component: LoRAComponent, _ key: String) -> String {
        component.kohyaPrefix + "_" + underscored(key)
    }

    static func underscored(_ key: String) -> String { key.replacingOccurrences(of: ".", with: "_") }

    /// Parts of a module's keys that belong to module types Inkwell does not implement, and what they are.
    static func unsupportedKind(_ part: String) -> String? {
        if part.hasPrefix("hada_") { return "LoHa (LyCORIS)" }
        if part.hasPrefix("lokr_") { return "LoKr (LyCORIS)" }
        if part.hasPrefix("lora_mid") { return "LoCon with a Tucker core (lora_mid)" }
        if part == "dora_scale" { return "DoRA (weight-decomposed LoRA)" }
        if part == "diff" || part == "diff_b" { return "full weight difference (LyCORIS diff)" }
        if ["a1.weight", "a2.weight", "b1.weight", "b2.weight"].contains(part) { return "GLoRA (LyCORIS)" }
        if part.hasPrefix("oft_") { return "OFT (LyCORIS)" }
        if part == "on_input" || part == "weight" { return "(IA)³ (LyCORIS)" }
        if part == "scale" { return "a per-module scale (A1111 extension)" }
        return nil
    }

    /// Groups the kohya keys of `tensors` into modules; problems go to `problems`.
    static func read(_ tensors: [String: Tensor], keys: [String], problems: inout LoRAFileError) -> [LoRAModuleWeights] {
        var groups: [String: [(part: String, key: String)]] = [:]
        for key in keys {
            guard let dot = key.firstIndex(of: ".") else { problems.unrecognized.append(key); continue }
            groups[String(key[..<dot]), default: []].append((String(key[key.index(after: dot)...]), key))
        }
        var modules: [LoRAModuleWeights] = []
        for (name, parts) in groups.sorted(by: { $0.key < $1.key }) {
            guard let entry = prefixes.first(where: { name.hasPrefix($0.prefix) }) else { continue }
            guard let component = entry.component else {
                problems.unsupported += parts.map { ($0.key, "SDXL's second text encoder (lora_te2_), not in SD1.x") }
                continue
            }
            var down: String?, up: String?, alpha: String?
            var unsupported = false
            for (part, key) in parts {
                switch part {
                case "lora_down.weight", "lora_A.weight": down = key
                case "lora_up.weight", "lora_B.weight": up = key
                case "alpha": alpha = key
                default:
                    if let kind = unsupportedKind(part) {
                        problems.unsupported.append((key, kind))
                        unsupported = true
                    } else {
                        problems.unrecognized.append(key)
                    }
                }
            }
            // A module with an extra we cannot apply (DoRA's magnitude, a Tucker core) is reported, not half-applied.
            if unsupported { continue }
            guard let down, let up, let downTensor = tensors[down], let upTensor = tensors[up] else {
                problems.incomplete += parts.map { "\($0.key) (lora_down.weight and lora_up.weight are both needed)" }
                continue
            }
            var alphaValue: Double?
            if let alpha {
                guard let t = tensors[alpha], t.count == 1, let value = try? t.item(), value.isFinite else {
                    problems.incomplete.append("\(alpha) (alpha must be one finite number)")
                    continue
                }
                // kohya: "alpha = lora_dim if alpha is None or alpha == 0".
                alphaValue = value == 0 ? nil : value
            }
            let stem = String(name.dropFirst(entry.prefix.count))
            modules.append(LoRAModuleWeights(component: component, name: .kohya(stem), down: downTensor, up: upTensor,
                                             alpha: alphaValue, downKey: down, upKey: up))
        }
        return modules
    }

    /// The dotted path an underscore name most likely had: number tokens become their own components,
    /// the words between them keep their underscores (`input_blocks_1_1_transformer_blocks_0_attn1_to_q` →
    /// `input_blocks.1.1.transformer_blocks.0.attn1_to_q`). Enough for an LDM→diffusers key mapping,
    /// which rewrites only the numbered block prefix; the result is compared in underscore form again.
    static func dottedGuess(_ name: String) -> String {
        var components: [String] = []
        var words: [Substring] = []
        for token in name.split(separator: "_", omittingEmptySubsequences: false) {
            if !token.isEmpty, token.allSatisfy(\.isNumber) {
                if !words.isEmpty { components.append(words.joined(separator: "_")); words = [] }
                components.append(String(token))
            } else {
                words.append(token)
            }
        }
        if !words.isEmpty { components.append(words.joined(separator: "_")) }
        return components.joined(separator: ".")
    }

    // MARK: Writing

    /// `lora_down.weight`, `lora_up.weight` and a 0-d `alpha` for every adapter, all in `dtype` (kohya
    /// casts every tensor, alpha included, to its save precision).
    static func stateDict(_ adapters: [LoRAAdapter], dtype: DType) throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for adapter in adapters {
            let name = name(adapter.component, adapter.key)
            out[name + ".lora_down.weight"] = try adapter.down.detach().to(.cpu, dtype: dtype).contiguous()
            out[name + ".lora_up.weight"] = try adapter.up.detach().to(.cpu, dtype: dtype).contiguous()
            out[name + ".alpha"] = try Tensor(scalar: Float(adapter.alpha)).to(dtype)
        }
        return out
    }
}

extension LoRANetwork {
    /// The kohya state dict (see `saveKohya`).
    public func kohyaStateDict(dtype: DType = .float32) throws -> [String: Tensor] {
        try KohyaFormat.stateDict(adapters, dtype: dtype)
    }

    /// Writes the network in kohya's format with kohya's `ss_*` metadata (all values strings), atomically.
    /// `dtype` is the save precision (kohya's `--save_precision`); adapters keep training in their own.
    public func saveKohya(to url: URL, metadata: KohyaMetadata? = nil, dtype: DType = .float32) throws {
        guard !adapters.isEmpty else { throw LoRAError.invalidConfig("network '\(name)' has no adapters to save") }
        let tensors = try kohyaStateDict(dtype: dtype)
        var strings = metadata?.strings(for: self) ?? [:]
        if metadata != nil { strings["sshs_model_hash"] = try KohyaMetadata.modelHash(tensors) }
        try Safetensors.save(tensors, metadata: strings.isEmpty ? nil : strings, to: url)
    }
}
