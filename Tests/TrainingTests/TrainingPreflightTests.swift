// What a training config points at is checked before any model loads, every problem in one list with its fix.
import Foundation
import RunFiles
import Testing
import TestSupport
@testable import Training

@Suite struct TrainingPreflightTests {
    @Test func everyProblemIsListedAtOnce() throws {
        let dir = try temporaryDirectory()
        let notAFolder = dir.appendingPathComponent("runs.txt")
        try Data("x".utf8).write(to: notAFolder)
        var config = TrainingConfig()
        config.model.path = dir.appendingPathComponent("no-model").path
        config.data.dataset = dir.appendingPathComponent("no-data").path
        config.samples.clipScore = true
        config.samples.clipModel = dir.path
        config.samples.prompts = []
        config.output.dir = notAFolder.path
        let problems = TrainingPreflight.check(config).problems
        #expect(problems.count == 5, "\(problems)")
        let expected = ["model.path: ", "data.dataset: ", "samples.clip_model: ", "samples.prompts is empty", "output.dir: "]
        for (problem, start) in zip(problems, expected) { #expect(problem.hasPrefix(start), "\(problem)") }
        #expect(problems[0].contains("no-model") && problems[1].contains("inkwell prepare"))
        #expect(problems[2].contains("set samples.clip_score = false, or point samples.clip_model at a CLIP ViT-B/32 folder"))
        #expect(PreflightError(problems).description.hasPrefix("5 problems:\n  - model.path: "))
    }

    @Test func aRealModelAndDatasetPassAndMissingCaptionsAreNamed() throws {
        let (raw, dataset) = try DatasetTest.rawCopy()
        _ = try DatasetTest.run(DatasetTest.options(raw, dataset))
        var config = TrainingConfig()
        config.model.path = try Fixtures.url("pipeline", "model").path
        config.data.dataset = dataset.path
        config.output.dir = dataset.deletingLastPathComponent().appendingPathComponent("runs").path
        let ok = TrainingPreflight.check(config)
        #expect(ok.problems.isEmpty, "\(ok.problems)")
        #expect(!ok.examples.isEmpty && ok.examples.contains(where: \.isValidation))
        config.data.captions = .blip
        let blip = TrainingPreflight.check(config).problems
        #expect(blip.count == 1 && blip[0].contains("inkwell caption --variant blip"), "\(blip)")

        // A single file without a tokenizer beside it, named before loading.
        let ckpt = dataset.deletingLastPathComponent().appendingPathComponent("sd15.ckpt")
        try Data([0x80, 0x02]).write(to: ckpt)
        config.model.path = ckpt.path
        config.data.captions = .vanilla
        let single = TrainingPreflight.check(config).problems
        #expect(single.count == 1, "\(single)")
        #expect(single.first?.hasPrefix("model.tokenizer: a single-file checkpoint carries no tokenizer") == true)
    }
}
