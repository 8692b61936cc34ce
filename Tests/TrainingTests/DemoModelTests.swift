import Evaluation
import Foundation
import Imaging
import RunFiles
import StableDiffusion
import Testing
import TestSupport
import Torch
@testable import Training

/// The committed demo base model (demo-model/, made by `make demo-model`): diffusers draws the same images
/// with it, it draws thin line art, and a short LoRA run on bold drawings makes its strokes bolder, which is
/// what the demo shows. A trainer that still "runs" but no longer learns fails the last test.
@Suite(.serialized) struct DemoModelTests {
    static let folder = Fixtures.packageRoot.appendingPathComponent("demo-model")

    func load() throws -> StableDiffusionPipeline {
        try DemoSetup.checkBaseModel(Self.folder)
        return try StableDiffusionPipeline.load(.diffusersFolder(Self.folder), device: .cpu, dtype: .float32)
    }

    func draw(_ pipe: StableDiffusionPipeline, _ prompt: String, seed: UInt64) throws -> Tensor {
        var options = GenerationOptions(prompt: prompt)
        options.steps = 20
        options.guidanceScale = 7.5
        options.width = 64
        options.height = 64
        options.seed = seed
        options.use(.ddim)
        return try pipe(options)
    }

    /// Mean ink coverage (LineArtMetrics) of images [N, 3, H, W] in [0, 1].
    func inkCoverage(_ images: Tensor) throws -> Double {
        let list = try Image.batch(images, range: .unit)
        return try list.map { try LineArtMetrics.inkCoverage($0) }.reduce(0, +) / Double(list.count)
    }

    @Test func diffusersDrawsTheSameImagesWithTheDemoModel() throws {
        struct Cases: Decodable {
            struct Case: Decodable { var name: String; var prompt: String; var seed: UInt64 }
            var steps: Int
            var cases: [Case]
        }
        let cases = try JSONDecoder().decode(Cases.self, from: Data(contentsOf: Fixtures.url("demo_model", "cases.json")))
        let expected = try Fixtures.tensors("demo_model", "images")
        let pipe = try load()
        #expect(cases.cases.count == 8)
        for c in cases.cases {
            let image = try draw(pipe, c.prompt, seed: c.seed)
            let pixels = try (image * 255).round().to(.uint8).permute([0, 2, 3, 1]).contiguous()
            let diff = try maxAbsDiff(pixels, expected.get(c.name))
            #expect(diff <= 1, "\(c.name) '\(c.prompt)': max difference \(diff) levels")
        }
    }

    /// A LoRA trains the UNet only, so the VAE must already carry bold strokes through; one that saw only thin
    /// lines decodes bold drawings as thin ones (ink 0.11 → 0.06), and then no LoRA can teach bold.
    @Test func theVAEKeepsBoldOutlinesBold() throws {
        let pipe = try load()
        for stroke in [LineArtCorpus.Stroke.thin, .bold] {
            let items = try LineArtCorpus.make(count: 8, size: 64, seed: 5, stroke: stroke)
            let x = try Tensor.stack(items.map { try $0.image.tensor(range: .symmetric) })
            let y = try noGrad { try pipe.vae.decode(try pipe.vae.encode(x).mean) }
            let drawn = try inkCoverage((x + 1) / 2), decoded = try inkCoverage(((y + 1) / 2).clamp(min: 0, max: 1))
            #expect(abs(decoded - drawn) < 0.05 * drawn, "\(stroke) outlines: ink \(drawn) drawn, \(decoded) after the VAE")
        }
    }

    @Test func aShortLoRARunOnBoldDrawingsMakesTheStrokesBolder() throws {
        let dir = try temporaryDirectory()
        let items = try LineArtCorpus.draw(try LineArtCorpus.distinctScenes(count: 16, seed: 21), size: 64, boldFraction: 1)
        let urls = try SyntheticLineArt.write(items, to: dir.appendingPathComponent("images"))
        let examples = urls.enumerated().map { i, url in
            TrainingExample(name: url.lastPathComponent, image: url, caption: DemoSetup.vanillaPrompt, isValidation: i >= 14)
        }
        let pipe = try load()
        // Measured on the same scenes: the base model draws them thin, the LoRA should draw them as the bold data does.
        let scenes = [LineArtCorpus.Scene(shape: .ring, count: 2, position: nil),
                      LineArtCorpus.Scene(shape: .square, count: 1, position: .centre)]
        let prompts = scenes.map(\.caption)
        let base = try inkCoverage(Tensor.cat(prompts.map { try draw(pipe, $0, seed: 3) }))
        let data = try inkCoverage(Tensor.stack(scenes.map { try LineArtCorpus.draw($0, size: 64, stroke: .bold).tensor(range: .unit) }))
        var config = TrainingConfig()
        config.model.path = Self.folder.path
        config.data.dataset = dir.path
        config.data.resolution = 64
        config.data.flip = false
        config.lora.rank = 8
        config.lora.alpha = 8
        config.optimizer.learningRate = 2e-3
        config.schedule.warmupSteps = 5
        config.training.maxSteps = 60
        config.training.batchSize = 4
        config.validation.every = 0
        config.samples.every = 0
        config.output.dir = dir.appendingPathComponent("runs").path
        let trainer = try LoRATrainer(config: config, examples: examples, pipeline: pipe, modelIdentity: "demo-model",
                                      cacheDirectory: dir.appendingPathComponent("cache"))
        _ = try trainer.run(resume: false)
        let lora = try inkCoverage(Tensor.cat(prompts.map { try draw(pipe, $0, seed: 3) }))
        // The base model draws thin lines, the data is bold: the LoRA must cover a good part of the gap, and not
        // by smearing ink everywhere (at most the gap again beyond the data).
        #expect(data > 1.5 * base, "the bold drawings (\(data)) should carry much more ink than the base model's (\(base))")
        #expect(lora - base > 0.4 * (data - base), "ink coverage base \(base) → LoRA \(lora), data \(data)")
        #expect(lora < data + (data - base), "ink coverage base \(base) → LoRA \(lora), data \(data)")
    }
}
