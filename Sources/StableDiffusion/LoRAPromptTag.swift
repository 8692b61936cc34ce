// A1111's extra-network tags in a prompt: `<lora:inkstyle:0.8>` applies the LoRA file `inkstyle` from the
// user's Lora folder at scale 0.8, and the tag itself is cut from the text the encoder sees. A1111 keeps
// the tags in the prompt it writes into a PNG, which is how "Send to txt2img" brings the LoRAs back.
// Matches A1111 modules/extra_networks.py `parse_prompt` (`<(\w+):([^>]+)>`) and the Lora extension's
// arguments (`<lora:NAME>` is scale 1; a third value is a separate UNet scale).
import Foundation

public struct LoRAPromptTag: Equatable, Sendable {
    /// The LoRA's file name without extension, as A1111 lists it.
    public var name: String
    public var scale: Double

    public init(name: String, scale: Double) {
        self.name = name
        self.scale = scale
    }

    /// The largest scale magnitude a tag may ask for: `--lora FILE:SCALE`'s bound (LoRAStack.maxMultiplier,
    /// in a module this one does not import), far beyond A1111's sliders (they stop at 2).
    public static let maxScale = 100.0

    /// The tag as A1111 writes it: `<lora:NAME:SCALE>`.
    public var text: String { "<lora:\(name):\(GenerationInfo.number(scale))>" }

    /// The prompt without its extra-network tags (what the text encoder gets) and the LoRA tags it held.
    public static func extract(from prompt: String) throws -> (prompt: String, tags: [LoRAPromptTag]) {
        var tags: [LoRAPromptTag] = []
        var problems: [String] = []
        for match in prompt.matches(of: pattern) {
            let whole = String(match.output.0)
            guard match.output.1 == "lora" else {
                problems.append("\(whole): Inkwell applies only <lora:…> tags; remove it")
                continue
            }
            do { tags.append(try tag(match.output.2.components(separatedBy: ":"), whole)) } catch {
                problems.append("\(error)")
            }
        }
        guard problems.isEmpty else { throw PromptTagError(problems: problems) }
        return (prompt.replacing(pattern, with: ""), tags)
    }

    /// A regex literal: checked when Inkwell is compiled, so no prompt can make it fail to build.
    private static var pattern: Regex<(Substring, Substring, Substring)> { /<(\w+):([^>]+)>/ }

    /// `NAME`, `NAME:SCALE` or `NAME:TE:UNET` (one scale for both is all a LoRA stack here applies).
    private static func tag(_ items: [String], _ whole: String) throws -> LoRAPromptTag {
        let name = items[0].trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty else { throw PromptTagError(problems: ["\(whole): names no LoRA"]) }
        let scales = try items.dropFirst().map { item -> Double in
            guard let x = Double(item.trimmingCharacters(in: .whitespaces)), x.isFinite else {
                throw PromptTagError(problems: ["\(whole): '\(item)' is not a number (expected <lora:NAME:SCALE>)"])
            }
            guard abs(x) <= maxScale else {
                throw PromptTagError(problems: ["\(whole): the scale \(item) is beyond ±\(Int(maxScale)); give one within it (0.8 is typical)"])
            }
            return x
        }
        guard scales.count <= 2, Set(scales).count <= 1 else {
            throw PromptTagError(problems: ["\(whole): separate text-encoder and UNet scales are not supported; give one scale"])
        }
        return LoRAPromptTag(name: name, scale: scales.first ?? 1)
    }
}

public struct PromptTagError: Error, CustomStringConvertible, Equatable {
    public let problems: [String]
    public var description: String { "prompt: " + problems.joined(separator: "; ") }
}
