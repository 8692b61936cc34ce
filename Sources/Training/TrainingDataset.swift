// Reading a prepared dataset for training: its images, the chosen caption variant and the split.
import Foundation
import RunFiles
import StableDiffusion

public enum TrainingDataset {
    /// The training examples of a dataset folder made by `inkwell prepare`.
    public static func examples(dataset: URL, config: TrainingConfig) throws -> [TrainingExample] {
        let variant = config.data.captions
        guard let manifest = try DatasetManifest.load(datasetDirectory: dataset) else {
            throw TrainingDataError(path: dataset.path, message: "no dataset manifest: run `inkwell prepare` to make this dataset")
        }
        var examples: [TrainingExample] = []
        var missing: [String] = []
        for image in manifest.images {
            let url = dataset.appendingPathComponent(image.output)
            let caption: String
            if let folder = variant.folderName {
                let file = dataset.appendingPathComponent(folder).appendingPathComponent(image.stem + ".txt")
                guard let text = try? String(contentsOf: file, encoding: .utf8) else {
                    missing.append(file.lastPathComponent)
                    continue
                }
                caption = text.trimmingCharacters(in: .whitespacesAndNewlines)
            } else {
                caption = config.data.vanillaPrompt
            }
            examples.append(TrainingExample(name: image.stem, image: url, caption: caption, isValidation: image.split == .validation))
        }
        if !missing.isEmpty {
            throw TrainingDataError(path: dataset.appendingPathComponent(variant.folderName ?? "").path, message:
                "\(missing.count) image(s) have no \(variant.rawValue) caption (run `inkwell caption --variant \(variant.rawValue)` first): "
                + missing.prefix(5).joined(separator: ", "))
        }
        guard !examples.isEmpty else { throw TrainingDataError(path: dataset.path, message: "the dataset has no images") }
        return examples
    }

    /// Names the model weights for the latent cache: the VAE's files' paths, sizes and dates.
    public static func identity(of source: ModelSource) throws -> String {
        let vae: URL
        switch source {
        case .diffusersFolder(let root): vae = root.appendingPathComponent("vae")
        case .singleFile(let file): vae = file
        }
        let fm = FileManager.default
        var parts = [vae.standardizedFileURL.path]
        let files = (try? fm.contentsOfDirectory(atPath: vae.path))?.sorted() ?? [""]
        for name in files {
            let path = name.isEmpty ? vae.path : vae.appendingPathComponent(name).path
            let attributes = try? fm.attributesOfItem(atPath: path)
            parts.append("\(name):\(attributes?[.size] ?? 0):\((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)")
        }
        return parts.joined(separator: "|")
    }
}
