// Which files of a repo Inkwell downloads: the weights it loads, as safetensors of the asked variant, and the
// small files around them (configs, model_index.json, tokenizer and scheduler files). Never pickles (.bin,
// .ckpt, .pt: unpickling runs code), Flax/TF/ONNX weights, or a diffusers repo's single-file checkpoints at its
// root (SD1.5 keeps 4 and 7 GB ones there). Variants as diffusers picks them (pipelines/pipeline_loading_utils.py
// variant_compatible_siblings): in each folder the variant's weights when it has them, else the plain ones.
// `--include GLOB` replaces all of this with exactly the matching files, as `hf download --include` does
// (fnmatch, where `*` also crosses `/`, and a pattern ending in `/` means everything under that folder).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct HubFileSelection: Equatable, Sendable {
    /// The files to download, in repo order.
    public var files: [String]
    /// Files left out, with the reason, for the summary a user sees.
    public var skipped: [(path: String, reason: Reason)]

    public enum Reason: String, Sendable {
        case pickle = "pickled weights (never unpickled; --include to fetch)"
        case otherFormat = "not a format Inkwell reads"
        case otherVariant = "another variant"
        case rootCheckpoint = "single-file checkpoint beside the diffusers folders"
        case unusedComponent = "a component Inkwell does not use"
        case notIncluded = "not matched by --include"
        case other = "not a model file"
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.files == b.files && a.skipped.map(\.path) == b.skipped.map(\.path) && a.skipped.map(\.reason) == b.skipped.map(\.reason)
    }

    /// Components diffusers lists in model_index.json that Inkwell never loads; their weights are skipped
    /// (diffusers users pass `safety_checker=None`, as Inkwell's own pipeline does).
    static let unusedComponents: Set<String> = ["safety_checker"]

    public init(files: [String], variant: String? = nil, include: [String] = []) {
        if !include.isEmpty {
            let chosen = files.filter { path in include.contains { Self.matches($0, path) } }
            self.files = chosen
            self.skipped = files.filter { !chosen.contains($0) }.map { ($0, .notIncluded) }
            return
        }
        let isDiffusers = files.contains("model_index.json")
        // Folders whose weights exist in the asked variant: there, plain weights give way.
        let variantFolders = Set(files.filter { Self.isSafetensorsWeight($0) && Self.variant(of: $0) == variant && variant != nil }
            .map(Self.folder))
        var chosen: [String] = []
        var skipped: [(String, Reason)] = []
        for path in files {
            let name = (path as NSString).lastPathComponent
            let ext = (name as NSString).pathExtension.lowercased()
            let folder = Self.folder(path)
            if ["json", "txt"].contains(ext) && !Self.isIndex(name) {
                // Configs and tokenizer files: small, and what every loader reads first.
                chosen.append(path)
            } else if Self.isSafetensorsWeight(path) || Self.isIndex(name) {
                if isDiffusers && folder.isEmpty {
                    skipped.append((path, .rootCheckpoint))
                } else if Self.unusedComponents.contains(String(folder.split(separator: "/").first ?? "")) {
                    skipped.append((path, .unusedComponent))
                } else if Self.variant(of: path) == (variantFolders.contains(folder) ? variant : nil) {
                    chosen.append(path)
                } else {
                    skipped.append((path, .otherVariant))
                }
            } else if ["bin", "ckpt", "pt", "pth", "pkl"].contains(ext) {
                skipped.append((path, .pickle))
            } else if ["msgpack", "h5", "onnx", "pb", "gguf", "mlmodel", "tflite", "ot"].contains(ext) || name.hasSuffix(".onnx_data") {
                skipped.append((path, .otherFormat))
            } else {
                skipped.append((path, .other))
            }
        }
        self.files = chosen
        self.skipped = skipped
    }

    /// fnmatch without FNM_PATHNAME, as Python's fnmatch (huggingface_hub's filter_repo_objects); a pattern
    /// ending in `/` matches everything under that folder.
    public static func matches(_ pattern: String, _ path: String) -> Bool {
        let pattern = pattern.hasSuffix("/") ? pattern + "*" : pattern
        return fnmatch(pattern, path, 0) == 0
    }

    static func folder(_ path: String) -> String { (path as NSString).deletingLastPathComponent }

    static func isSafetensorsWeight(_ path: String) -> Bool { path.lowercased().hasSuffix(".safetensors") }

    /// A sharded checkpoint's index: `X.safetensors.index.json`, or `X.safetensors.index.fp16.json` for a variant.
    static func isIndex(_ name: String) -> Bool {
        name.range(of: #"\.safetensors\.index(\.[A-Za-z0-9_]+)?\.json$"#, options: .regularExpression) != nil
    }

    /// The weight names diffusers and transformers give a variant to (a `sd_1.5.safetensors` has none).
    static let weightStems: Set<String> = ["diffusion_pytorch_model", "model", "pytorch_model"]

    /// The variant tag in a weight's name as diffusers writes it: `model.fp16.safetensors`,
    /// `model.fp16-00001-of-00002.safetensors`, `model.safetensors.index.fp16.json`; nil for plain weights.
    static func variant(of path: String) -> String? {
        let name = (path as NSString).lastPathComponent
        if let range = name.range(of: #"\.safetensors\.index\.([A-Za-z0-9_]+)\.json$"#, options: .regularExpression) {
            return String(name[range].dropFirst(".safetensors.index.".count).dropLast(".json".count))
        }
        guard name.lowercased().hasSuffix(".safetensors") else { return nil }
        var stem = String(name.dropLast(".safetensors".count))
        if let shard = stem.range(of: #"-\d{5}-of-\d{5}$"#, options: .regularExpression) { stem.removeSubrange(shard) }
        let parts = stem.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, weightStems.contains(String(parts[0])) else { return nil }
        return String(parts[1])
    }
}
