// The A1111 "parameters" text ("infotext") that generated PNGs carry, so A1111's PNG Info tab and
// CivitAI read Inkwell's images. Matches A1111 modules/processing.py `create_infotext` and
// modules/infotext_utils.py `quote` / `parse_generation_parameters`.
import Foundation
import Torch

public struct GenerationInfo: Equatable, Sendable {
    public var prompt: String
    public var negativePrompt: String = ""
    public var steps: Int
    /// A1111's sampler name ("Euler a", "DPM++ 2M", "DDIM", "PLMS", ...).
    public var sampler: String
    /// A1111 ≥ 1.9 names the noise schedule separately ("Karras"); nil leaves it out.
    public var scheduleType: String?
    public var cfgScale: Double
    public var seed: UInt64
    public var width: Int
    public var height: Int
    /// First 10 hex digits of the checkpoint file's SHA-256.
    public var modelHash: String?
    /// The checkpoint's file or folder name without extension.
    public var model: String?
    public var clipSkip: Int = 1
    /// img2img's strength (A1111's "Denoising strength"); nil for text to image.
    public var denoisingStrength: Double?
    /// (alias, 12-hex LoRA hash) for each LoRA applied.
    public var loraHashes: [(String, String)] = []
    /// Further keys, in order, written after the standard ones.
    public var extra: [(String, String)] = []
    public var version: String?

    public init(prompt: String, negativePrompt: String = "", steps: Int, sampler: String, scheduleType: String? = nil,
                cfgScale: Double, seed: UInt64, width: Int, height: Int, modelHash: String? = nil,
                model: String? = nil, clipSkip: Int = 1, version: String? = nil) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.steps = steps
        self.sampler = sampler
        self.scheduleType = scheduleType
        self.cfgScale = cfgScale
        self.seed = seed
        self.width = width
        self.height = height
        self.modelHash = modelHash
        self.model = model
        self.clipSkip = clipSkip
        self.version = version
    }

    public static func == (a: GenerationInfo, b: GenerationInfo) -> Bool { a.text == b.text }

    /// The ordered key/value pairs of the parameters line (A1111's insertion order).
    public var parameters: [(String, String)] {
        var p: [(String, String)] = [("Steps", String(steps)), ("Sampler", sampler)]
        if let scheduleType { p.append(("Schedule type", scheduleType)) }
        p.append(("CFG scale", Self.number(cfgScale)))
        p.append(("Seed", String(seed)))
        p.append(("Size", "\(width)x\(height)"))
        if let modelHash { p.append(("Model hash", modelHash)) }
        if let model { p.append(("Model", model)) }
        if let denoisingStrength { p.append(("Denoising strength", Self.number(denoisingStrength))) }
        if clipSkip > 1 { p.append(("Clip skip", String(clipSkip))) }
        if !loraHashes.isEmpty {
            // A1111 strips ':' and ',' from aliases so the list stays parseable.
            let list = loraHashes.map { alias, hash in
                "\(alias.replacingOccurrences(of: ":", with: "").replacingOccurrences(of: ",", with: "")): \(hash)"
            }
            p.append(("Lora hashes", list.joined(separator: ", ")))
        }
        p += extra
        if let version { p.append(("Version", version)) }
        return p
    }

    /// The full text stored in the PNG's `parameters` chunk.
    public var text: String {
        let negative = negativePrompt.isEmpty ? "" : "\nNegative prompt: \(negativePrompt)"
        let line = parameters.map { k, v in k == v ? k : "\(k): \(Self.quote(v))" }.joined(separator: ", ")
        return "\(prompt)\(negative)\n\(line)".trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A1111's `quote`: JSON-encode values containing ',', newline or ':' (`json.dumps`, ensure_ascii off).
    static func quote(_ value: String) -> String {
        guard value.contains(",") || value.contains("\n") || value.contains(":") else { return value }
        return Safetensors.jsonString(value)
    }

    static func unquote(_ value: String) -> String {
        guard value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2,
              let data = value.data(using: .utf8),
              let s = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) as? String
        else { return value }
        return s
    }

    /// Whole numbers print without a fraction ("7"), others as Python's repr would ("7.5").
    public static func number(_ x: Double) -> String {
        x == x.rounded() && Swift.abs(x) < 1e15 ? String(Int(x)) : String(x)
    }

    // MARK: Parsing

    /// Parses the parameters line into ordered (key, value) pairs, as A1111's `re_param` does.
    static func parseParameters(_ line: String) -> [(String, String)] {
        let pattern = #"\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)"#
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return [] }
        let ns = line as NSString
        return regex.matches(in: line, range: NSRange(location: 0, length: ns.length)).map { m in
            (ns.substring(with: m.range(at: 1)), unquote(ns.substring(with: m.range(at: 2))))
        }
    }

    /// Reads an infotext back (for `inkwell generate --from image.png` and tests); nil when the
    /// text has no A1111 parameters line.
    public init?(text: String) {
        var lines = text.components(separatedBy: "\n")
        guard let last = lines.last else { return nil }
        let params = Self.parseParameters(last)
        guard params.count >= 3 else { return nil }
        lines.removeLast()
        var prompt: [String] = [], negative: [String] = []
        var inNegative = false
        for line in lines {
            if line.hasPrefix("Negative prompt:") {
                inNegative = true
                negative.append(String(line.dropFirst("Negative prompt:".count)).trimmingCharacters(in: .whitespaces))
            } else if inNegative { negative.append(line) } else { prompt.append(line) }
        }
        let dict = Dictionary(params, uniquingKeysWith: { a, _ in a })
        let size = (dict["Size"] ?? "").split(separator: "x").compactMap { Int($0) }
        guard let steps = dict["Steps"].flatMap(Int.init), let sampler = dict["Sampler"] else { return nil }
        self.init(prompt: prompt.joined(separator: "\n"), negativePrompt: negative.joined(separator: "\n"),
                  steps: steps, sampler: sampler, scheduleType: dict["Schedule type"],
                  cfgScale: dict["CFG scale"].flatMap(Double.init) ?? 7, seed: dict["Seed"].flatMap(UInt64.init) ?? 0,
                  width: size.first ?? 512, height: size.count > 1 ? size[1] : 512, modelHash: dict["Model hash"],
                  model: dict["Model"], clipSkip: dict["Clip skip"].flatMap(Int.init) ?? 1, version: dict["Version"])
        denoisingStrength = dict["Denoising strength"].flatMap(Double.init)
        let standard: Set = ["Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size", "Model hash", "Model",
                             "Denoising strength", "Clip skip", "Lora hashes", "Version"]
        if let loras = dict["Lora hashes"] {
            loraHashes = loras.components(separatedBy: ", ").compactMap { entry in
                let parts = entry.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                return parts.count == 2 ? (parts[0], parts[1]) : nil
            }
        }
        extra = params.filter { !standard.contains($0.0) }
    }
}
