// `inkwell compare` on the tiny fixture pipeline (random weights, 32 px) with two LoRA runs written in
// the test: the grid has the layout's size, the base column is the pipeline's own image pixel for
// pixel, a LoRA column is the image generated with that LoRA attached at that scale, and reruns give
// the same bytes (regenerated or reused).
import Foundation
import Imaging
import LoRA
import RunFiles
import StableDiffusion
import Testing
import TestSupport
import Torch
@testable import Training

/// A run folder with config.toml ([samples]: two prompts, seed 3, 3 steps at 32 px) and best/final
/// LoRAs of random, seeded weights (B ≠ 0, so they change the image).
func makeCompareRun(_ root: URL, name: String, seed: UInt64, withBest: Bool = true) throws -> URL {
    let model = try Fixtures.url("pipeline", "model")
    let run = RunFolder(root.appendingPathComponent(name))
    try FileManager.default.createDirectory(at: run.lora, withIntermediateDirectories: true)
    var config = TrainingConfig()
    config.model.path = model.path
    config.data.dataset = root.path
    config.samples.prompts = ["a rose tattoo", "a swallow, line art"]
    config.samples.seeds = [3]
    config.samples.steps = 3
    config.samples.size = 32
    config.samples.negativePrompt = "blurry"
    config.samples.sampler = .dpmpp2mKarras
    try config.toml().write(to: run.config, atomically: true, encoding: .utf8)

    let pipeline = try StableDiffusionPipeline.load(.diffusersFolder(model), device: .cpu, dtype: .float32)
    let files: [URL] = withBest ? [run.best, run.final] : [run.final]
    for (i, file) in files.enumerated() {
        let network = LoRANetwork(name: name)
        try network.addAdapters(to: pipeline.unet.store, component: .unet, config: LoRAConfig(rank: 2))
        let generator = try Generator(seed: seed &+ UInt64(i))
        try noGrad {
            for (_, t) in network.parameters { try t.copy_(Tensor.randn(t.shape, generator: generator) * 0.6) }
        }
        try network.saveKohya(to: file)
        try network.removeFromModel()
    }
    return run.root
}

func tinyPipeline() throws -> StableDiffusionPipeline {
    try StableDiffusionPipeline.load(.diffusersFolder(try Fixtures.url("pipeline", "model")), device: .cpu, dtype: .float32)
}

/// The test's own generation: the options spelled out here, not taken from `Comparison`.
func reference(_ pipeline: StableDiffusionPipeline, prompt: String, seed: UInt64) throws -> Image {
    var o = GenerationOptions(prompt: prompt)
    o.negativePrompt = "blurry"
    o.steps = 3
    o.guidanceScale = 7.5
    o.width = 32
    o.height = 32
    o.seed = seed
    o.scheduler = .dpmSolverMultistep
    o.karrasSigmas = true
    return try #require(try Image.batch(try pipeline(o), range: .unit).first)
}

@Suite(.serialized) struct CompareTests {
    @Test func gridHoldsTheBaseModelAndEachLoRAPixelForPixel() throws {
        let dir = try temporaryDirectory()
        let a = try makeCompareRun(dir, name: "run-a", seed: 11), b = try makeCompareRun(dir, name: "run-b", seed: 22)
        let model = try ModelSource(path: try Fixtures.url("pipeline", "model").path)
        let settings = try CompareSettings.fromRun(a)
        let (columns, notes) = try CompareColumn.columns(modelName: model.displayName, runs: [a, b], checkpoint: .best,
                                                         scales: [0.5, 1])
        #expect(notes.isEmpty)
        #expect(columns.map(\.detail) == ["model", "best ×0.5", "best ×1", "best ×0.5", "best ×1"])
        let out = dir.appendingPathComponent("compare")
        let comparison = Comparison(model: model, settings: settings, columns: columns, outputDirectory: out)
        let pipeline = try tinyPipeline()
        let result = try comparison.run(pipeline: { pipeline })
        #expect(result.generated == 10 && result.reused == 0)

        // Size: label column + columns × (cell + gap), header band + rows × (cell + gap); at 32 px the
        // labels are scale 1: 4 px padding, 24 characters (143 px), 3 lines (30 px), 2 px gaps.
        let grid = try Image.load(result.gridURL)
        #expect(grid == result.grid)
        let labelWidth = 8 + 143, headerHeight = 8 + 30, pitch = 32 + 2
        let expectedWidth = labelWidth + 2 + 5 * pitch, expectedHeight = headerHeight + 2 + 2 * pitch
        #expect(grid.width == expectedWidth)
        #expect(grid.height == expectedHeight)
        #expect(comparison.layout.width == grid.width && comparison.layout.height == grid.height)

        func cell(_ row: Int, _ column: Int) throws -> Image {
            let origin = comparison.layout.cellOrigin(row: row, column: column)
            return try grid.cropped(x: origin.x, y: origin.y, width: 32, height: 32)
        }
        // The base column: the pipeline's image for each prompt and seed 3 (and the pipeline is clean
        // again after the comparison took its LoRAs off).
        let prompts = ["a rose tattoo", "a swallow, line art"]
        for (r, prompt) in prompts.enumerated() {
            let expected = try reference(pipeline, prompt: prompt, seed: 3)
            #expect(try cell(r, 0).pixels == expected.pixels, "base, row \(r)")
        }
        // A LoRA column: the image with that file attached at that scale.
        let stack = try pipeline.applyLoRAs([LoRAReference(url: RunFolder(b).best, multiplier: 0.5)])
        let withLoRA = try reference(pipeline, prompt: prompts[1], seed: 3)
        for network in stack.networks { try network.removeFromModel() }
        #expect(try cell(1, 3).pixels == withLoRA.pixels, "run-b best ×0.5")
        #expect(try cell(1, 3).pixels != cell(1, 0).pixels, "the LoRA changes the image")
        #expect(try cell(1, 3).pixels != cell(1, 4).pixels, "the scale changes the image")
        #expect(try cell(1, 1).pixels != cell(1, 3).pixels, "two runs, two images")

        // Each cell is saved with its parameters; the manifest and page describe the same cells.
        let saved = try ImageDecoder.read(out.appendingPathComponent(comparison.cellPath(row: comparison.rows[1], column: columns[3])))
        #expect(saved.image.pixels == withLoRA.pixels)
        let parameters = try #require(saved.text.first { $0.keyword == "parameters" }?.text)
        let info = try #require(GenerationInfo(text: parameters))
        // A1111's way: the LoRA and its scale as a tag in the prompt, its hash under Lora hashes.
        #expect(info.prompt == prompts[1] + " <lora:run-b-best:0.5>" && info.seed == 3 && info.steps == 3 && info.sampler == "DPM++ 2M")
        #expect(info.loraHashes.first?.0 == "run-b-best")
        let manifest = try ComparisonManifest.read(result.manifestURL)
        #expect(manifest.cells.count == 10 && manifest.columns == columns && manifest.rows.map(\.prompt) == prompts)
        let origin = comparison.layout.cellOrigin(row: 1, column: 3)
        #expect(manifest.cells.contains { $0.row == 1 && $0.column == 3 && $0.x == origin.x && $0.y == origin.y })
        let html = try String(contentsOf: result.pageURL, encoding: .utf8)
        #expect(html.contains("<img src=\"images/run-b_best_x0.5/p1_s3.png\"") && html.contains("a swallow, line art"))
        for c in manifest.cells {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(c.file).path), "\(c.file)")
        }
    }

    /// `gridCell` (what `compare --stencil` sets) changes how cells are shown, not the cells: a rerun with it
    /// reuses every cell and the grid holds each cell transformed.
    @Test func gridCellTransformShowsReusedCellsTransformed() throws {
        let dir = try temporaryDirectory()
        let a = try makeCompareRun(dir, name: "run-a", seed: 11)
        let model = try ModelSource(path: try Fixtures.url("pipeline", "model").path)
        let (columns, _) = try CompareColumn.columns(modelName: model.displayName, runs: [a], checkpoint: .best, scales: [1])
        let out = dir.appendingPathComponent("compare")
        var comparison = Comparison(model: model, settings: try CompareSettings.fromRun(a), columns: columns, outputDirectory: out)
        let pipeline = try tinyPipeline()
        let plain = try comparison.run(pipeline: { pipeline })
        // A stand-in for the stencil: grey, then ink below 128 (the Stencil target has its own tests).
        let bilevel = { (image: Image) throws -> Image in
            let grey = try image.gray()
            return try Image(width: grey.width, height: grey.height, channels: 1, pixels: grey.pixels.map { $0 < 128 ? 0 : 255 }).rgb()
        }
        comparison.gridCell = bilevel
        let shown = try comparison.run(pipeline: { Issue.record("nothing should be generated"); return pipeline })
        #expect(shown.generated == 0 && shown.reused == plain.generated)
        for r in 0..<2 {
            for c in 0..<columns.count {
                let origin = comparison.layout.cellOrigin(row: r, column: c)
                let cell = try ImageDecoder.read(out.appendingPathComponent(comparison.cellPath(row: comparison.rows[r], column: columns[c]))).image
                #expect(try shown.grid.cropped(x: origin.x, y: origin.y, width: 32, height: 32).pixels == bilevel(cell).pixels)
                #expect(try plain.grid.cropped(x: origin.x, y: origin.y, width: 32, height: 32).pixels == cell.pixels)
            }
        }
    }

    @Test func rerunsGiveTheSameBytesAndReuseUpToDateCells() throws {
        let dir = try temporaryDirectory()
        let a = try makeCompareRun(dir, name: "run-a", seed: 5)
        let model = try ModelSource(path: try Fixtures.url("pipeline", "model").path)
        var settings = try CompareSettings.fromRun(a)
        settings.prompts = ["a rose tattoo"]
        let columns = try CompareColumn.columns(modelName: model.displayName, runs: [a], checkpoint: .final, scales: [1]).columns
        let pipeline = try tinyPipeline()
        func compare(_ folder: String, force: Bool = false) throws -> (CompareResult, Bool) {
            var c = Comparison(model: model, settings: settings, columns: columns, outputDirectory: dir.appendingPathComponent(folder))
            c.force = force
            var loaded = false
            let result = try c.run(pipeline: { loaded = true; return pipeline })
            return (result, loaded)
        }
        let (first, _) = try compare("one")
        let firstGrid = try Data(contentsOf: first.gridURL)
        let (second, _) = try compare("two", force: true)
        #expect(first.generated == 2 && second.generated == 2)
        for file in ["grid.png", "index.html", "compare.json", "images/base/p0_s3.png", "images/run-a_final_x1/p0_s3.png"] {
            let x = try Data(contentsOf: dir.appendingPathComponent("one/" + file))
            let y = try Data(contentsOf: dir.appendingPathComponent("two/" + file))
            #expect(x == y, "\(file) differs between two generations")
        }
        // Up to date: nothing generated, the pipeline not even loaded, the same grid.
        let (third, loaded) = try compare("one")
        #expect(third.generated == 0 && third.reused == 2 && !loaded)
        #expect(try Data(contentsOf: third.gridURL) == firstGrid)
        // A retrained LoRA invalidates its own column only.
        _ = try makeCompareRun(dir, name: "run-a", seed: 6)
        let (fourth, _) = try compare("one")
        #expect(fourth.generated == 1 && fourth.reused == 1)
        #expect(try Data(contentsOf: fourth.gridURL) != firstGrid)

        // Stopped after its first image, a comparison keeps that image: the rerun generates the rest.
        var calls: [Int] = []
        let stopped = Comparison(model: model, settings: settings, columns: columns, outputDirectory: dir.appendingPathComponent("stopped"))
        #expect(throws: ComparisonStopped.self) {
            _ = try stopped.run(pipeline: { pipeline }, progress: { done, _ in calls.append(done); return done < 1 })
        }
        // Told 0 before the first image and after each of its 3 denoising steps, then 1 when it is saved.
        #expect(calls == [0, 0, 0, 0, 1])
        let (resumed, _) = try compare("stopped")
        #expect(resumed.generated == 1 && resumed.reused == 1)

        // Stopped inside the first image's denoising (its 2nd step): nothing is saved of it, within that step.
        calls = []
        let early = Comparison(model: model, settings: settings, columns: columns, outputDirectory: dir.appendingPathComponent("early"))
        let error = #expect(throws: ComparisonStopped.self) {
            _ = try early.run(pipeline: { pipeline }, progress: { done, _ in calls.append(done); return calls.count < 3 })
        }
        #expect(error?.generated == 0 && calls.count == 3)
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("early/images").path))
        let (rerun, _) = try compare("early")
        #expect(rerun.generated == 2 && rerun.reused == 0)
    }

    @Test func settingsComeFromTheRunAndColumnsFromItsCheckpoints() throws {
        let dir = try temporaryDirectory()
        let a = try makeCompareRun(dir, name: "run-a", seed: 1)
        let noBest = try makeCompareRun(dir, name: "no-best", seed: 2, withBest: false)
        let settings = try CompareSettings.fromRun(a)
        #expect(settings.prompts == ["a rose tattoo", "a swallow, line art"] && settings.seeds == [3])
        #expect(settings.steps == 3 && settings.size == 32 && settings.negativePrompt == "blurry" && settings.sampler == "dpm++2m-karras")
        #expect(settings.rows.map(\.promptIndex) == [0, 1])

        let both = try CompareColumn.columns(modelName: "m", runs: [a, noBest], checkpoint: .both, scales: [1])
        #expect(both.columns.map { "\($0.title) \($0.detail)" } == ["base model m", "run-a best ×1", "run-a final ×1", "no-best final ×1"])
        #expect(both.notes.count == 1 && both.notes[0].contains("no-best"))
        #expect(Set(both.columns.map(\.slug)).count == both.columns.count)
        let fallback = try CompareColumn.columns(modelName: "m", runs: [noBest], checkpoint: .best, scales: [1])
        #expect(fallback.columns.last?.checkpoint == "final" && fallback.notes.count == 1)
        // A LoRA file stands for itself.
        let file = try CompareColumn.columns(modelName: "m", runs: [RunFolder(a).best], checkpoint: .best, scales: [0.8])
        #expect(file.columns.last?.title == "run-a-best" && file.columns.last?.detail == "×0.8")

        let absent = dir.appendingPathComponent("absent")
        let missing = #expect(throws: ReportError.self) {
            try CompareColumn.columns(modelName: "m", runs: [absent], checkpoint: .best, scales: [1])
        }
        #expect(missing?.description.contains(absent.path) == true)
        try FileManager.default.removeItem(at: RunFolder(noBest).final)
        let noFinal = #expect(throws: ReportError.self) {
            try CompareColumn.columns(modelName: "m", runs: [noBest], checkpoint: .final, scales: [1])
        }
        #expect(noFinal?.description.contains("no-best.safetensors") == true)
        var bad = settings
        bad.sampler = "warp-drive"
        bad.size = 30
        let invalid = #expect(throws: ReportError.self) { try bad.validate() }
        #expect(invalid?.description.contains("--sampler 'warp-drive'") == true && invalid?.description.contains("--size") == true)
        // Was accepted, to fail at the first cell's allocation.
        bad = settings
        bad.size = 800_000
        let huge = #expect(throws: ReportError.self) { try bad.validate() }
        #expect(huge?.description.contains("--size 800000 needs at least") == true)
        let noConfig = #expect(throws: ReportError.self) { try CompareSettings.fromRun(absent) }
        #expect(noConfig?.description.contains("config.toml") == true)
    }
}
