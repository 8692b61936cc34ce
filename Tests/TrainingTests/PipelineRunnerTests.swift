import Foundation
import Testing
import TestSupport
import StableDiffusion
@testable import Training

@Suite struct PipelineRunnerTests {
    /// A stop request in the prepare and caption stages (once ignored until training) ends the pipeline there,
    /// naming the stage; the next run goes on from what was kept.
    @Test func aStopEndsTheStageItCameIn() throws {
        let root = try temporaryDirectory()
        var config = try DemoSetup.prepare(root: root, baseModel: Fixtures.packageRoot.appendingPathComponent("demo-model"), steps: 2)
        config.training.samples.every = 0
        let source = try ModelSource(path: config.training.model.path)
        let runner = PipelineRunner(config: config) { try StableDiffusionPipeline.load(source, device: .cpu, dtype: .float32) }
        for stage in ["prepare", "caption"] {
            var current = ""
            let error = #expect(throws: PipelineStopped.self) {
                try runner.run(shouldStop: { current == stage }, events: { if case .stage(let name) = $0 { current = name } })
            }
            #expect(error?.stage == stage)
        }
        // Prepare finished on the second run: the images are there, and no caption file was written.
        let images = try FileManager.default.contentsOfDirectory(atPath: runner.dataset.appendingPathComponent("images").path)
        #expect(!images.isEmpty)
        let blip = runner.dataset.appendingPathComponent("captions_blip")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: blip.path)) ?? []).isEmpty)
    }

    /// The demo's whole pipeline on its generated models: every stage runs, BLIP writes captions, each
    /// variant trains; a second run finds everything up to date and says so.
    @Test func runsEveryStageThenIsIdempotent() throws {
        let root = try temporaryDirectory()
        var config = try DemoSetup.prepare(root: root, baseModel: Fixtures.packageRoot.appendingPathComponent("demo-model"), steps: 2)
        config.training.samples.every = 0
        config.training.validation.every = 2
        let source = try ModelSource(path: config.training.model.path)
        let runner = PipelineRunner(config: config) { try StableDiffusionPipeline.load(source, device: .cpu, dtype: .float32) }
        var stages: [String] = []
        let rows = try runner.run(events: { if case .stage(let name) = $0 { stages.append(name) } })
        #expect(stages == ["prepare", "caption", "train vanilla", "train blip", "train blip_plus", "compare", "plot"])
        for file in ["compare/grid.png", "compare/index.html", "plots"] {
            #expect(FileManager.default.fileExists(atPath: config.folder.appendingPathComponent(file).path), "\(file)")
        }
        #expect(rows.map(\.variant) == ["vanilla", "blip", "blip_plus"])
        #expect(rows.allSatisfy { $0.steps == 2 && $0.bestValidationLoss != nil })
        let dataset = URL(fileURLWithPath: config.datasets).appendingPathComponent("demo")
        let caption = try String(contentsOf: dataset.appendingPathComponent("captions_blip/bold00.txt"), encoding: .utf8)
        #expect(caption.hasPrefix("a tattoo of"))
        let plus = try String(contentsOf: dataset.appendingPathComponent("captions_blip_plus/bold00.txt"), encoding: .utf8)
        // BLIP+ adds the style hints BLIP's caption lacks (those that do not fit in 77 tokens are dropped, last first).
        #expect(plus.contains("clean line tattoo") && !caption.contains("clean line tattoo"))
        let summary = try String(contentsOf: config.folder.appendingPathComponent("summary.md"), encoding: .utf8)
        #expect(summary.contains("| vanilla |") && summary.contains("| blip_plus |"))
        // The grid's ink coverage beside the training images': every row has the three numbers.
        #expect(rows.allSatisfy { $0.sampleInkCoverage != nil && $0.baseInkCoverage != nil && ($0.datasetInkCoverage ?? 0) > 0 })
        #expect(summary.contains("ink: base → samples (data)") && summary.contains("of the way"))

        var messages: [String] = []
        stages = []
        let again = try runner.run(events: { event in
            if case .stage(let name) = event { stages.append(name) }
            if case .message(let text) = event { messages.append(text) }
        })
        #expect(stages == ["prepare", "caption"])
        #expect(messages.contains("everything is up to date: nothing to do"))
        #expect(again == rows)
    }
}
