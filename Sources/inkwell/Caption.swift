// `inkwell caption`: caption files for a prepared dataset, per caption variant.
import ArgumentParser
import Captioning
import Foundation
import HubCache
import RunFiles
import StableDiffusion
import Training

struct Caption: ParsableCommand, ComputingCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write caption files for a prepared dataset: blip (captions_blip/) and blip_plus (captions_blip_plus/).",
        discussion: """
        vanilla needs no files: the trainer pairs every image with the fixed prompt. Hand-written captions beside the \
        raw images (<name>.txt) are used instead of the captioner, and caption files edited after they were written \
        are kept; --overwrite-captions replaces both. Reruns redo only what changed; --force redoes the rest too.
        """)

    @Option(help: "Folder that holds the datasets.") var output = "data/processed"
    @Option(help: "Dataset name, the folder under --output.") var name: String?
    @Option(help: "The dataset folder itself (instead of --output and --name).") var dataset: String?
    @Option(name: .customLong("variant"), help: "vanilla, blip or blip_plus; repeat for several (default: blip and blip_plus).")
    var variants: [String] = []
    @Option(help: "The vanilla variant's fixed prompt.") var prompt = CaptionVariant.defaultPrompt
    @Option(help: "blip_plus style hints, comma-separated phrases appended when the caption does not already say them.")
    var hints = StyleHints.defaultHints
    @Option(help: "A transformers BLIP captioning folder (BlipForConditionalGeneration), e.g. blip-image-captioning-large.")
    var blip: String?
    @Option(help: "The CLIP tokenizer that blip_plus captions are fitted to (77 tokens): a tokenizer folder or a diffusers model folder.")
    var tokenizer: String?
    @Option(name: .customLong("blip-prefix"), help: "Text the BLIP caption starts from, e.g. \"a tattoo of\" (conditional captioning).")
    var blipPrefix: String?
    @Option(help: "BLIP beam-search width (1: greedy).") var beams = 3
    @Option(name: .customLong("batch-size"), help: "Images per captioner call.") var batchSize: Int?
    @Flag(name: .customLong("overwrite-captions"), help: "Replace hand-written and hand-edited captions with the captioner's.")
    var overwriteCaptions = false
    @Flag(help: "Recaption and rewrite everything (hand-written and edited captions are still kept).") var force = false

    @OptionGroup var cpu: CPUOptions

    func run() throws {
        let requested = try (variants.isEmpty ? ["blip", "blip_plus"] : variants).map { text -> CaptionVariant in
            guard let variant = CaptionVariant(name: text) else {
                throw ValidationError("--variant must be vanilla, blip or blip_plus, got '\(text)'")
            }
            return variant
        }
        if requested.contains(.vanilla) {
            say("vanilla: every image trains with the fixed prompt \"\(prompt)\"; no caption files are needed")
        }
        let fileVariants = requested.filter { $0 != .vanilla }
        guard !fileVariants.isEmpty else { return }

        let folder: URL
        if let dataset {
            folder = URL(fileURLWithPath: dataset)
        } else if let name {
            folder = URL(fileURLWithPath: output).appendingPathComponent(name)
        } else {
            throw ValidationError("say which dataset: --name NAME (under --output) or --dataset DIR")
        }
        var options = CaptionOptions(datasetDirectory: folder)
        options.variants = fileVariants
        options.hints = StyleHints(hints)
        options.force = force
        options.overwriteCaptions = overwriteCaptions
        options.batchSize = batchSize

        let captioner = try blip.map(loadBLIP)
        let stage: CaptionStage
        if fileVariants.contains(.blipPlus) {
            guard let tokenizer else {
                throw ValidationError("blip_plus fits captions to CLIP's 77 tokens: pass --tokenizer with the model's tokenizer folder (or the model folder)")
            }
            stage = try CaptionStage(options, captioner: captioner, tokenizer: try loadTokenizer(tokenizer))
        } else {
            stage = try CaptionStage(options, captioner: captioner, tokenCount: { _ in 0 })  // only blip_plus counts tokens
        }

        let interruption = Interruption.install()
        var bar: ProgressLine?
        let report: CaptionReport
        do {
            report = try stage.run { progress in
                if bar == nil, progress.total > 0 { bar = ProgressLine(total: progress.total, label: "captioning", unit: "img") }
                bar?.update(progress.done)
                return !interruption.requested
            }
        } catch let error as CaptionStageError {
            let hint = blip == nil ? "pass --blip PATH, or write <name>.txt captions beside the raw images" : ""
            throw CommandError("\(error)\(hint.isEmpty ? "" : "; \(hint)")")
        }
        for line in report.summary { say(line) }
        if report.interrupted { throw ExitCode(130) }
    }

    /// The BLIP captioner from a transformers folder (`config.json`, `model.safetensors`, tokenizer and
    /// preprocessor files).
    func loadBLIP(_ path: String) throws -> any ImageCaptioner {
        let device = try chooseDevice(nil, setting: "INKWELL_DEVICE", dtype: nil, dtypeSetting: "")
        do {
            return try BlipImageCaptioner(folder: try ModelLocation.resolve(path), device: device, prefix: blipPrefix, beams: beams)
        } catch {
            throw CommandError("--blip \(path): cannot load a BLIP captioning model (\(error))")
        }
    }

    func loadTokenizer(_ path: String) throws -> CLIPTokenizer {
        let url = URL(fileURLWithPath: path)
        let nested = url.appendingPathComponent("tokenizer")
        let folder = FileManager.default.fileExists(atPath: nested.appendingPathComponent("vocab.json").path) ? nested : url
        do {
            return try CLIPTokenizer(folder: folder)
        } catch {
            throw CommandError("--tokenizer \(path): cannot load a CLIP tokenizer (\(error))")
        }
    }
}

/// A failure to report in one line, without the usage text that ArgumentParser adds to a ValidationError.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
