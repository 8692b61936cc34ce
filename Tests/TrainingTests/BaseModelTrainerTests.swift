import Foundation
import Imaging
import Testing
import TestSupport
import StableDiffusion
import Torch
@testable import Training

/// Full training of a tiny SD1.x model: the corpus draws what its captions say, each phase's loss falls,
/// gradients reach all three models, and the written folder loads and is skipped when up to date.
@Suite struct BaseModelTrainerTests {
    /// A trainer over the minimal architecture (32 px images) and `count` corpus items.
    func makeTrainer(_ dir: URL, count: Int = 8, configure: (inout BaseModelRecipe) -> Void = { _ in }) throws -> BaseModelTrainer {
        var recipe = BaseModelRecipe()
        recipe.imageSize = 32
        recipe.corpusSize = count
        recipe.warmupSteps = 0
        configure(&recipe)
        let folder = dir.appendingPathComponent("model")
        try DemoModels.writeStableDiffusion(to: folder, seed: recipe.seed, words: LineArtCorpus.vocabulary, architecture: .minimal)
        let pipeline = try StableDiffusionPipeline.load(.diffusersFolder(folder), device: .cpu, dtype: .float32)
        let corpus = try LineArtCorpus.make(count: count, size: recipe.imageSize, seed: recipe.corpusSeed)
        return try BaseModelTrainer(recipe: recipe, pipeline: pipeline, corpus: corpus)
    }

    /// Ink (dark pixels) of an image: its fraction of the canvas and its centroid in [0, 1]².
    func ink(_ image: Image) throws -> (coverage: Double, x: Double, y: Double) {
        let gray = try image.tensor(range: .unit).mean(dims: [0])
        let mask = try gray.lt(0.5).to(.float32)
        let total = try mask.sum().item()
        let s = Double(image.width)
        let coords = try (Tensor.arange(0, s, dtype: .float32) + 0.5) / s
        let x = try (mask * coords.view([1, image.width])).sum().item() / total
        let y = try (mask * coords.view([image.height, 1])).sum().item() / total
        return (total / (s * s), x, y)
    }

    @Test func captionsNameWhatIsDrawnWhere() throws {
        for position in LineArtCorpus.Position.allCases {
            let scene = LineArtCorpus.Scene(shape: .star, count: 1, position: position)
            let (_, x, y) = try ink(try LineArtCorpus.draw(scene, size: 64, stroke: .thin))
            let anchor = position.anchor
            #expect(abs(x - anchor.x) < 0.06 && abs(y - anchor.y) < 0.06, "\(scene.caption): ink centred at (\(x), \(y))")
        }
        #expect(LineArtCorpus.Scene(shape: .ring, count: 2, position: nil).caption == "two rings")
        #expect(LineArtCorpus.Scene(shape: .star, count: 1, position: .topLeft).caption == "a star in the top left")
        #expect(LineArtCorpus.Scene(shape: .cross, count: 3, position: nil).caption == "three crosses")
        // Three shapes in a row: ink on the left, middle and right thirds alike.
        let row = try LineArtCorpus.draw(LineArtCorpus.Scene(shape: .square, count: 3, position: nil), size: 60, stroke: .thin)
        let thirds = try (0..<3).map { i in
            try row.tensor(range: .unit).narrow(dim: 2, start: 20 * i, length: 20).lt(0.5).to(.float32).mean().item()
        }
        #expect(thirds.allSatisfy { $0 > 0.02 } && (thirds.max()! - thirds.min()!) < 0.01, "\(thirds)")
    }

    @Test func boldOutlinesCarryMoreInkThanThinOnes() throws {
        for shape in LineArtCorpus.Shape.allCases {
            let scene = LineArtCorpus.Scene(shape: shape, count: 1, position: .centre)
            let thin = try ink(try LineArtCorpus.draw(scene, size: 64, stroke: .thin)).coverage
            let bold = try ink(try LineArtCorpus.draw(scene, size: 64, stroke: .bold)).coverage
            #expect(thin > 0.01 && bold > 1.5 * thin, "\(shape): thin \(thin), bold \(bold)")
        }
    }

    @Test func theCorpusIsDeterministicAndCoversEveryShapeAndCount() throws {
        let a = try LineArtCorpus.scenes(count: 200, seed: 3), b = try LineArtCorpus.scenes(count: 200, seed: 3)
        #expect(a == b)
        #expect(Set(a.map(\.shape)) == Set(LineArtCorpus.Shape.allCases))
        #expect(Set(a.map(\.count)) == [1, 2, 3])
        #expect(Set(a.compactMap(\.position)) == Set(LineArtCorpus.Position.allCases))
        // Every caption word is one token of the demo tokenizer's vocabulary.
        let words = Set(a.flatMap { $0.caption.split(separator: " ").map(String.init) })
        #expect(words.isSubset(of: Set(LineArtCorpus.vocabulary)))
    }

    @Test func theVAEsLossFallsAndItsGradientsReachEveryLayer() throws {
        let trainer = try makeTrainer(try temporaryDirectory()) { $0.vaeSteps = 25; $0.vaeBatchSize = 8; $0.vaeLearningRate = 2e-3 }
        let before = try noGrad { try trainer.vaeLoss(Array(0..<8)).item() }
        let store = trainer.pipeline.vae.store
        try store.setTrainable { _ in true }
        try trainer.vaeLoss(Array(0..<8)).backward()
        let dead = try store.named.filter { try ($0.1.grad?.abs().sum().item() ?? 0) == 0 }.map(\.0)
        #expect(dead.isEmpty, "VAE parameters without gradient: \(dead)")
        try store.freezeAll()
        try trainer.trainVAE()
        let after = try noGrad { try trainer.vaeLoss(Array(0..<8)).item() }
        #expect(after < 0.6 * before, "VAE loss \(before) → \(after)")
        #expect(store.trainable.isEmpty, "the VAE is frozen again after its phase")
    }

    @Test func theDiffusionLossFallsAndGradientsReachTheUNetAndTheTextEncoder() throws {
        let trainer = try makeTrainer(try temporaryDirectory()) {
            $0.diffusionSteps = 30
            $0.diffusionBatchSize = 8
            $0.learningRate = 2e-3
            $0.captionDropout = 0
        }
        try trainer.cacheLatents()
        #expect(trainer.scalingFactor > 0 && trainer.scalingFactor.isFinite)
        let unet = trainer.pipeline.unet.store, text = trainer.pipeline.textEncoder.store
        try unet.setTrainable { _ in true }
        try text.setTrainable { _ in true }
        try trainer.diffusionLoss(Array(0..<8)).backward()
        for key in ["conv_in.weight", "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", "conv_out.weight"] {
            #expect(try (unet[key]?.grad?.abs().sum().item() ?? 0) > 0, "no gradient at unet \(key)")
        }
        for key in ["text_model.embeddings.token_embedding.weight", "text_model.encoder.layers.0.self_attn.q_proj.weight",
                    "text_model.final_layer_norm.weight"] {
            #expect(try (text[key]?.grad?.abs().sum().item() ?? 0) > 0, "no gradient at text encoder \(key)")
        }
        try unet.freezeAll()
        try text.freezeAll()
        // Averaged over fixed draws of noise and timesteps, before and after training.
        func meanLoss() throws -> Double {
            try noGrad { try (0..<6).map { _ in try trainer.diffusionLoss(Array(0..<8)).item() }.reduce(0, +) / 6 }
        }
        try trainer.rng.manualSeed(99)
        let before = try meanLoss()
        try trainer.trainDiffusion()
        try trainer.rng.manualSeed(99)
        let after = try meanLoss()
        #expect(after < 0.7 * before, "diffusion loss \(before) → \(after)")
    }

    @Test func theTrainedFolderLoadsAndAnUnchangedRecipeIsNotRetrained() throws {
        let dir = try temporaryDirectory()
        var recipe = BaseModelRecipe()
        recipe.imageSize = 32
        recipe.corpusSize = 4
        recipe.vaeSteps = 2
        recipe.vaeBatchSize = 2
        recipe.diffusionSteps = 2
        recipe.diffusionBatchSize = 2
        let output = dir.appendingPathComponent("base")
        let summary = try BaseModelTrainer.train(recipe: recipe, into: output, architecture: .minimal)
        #expect(!summary.skipped && summary.finalDiffusionLoss != nil)
        #expect(!FileManager.default.fileExists(atPath: output.path + ".partial"))
        let pipeline = try StableDiffusionPipeline.load(.diffusersFolder(output), device: .cpu, dtype: .float32)
        #expect(abs(pipeline.vae.scalingFactor - summary.scalingFactor) < 1e-4)
        let log = try String(contentsOf: output.appendingPathComponent("training_log.csv"), encoding: .utf8)
        #expect(log.split(separator: "\n").count == 1 + 2 + 2)
        #expect(try BaseModelTrainer.train(recipe: recipe, into: output, architecture: .minimal).skipped)
        recipe.diffusionSteps = 3
        #expect(try !BaseModelTrainer.train(recipe: recipe, into: output, architecture: .minimal).skipped)
    }

    @Test func aBadRecipeIsRefusedNamingTheFlag() throws {
        var recipe = BaseModelRecipe()
        recipe.imageSize = 40
        #expect(throws: BaseModelTrainingError.self) { try BaseModelTrainer.train(recipe: recipe, into: URL(fileURLWithPath: "/nonexistent/x")) }
        do { try recipe.validate() } catch { #expect("\(error)".contains("--image-size")) }
    }

    @Test func aStopRequestEndsTrainingWithoutWritingTheFolder() throws {
        let dir = try temporaryDirectory()
        var recipe = BaseModelRecipe()
        recipe.imageSize = 32
        recipe.corpusSize = 4
        recipe.vaeSteps = 50
        let output = dir.appendingPathComponent("base")
        var steps = 0
        #expect(throws: BaseModelTrainingStopped.self) {
            _ = try BaseModelTrainer.train(recipe: recipe, into: output, architecture: .minimal, shouldStop: { steps >= 3 }) { event in
                if case .step = event { steps += 1 }
            }
        }
        #expect(steps == 3)
        #expect(!FileManager.default.fileExists(atPath: output.path))
    }
}
