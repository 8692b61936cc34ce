// What `inkwell demo` runs: the committed demo base model (a tiny SD1.x trained by `inkwell train-base` on
// thin line art) learns BOLD outlines from generated bold drawings, once per caption variant, through the
// real pipeline: prepare, BLIP captions (a tiny RANDOM BLIP: the words are gibberish), three LoRA runs with
// CLIP score (a tiny RANDOM CLIP, labelled so), compare, plots, summary with the ink-coverage shift.
import Foundation
import RunFiles

public enum DemoSetup {
    /// The prompts the demo samples and compares: captions of the base model's corpus.
    public static let prompts = ["two rings", "a star in the top left", "three triangles", "a square in the centre"]
    /// The vanilla variant's one caption for every bold drawing.
    public static let vanillaPrompt = "bold outlines"
    /// Shown beside every CLIP score of the demo: its CLIP has random weights.
    public static let clipNote = "random CLIP"

    /// Checks that `baseModel` is a trained demo model, before any work.
    public static func checkBaseModel(_ baseModel: URL) throws {
        let fm = FileManager.default
        guard fm.fileExists(atPath: baseModel.appendingPathComponent("model_index.json").path),
              fm.fileExists(atPath: baseModel.appendingPathComponent(BaseModelTrainer.recipeFile).path) else {
            throw BaseModelTrainingError("demo: no trained base model at \(baseModel.path) (no model_index.json and "
                + "\(BaseModelTrainer.recipeFile)); run `make demo-model` or `inkwell train-base --output \(baseModel.path)`, "
                + "or pass --base-model")
        }
    }

    /// Writes the demo's BLIP, CLIP and raw images under `root` (skipping what exists) and returns the
    /// pipeline config that runs over them with `baseModel`.
    public static func prepare(root: URL, baseModel: URL, steps: Int = 150) throws -> PipelineConfig {
        try checkBaseModel(baseModel)
        let fm = FileManager.default
        let models = root.appendingPathComponent("models")
        let blip = models.appendingPathComponent("blip-tiny-random"), clip = models.appendingPathComponent("clip-tiny-random")
        let raw = root.appendingPathComponent("data/raw")
        let items = try LineArtCorpus.draw(try LineArtCorpus.distinctScenes(count: 32, seed: 7), size: 64, boldFraction: 1)
        let words = Set(LineArtCorpus.vocabulary + ["a", "tattoo", "of", "line", "art", "bold", "outlines"]).sorted()
        if !fm.fileExists(atPath: raw.path) {
            // Images only: the BLIP variants caption them; vanilla uses its fixed prompt.
            try fm.createDirectory(at: raw, withIntermediateDirectories: true)
            for (i, item) in items.enumerated() {
                try item.image.writePNG(to: raw.appendingPathComponent(String(format: "bold%02d.png", i)))
            }
        }
        if !fm.fileExists(atPath: blip.appendingPathComponent("model.safetensors").path) {
            try DemoModels.writeBlip(to: blip, seed: 2, words: words)
        }
        if !fm.fileExists(atPath: clip.appendingPathComponent("model.safetensors").path) {
            try DemoModels.writeClip(to: clip, seed: 3, words: words)
        }

        var config = PipelineConfig()
        config.name = "demo"
        config.input = raw.path
        config.datasets = root.appendingPathComponent("data/processed").path
        config.resolution = 64
        config.validationFraction = 0.15
        config.blip = blip.path
        config.blipPrefix = "a tattoo of"
        config.blipBeams = 2
        config.compareScales = [0.5, 1.0]
        var t = TrainingConfig()
        t.model.path = baseModel.path
        t.data.dataset = "(set per run)"
        t.data.vanillaPrompt = vanillaPrompt
        t.data.flip = false
        t.lora.rank = 8
        t.lora.alpha = 8
        t.optimizer.learningRate = 2e-3
        t.schedule.warmupSteps = steps / 10
        t.training.maxSteps = steps
        t.training.batchSize = 4
        t.validation.every = max(1, steps / 3)
        t.samples.every = max(1, steps / 3)
        t.samples.prompts = prompts
        t.samples.negativePrompt = ""
        t.samples.size = 64
        t.samples.steps = 20
        t.samples.sampler = .ddim
        t.samples.seeds = [1, 2]
        t.samples.clipScore = true
        t.samples.clipModel = clip.path
        t.output.dir = root.appendingPathComponent("runs").path
        config.training = t
        return config
    }
}
