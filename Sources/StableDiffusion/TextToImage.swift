// Generating to files: runs the pipeline (text to image, or img2img when the options hold an init image) and
// writes one PNG per image with its parameters in A1111's `parameters` text chunk (prompt, sampler, steps,
// CFG scale, seed, size, model hash, denoising strength).
import Foundation
import Imaging
import Torch

public struct TextToImageJob {
    public var options: GenerationOptions
    public var sampler: Sampler?
    /// The model's display name and A1111 model hash (nil when the hash is not wanted).
    public var modelName: String?
    public var modelHash: String?
    /// (alias, LoRA hash, scale) of every LoRA applied: the `Lora hashes` key, and a `<lora:alias:scale>`
    /// tag in the written prompt for each one the prompt does not already name.
    public var loras: [(String, String, Double)] = []
    public var outputDirectory: URL

    public init(options: GenerationOptions, sampler: Sampler?, outputDirectory: URL) {
        self.options = options
        self.sampler = sampler
        self.outputDirectory = outputDirectory
    }

    /// Refuses an output folder path that names something other than a folder (an existing file, a pipe), before
    /// any model loads; `setting` is the flag that gave it. A missing folder is fine: it is created.
    public static func checkOutputDirectory(_ url: URL, setting: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else { return }
        throw OutputDirectoryError(description: "\(setting) \(url.path): exists and is not a folder; name a folder (it is created when missing)")
    }

    public struct OutputDirectoryError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The infotext of the image at `index` in the batch.
    public func info(index: Int, defaultSampler: Sampler?) -> GenerationInfo {
        let names = (sampler ?? defaultSampler)?.a1111 ?? (sampler: "Default", schedule: nil)
        let tagged = Set(((try? LoRAPromptTag.extract(from: options.prompt))?.tags ?? []).map(\.name))
        let tags = loras.filter { !tagged.contains($0.0) }.map { LoRAPromptTag(name: $0.0, scale: $0.2).text }
        let prompt = ([options.prompt] + tags).filter { !$0.isEmpty }.joined(separator: " ")
        var info = GenerationInfo(prompt: prompt, negativePrompt: options.negativePrompt, steps: options.steps,
                                  sampler: names.sampler, scheduleType: names.schedule, cfgScale: options.guidanceScale,
                                  seed: seed(index: index), width: options.width, height: options.height,
                                  modelHash: modelHash, model: modelName, clipSkip: options.clipSkip + 1)
        if options.initImage != nil { info.denoisingStrength = options.strength }
        info.loraHashes = loras.map { ($0.0, $0.1) }
        if options.batch > 1 {
            info.extra += [("Batch size", String(options.batch)), ("Batch pos", String(index)),
                           ("Seeds", options.perImageSeeds ? "one per image" : "one for the batch")]
        }
        info.version = "Inkwell"
        return info
    }

    /// The seed written for the image at `index`: its own with per-image seeds, else the batch's.
    public func seed(index: Int) -> UInt64 { options.perImageSeeds ? options.seed &+ UInt64(index) : options.seed }

    /// Runs the pipeline and writes `<seed>-<n>.png` files; returns their URLs.
    public func run(_ pipeline: StableDiffusionPipeline, progress: ((Int, Int) -> Bool)? = nil) throws -> [URL] {
        var options = self.options
        if let sampler { options.use(sampler) }
        // The encoder sees the prompt without its <lora:…> tags, as in A1111; the PNG keeps them.
        options.prompt = try LoRAPromptTag.extract(from: options.prompt).prompt
        let images = try Image.batch(try pipeline(options, progress: progress), range: .unit)
        let defaultSampler = Sampler(config: pipeline.schedulerConfig)
        try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        return try images.enumerated().map { index, image in
            let url = nextFreeURL(prefix: "\(seed(index: index))-\(index)")
            let text = info(index: index, defaultSampler: defaultSampler).text
            try image.writePNG(to: url, text: [PNGTextChunk(keyword: "parameters", text: text)])
            return url
        }
    }

    /// `<prefix>.png`, or `<prefix>_2.png`, … so earlier images are never overwritten.
    func nextFreeURL(prefix: String) -> URL {
        var url = outputDirectory.appendingPathComponent("\(prefix).png")
        var n = 2
        while FileManager.default.fileExists(atPath: url.path) {
            url = outputDirectory.appendingPathComponent("\(prefix)_\(n).png")
            n += 1
        }
        return url
    }
}
