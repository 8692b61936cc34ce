// A LoRA file read into per-module weights, whatever tool wrote it: kohya (`lora_unet_…`, diffusers- or
// LDM-named), PEFT (`lora_A`/`lora_B`, with or without an adapter name, `unet.`/`text_encoder.`/
// `base_model.model.` prefixes) and the older diffusers names (`.lora.down`, `…processor.to_q_lora.down`,
// `.lora_linear_layer.down`). Keys of module types Inkwell does not implement are kept by name for the error.
import Foundation
import Torch

/// How a file names a module.
public enum LoRAModuleName: Hashable, Sendable, CustomStringConvertible {
    /// The module's dotted key in its component (`down_blocks.0.attentions.0.proj_in`).
    case dotted(String)
    /// kohya's underscore name without the `lora_unet_`/`lora_te_` prefix (`down_blocks_0_attentions_0_proj_in`).
    case kohya(String)

    public var description: String {
        switch self {
        case .dotted(let k): return k
        case .kohya(let k): return k
        }
    }
}

/// One module's weights as the file holds them, before they are matched to a model.
public struct LoRAModuleWeights {
    public var component: LoRAComponent
    public var name: LoRAModuleName
    public var down: Tensor
    public var up: Tensor
    /// nil when the file records none: then alpha = rank (scale 1), as kohya, A1111, ComfyUI and diffusers agree.
    public var alpha: Double?
    /// The file key of `down`, for messages.
    public var downKey: String
    public var upKey: String
}

public enum LoRAFileFormat: String, Sendable {
    case kohya
    /// `lora_A` / `lora_B` keys (diffusers' `save_lora_weights` today, or peft's `save_pretrained`).
    case peft
    /// `.lora.down` / `.lora_linear_layer.down` / `…_lora.down` keys (diffusers before its PEFT backend).
    case diffusers
}

/// Why a LoRA file cannot be applied: every problem found, each with the file's key.
public struct LoRAFileError: Error, CustomStringConvertible {
    public var path: String
    /// Keys of module types Inkwell does not implement, with what they are (LoHa, LoKr, DoRA, 3×3 conv, ...).
    public var unsupported: [(key: String, kind: String)] = []
    /// Modules of the file that match no module of the model.
    public var unmatched: [String] = []
    /// Tensors whose shape does not fit the module they name: (key, shape the model needs, shape in the file).
    public var misShaped: [(key: String, expected: [Int], found: [Int])] = []
    /// Keys whose partner is missing (a down without an up, an alpha without weights, ...).
    public var incomplete: [String] = []
    /// Keys that are no LoRA weight this reader knows.
    public var unrecognized: [String] = []
    /// Modules the file holds in all (to tell "nothing matches" from "some do not").
    public var moduleCount = 0
    public var matchedCount = 0

    public init(path: String) { self.path = path }

    public var isEmpty: Bool {
        unsupported.isEmpty && unmatched.isEmpty && misShaped.isEmpty && incomplete.isEmpty && unrecognized.isEmpty
    }

    static let listLimit = 40

    public var description: String {
        var lines: [String] = []
        if moduleCount == 0 && unsupported.isEmpty && incomplete.isEmpty {
            lines.append("\(path) holds no LoRA weights Inkwell can read")
        } else if moduleCount == 0 {
            lines.append("\(path) holds no LoRA module Inkwell can apply:")
        } else if matchedCount == 0 && !unmatched.isEmpty {
            lines.append("\(path): none of its \(moduleCount) LoRA modules matches a module of the model")
        } else {
            lines.append("\(path) does not fit the model:")
        }
        func section(_ title: String, _ items: [String]) {
            guard !items.isEmpty else { return }
            lines.append("  \(title) (\(items.count)):")
            lines += items.prefix(Self.listLimit).map { "    \($0)" }
            if items.count > Self.listLimit { lines.append("    … and \(items.count - Self.listLimit) more") }
        }
        section("unsupported module types", unsupported.sorted { $0.key < $1.key }.map { "\($0.key): \($0.kind)" })
        section("modules that match nothing in the model", unmatched.sorted())
        section("mis-shaped tensors", misShaped.sorted { $0.key < $1.key }.map { "\($0.key): model needs \($0.expected), file has \($0.found)" })
        section("incomplete modules", incomplete.sorted())
        section("unrecognized keys", unrecognized.sorted())
        return lines.joined(separator: "\n")
    }
}

/// A LoRA file read into modules. Reading checks the file's own consistency; matching it to a model is
/// `LoRANetwork.load`.
public struct LoRAFile {
    public let path: String
    public let format: LoRAFileFormat
    public let modules: [LoRAModuleWeights]
    public let metadata: [String: String]
    /// Problems found in the file itself (unsupported, incomplete and unrecognized keys).
    public let problems: LoRAFileError

    /// Reads a `.safetensors` LoRA. For peft's `adapter_model.safetensors`, the `adapter_config.json` beside it
    /// supplies alpha (peft stores it nowhere else).
    public init(url: URL) throws {
        try PickledCheckpoint.refuse(url)
        let file = try SafetensorsFile(url: url)
        let configURL = url.deletingLastPathComponent().appendingPathComponent("adapter_config.json")
        var peftConfig: PEFTAdapterConfig?
        if FileManager.default.fileExists(atPath: configURL.path) {
            peftConfig = try PEFTAdapterConfig(json: Data(contentsOf: configURL), source: configURL.path)
        }
        let tensors = try file.tensors()
        try NonFiniteWeights.check(tensors, source: url.path)
        try self.init(tensors: tensors, metadata: file.metadata, path: url.path, adapterConfig: peftConfig)
    }

    /// Reads tensors already in memory. `adapterConfig` is a peft `adapter_config.json` for files that have one.
    public init(tensors: [String: Tensor], metadata: [String: String] = [:], path: String = "LoRA state dict",
                adapterConfig: PEFTAdapterConfig? = nil) throws {
        self.path = path
        self.metadata = metadata
        var problems = LoRAFileError(path: path)
        let kohyaKeys = tensors.keys.filter(KohyaFormat.isKohyaKey)
        let otherKeys = tensors.keys.filter { !KohyaFormat.isKohyaKey($0) }
        var modules: [LoRAModuleWeights] = []
        if !kohyaKeys.isEmpty {
            modules += KohyaFormat.read(tensors, keys: kohyaKeys, problems: &problems)
        }
        var dottedFormat: LoRAFileFormat?
        if !otherKeys.isEmpty {
            let configs = try PEFTFormat.adapterConfigs(metadata: metadata, file: adapterConfig, path: path)
            let (read, format) = PEFTFormat.read(tensors, keys: otherKeys, configs: configs, problems: &problems)
            modules += read
            dottedFormat = format
        }
        problems.moduleCount = modules.count
        // A file with both kinds of keys is reported as kohya (the name only shows in messages).
        format = kohyaKeys.isEmpty ? (dottedFormat ?? .peft) : .kohya
        self.modules = modules.sorted { ($0.component.rawValue, $0.name.description) < ($1.component.rawValue, $1.name.description) }
        self.problems = problems
        if modules.isEmpty && problems.unsupported.isEmpty && problems.incomplete.isEmpty {
            // Not a LoRA at all: say so with every key.
            var error = problems
            error.unrecognized = tensors.keys.sorted()
            throw error
        }
    }
}
