// Everything a training config points at, checked before a model loads or a latent is cached: the model
// and its tokenizer, the dataset and its captions, the CLIP model for CLIP scores, the output folder. The
// config's own values were checked when it parsed; this checks the world. One error lists every problem,
// each with what to do, so a user fixes them in one go instead of one per ten-minute model load.
import Foundation
import HubCache
import RunFiles
import StableDiffusion

public struct PreflightError: Error, CustomStringConvertible, Equatable {
    public let problems: [String]
    public init(_ problems: [String]) { self.problems = problems }
    public var description: String {
        problems.count == 1 ? problems[0]
            : "\(problems.count) problems:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

public enum TrainingPreflight {
    /// The problems with what `config` points at, and the dataset's examples when it was checked and read.
    /// `dataset: false` leaves the dataset out (a pipeline makes it later). A model or CLIP named by a repo id the
    /// cache lacks is downloaded here, but only when nothing else is wrong (`downloads: false` says the caller
    /// found problems of its own): a typo in the dataset's path is reported at once, not after gigabytes.
    public static func check(_ config: TrainingConfig, dataset: Bool = true, downloads: Bool = true) -> (problems: [String], examples: [TrainingExample]) {
        var datasetProblems: [String] = [], otherProblems: [String] = []
        var examples: [TrainingExample] = []
        if dataset {
            do {
                examples = try TrainingDataset.examples(dataset: URL(fileURLWithPath: config.data.dataset), config: config)
                if examples.allSatisfy(\.isValidation) {
                    datasetProblems.append("data.dataset: all \(examples.count) images are validation images; run `inkwell prepare` with a smaller --val-fraction")
                }
            } catch {
                datasetProblems.append("data.dataset: \(error)")
            }
        }
        if config.samples.every > 0 && config.samples.prompts.isEmpty {
            otherProblems.append("samples.prompts is empty: add a prompt, or set samples.every = 0 for no samples")
        }
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: config.output.dir, isDirectory: &isFolder), !isFolder.boolValue {
            otherProblems.append("output.dir: \(config.output.dir) is a file; point it at a folder for the runs")
        }
        let download = downloads && datasetProblems.isEmpty && otherProblems.isEmpty
        let modelChecked = download || !ModelLocation.needsDownload(config.model.path)
        var clipProblems: [String] = []
        if config.samples.clipScore, let name = config.samples.clipModel, download || !ModelLocation.needsDownload(name) {
            let fixes = "set samples.clip_score = false, or point samples.clip_model at a CLIP ViT-B/32 folder or repo id"
            do {
                let folder = try ModelLocation.resolve(name)
                // Each entry: the files of which one must be there (transformers 5's layout or the Hub's).
                let missing = [["config.json"], ["preprocessor_config.json", "processor_config.json"],
                               ["tokenizer.json", "vocab.json"]].filter { alternatives in
                    !alternatives.contains { FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path) }
                }.map { $0.joined(separator: " or ") }
                if !isDirectory(folder.path) {
                    clipProblems.append("samples.clip_model: \(folder.path) is not a folder; \(fixes)")
                } else if !missing.isEmpty {
                    clipProblems.append("samples.clip_model: \(folder.path) is not a CLIP model folder (no \(missing.joined(separator: ", "))); \(fixes)")
                }
            } catch {
                clipProblems.append("samples.clip_model: \(error); \(fixes)")
            }
        }
        let problems = (modelChecked ? modelProblems(config.model) : []) + datasetProblems + clipProblems + otherProblems
        return (problems, examples)
    }

    /// The model folder or checkpoint, and the tokenizer a single file needs beside it.
    static func modelProblems(_ model: TrainingConfig.Model) -> [String] {
        let source: ModelSource
        do {
            source = try ModelSource(path: model.path, variant: model.variant)
        } catch {
            return ["model.path: \(error); point it at a diffusers folder or a .safetensors checkpoint"]
        }
        var problems: [String] = []
        if let tokenizer = model.tokenizer, !isDirectory(tokenizer) {
            problems.append("model.tokenizer: no folder \(tokenizer); point it at SD1.5's tokenizer/ (vocab.json, merges.txt)")
        }
        if case .singleFile(let file) = source {
            let beside = file.deletingLastPathComponent().appendingPathComponent("tokenizer")
            if model.tokenizer == nil && !isDirectory(beside.path) {
                problems.append("model.tokenizer: a single-file checkpoint carries no tokenizer; put SD1.5's tokenizer/ folder "
                    + "beside \(file.lastPathComponent) or set model.tokenizer")
            }
        }
        return problems
    }

    public static func isDirectory(_ path: String) -> Bool {
        var isFolder: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue
    }
}
