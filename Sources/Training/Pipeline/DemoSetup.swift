// What `inkwell demo` runs: with no weights to download, it makes everything it needs — a synthetic
// tattoo line-art dataset, a tiny SD1.x-architecture model and a tiny BLIP, both with RANDOM weights —
// and runs the real pipeline over them: prepare, BLIP captions, three LoRA runs, compare, plots, summary.
import Foundation
import RunFiles

public enum DemoSetup {
    /// Writes the demo's models and raw images under `root` (skipping what exists) and returns the
    /// pipeline config that runs over them.
    public static func prepare(root: URL, steps: Int = 60) throws -> PipelineConfig {
        let fm = FileManager.default
        let models = root.appendingPathComponent("models")
        let sd = models.appendingPathComponent("sd1-tiny-random"), blip = models.appendingPathComponent("blip-tiny-random")
        let raw = root.appendingPathComponent("data/raw")
        let items = try SyntheticLineArt.make(count: 24, size: 96, seed: 7)
        let words = Set(items.flatMap { $0.caption.split(whereSeparator: { !$0.isLetter }).map(String.init) })
            .union(["a", "tattoo", "of", "with", "on", "white", "minimal", "line", "art", "stencil", "high", "contrast",
                    "clean", "no", "shading", "rose", "swallow", "color", "blurry"]).sorted()
        if !fm.fileExists(atPath: sd.appendingPathComponent("model_index.json").path) {
            try DemoModels.writeStableDiffusion(to: sd, seed: 1, words: words)
        }
        if !fm.fileExists(atPath: raw.path) {
            // Images only: the BLIP variants caption them; vanilla uses its fixed prompt.
            try fm.createDirectory(at: raw, withIntermediateDirectories: true)
            for (i, item) in items.enumerated() {
                try item.image.writePNG(to: raw.appendingPathComponent(String(format: "flash%02d.png", i)))
            }
        }
        if !fm.fileExists(atPath: blip.appendingPathComponent("model.safetensors").path) {
            try DemoModels.writeBlip(to: blip, seed: 2, words: words)
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
        t.model.path = sd.path
        t.data.dataset = "(set per run)"
        t.lora.rank = 4
        t.lora.alpha = 4
        t.optimizer.learningRate = 1e-3
        t.schedule.warmupSteps = steps / 10
        t.training.maxSteps = steps
        t.training.batchSize = 2
        t.validation.every = max(1, steps / 3)
        t.samples.every = max(1, steps / 2)
        t.samples.size = 64
        t.samples.steps = 8
        t.samples.seeds = [1, 2]
        t.output.dir = root.appendingPathComponent("runs").path
        config.training = t
        return config
    }
}
