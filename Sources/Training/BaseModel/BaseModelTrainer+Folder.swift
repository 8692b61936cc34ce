// A trained base model as a diffusers folder: the trainer's three stores written back into the layout
// that `DemoModels.writeStableDiffusion` started them in, the VAE config with the measured scaling factor,
// the recipe that made it and its loss log. Written under `<folder>.partial` and renamed when complete.
import AtomicFile
import Foundation
import StableDiffusion
import Torch

extension BaseModelTrainer {
    /// What `train(recipe:into:)` did.
    public struct Summary: Sendable {
        public var folder: URL
        public var seconds: Double
        public var finalVAELoss: Double?
        public var finalDiffusionLoss: Double?
        public var scalingFactor: Double
        public var skipped: Bool
    }

    /// The file the recipe is recorded in, beside `model_index.json`.
    public static let recipeFile = "inkwell_recipe.json"

    /// Trains a `architecture` model by `recipe` into the diffusers folder `output`. A folder whose
    /// recorded recipe equals `recipe` is up to date and skipped unless `force`.
    public static func train(recipe: BaseModelRecipe, into output: URL, architecture: DemoModels.Architecture = .drawing,
                             device: Device = .cpu, force: Bool = false, checkpointEvery: Int = 1000, shouldStop: () -> Bool = { false },
                             events: (Event) -> Void = { _ in }) throws -> Summary {
        try recipe.validate()
        let fm = FileManager.default
        if !force, let data = try? Data(contentsOf: output.appendingPathComponent(recipeFile)),
           let recorded = try? JSONDecoder().decode(BaseModelRecipe.self, from: data), recorded == recipe,
           fm.fileExists(atPath: output.appendingPathComponent("model_index.json").path) {
            events(.message("\(output.path) is up to date with this recipe (use --force to retrain)"))
            return Summary(folder: output, seconds: 0, scalingFactor: 0, skipped: true)
        }
        let start = Date()
        let partial = output.deletingLastPathComponent().appendingPathComponent(output.lastPathComponent + ".partial")
        try? fm.removeItem(at: partial)
        try DemoModels.writeStableDiffusion(to: partial, seed: recipe.seed, words: LineArtCorpus.vocabulary, architecture: architecture)
        let pipeline = try StableDiffusionPipeline.load(.diffusersFolder(partial), device: device, dtype: .float32)
        events(.message("corpus: \(recipe.corpusSize) line-art images of \(recipe.imageSize) px (seed \(recipe.corpusSeed))"))
        let corpus = try LineArtCorpus.make(count: recipe.corpusSize, size: recipe.imageSize, seed: recipe.corpusSeed)
        let vaeCorpus = try LineArtCorpus.make(count: recipe.corpusSize, size: recipe.imageSize, seed: recipe.corpusSeed,
                                               boldFraction: recipe.vaeBoldFraction)
        let trainer = try BaseModelTrainer(recipe: recipe, pipeline: pipeline, corpus: corpus, vaeCorpus: vaeCorpus)
        events(.message("phase 1: VAE, \(recipe.vaeSteps) steps of \(recipe.vaeBatchSize) (\(pipeline.vae.store.parameterCount) parameters), "
            + "\(Int(recipe.vaeBoldFraction * 100))% of its images bold"))
        try trainer.trainVAE(shouldStop: shouldStop, events: events)
        try trainer.cacheLatents()
        try trainer.save(to: partial)
        events(.message(String(format: "latents cached; scaling factor %.5f; the trained VAE is in %@", trainer.scalingFactor, partial.path)))
        let params = pipeline.unet.store.parameterCount + pipeline.textEncoder.store.parameterCount
        events(.message("phase 2: UNet + text encoder, \(recipe.diffusionSteps) steps of \(recipe.diffusionBatchSize) (\(params) parameters)"))
        // The folder under way holds a loadable model every `checkpointEvery` steps (for a look, or a long run cut short).
        try trainer.trainDiffusion(shouldStop: shouldStop) { event in
            events(event)
            if case .step(.diffusion, let step, let total, _, _) = event, step % checkpointEvery == 0, step < total {
                do {
                    try trainer.save(to: partial)
                    events(.message("step \(step): weights so far in \(partial.path)"))
                } catch {
                    events(.message("step \(step): could not save a checkpoint: \(error)"))
                }
            }
        }
        try trainer.save(to: partial)
        try? fm.removeItem(at: output)
        try fm.moveItem(at: partial, to: output)
        func last(_ phase: Phase) -> Double? {
            let tail = trainer.losses.filter { $0.0 == phase }.suffix(50).map(\.2)
            return tail.isEmpty ? nil : tail.reduce(0, +) / Double(tail.count)
        }
        return Summary(folder: output, seconds: Date().timeIntervalSince(start), finalVAELoss: last(.vae),
                       finalDiffusionLoss: last(.diffusion), scalingFactor: trainer.scalingFactor, skipped: false)
    }

    /// Writes the trained weights over the folder's random ones, with the VAE's new scaling factor.
    public func save(to folder: URL) throws {
        try pipeline.unet.store.save(to: folder.appendingPathComponent("unet/diffusion_pytorch_model.safetensors"))
        try pipeline.textEncoder.store.save(to: folder.appendingPathComponent("text_encoder/model.safetensors"))
        try pipeline.vae.store.save(to: folder.appendingPathComponent("vae/diffusion_pytorch_model.safetensors"))
        var vae = pipeline.vae.config
        vae.scalingFactor = (scalingFactor * 1e5).rounded() / 1e5
        let json = JSONEncoder()
        json.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(try DemoModels.classNamed("AutoencoderKL", try json.encode(vae)),
                            to: folder.appendingPathComponent("vae/config.json"))
        try writeAtomically(try json.encode(recipe), to: folder.appendingPathComponent(Self.recipeFile))
        let log = "phase,step,loss\n" + losses.map { "\($0.0.rawValue),\($0.1),\(String(format: "%.6f", $0.2))" }.joined(separator: "\n") + "\n"
        try writeAtomically(Data(log.utf8), to: folder.appendingPathComponent("training_log.csv"))
        let readme = """
            A tiny SD1.x text-to-image model (diffusers layout; loads in diffusers and Inkwell) trained from scratch \
            by `inkwell train-base` on generated line art: thin black outlines of rings, squares, triangles, stars and \
            crosses on white, one to three of them, captioned like "two rings" or "a star in the top left".
            Its VAE also learned bold outlines (as SD's VAE has seen every style), its UNet only thin ones: \
            a LoRA on bold drawings is what makes it draw bold.
            The recipe is in \(Self.recipeFile); the loss of every step in training_log.csv. It draws at 64 px.

            """
        try writeAtomically(Data(readme.utf8), to: folder.appendingPathComponent("README.txt"))
        let indexURL = folder.appendingPathComponent("model_index.json")
        if var index = try JSONSerialization.jsonObject(with: Data(contentsOf: indexURL)) as? [String: Any] {
            index["_inkwell_note"] = "trained by inkwell train-base on generated line art (see README.txt)"
            try writeAtomically(JSONSerialization.data(withJSONObject: index, options: [.sortedKeys, .prettyPrinted]), to: indexURL)
        }
    }
}
