import Foundation
import Imaging
import Testing
import TestSupport
import Torch
@testable import Evaluation

/// CLIP score against the fixture script's step-for-step torchmetrics computation (`_clip_score_update` with
/// transformers' CLIPModel/CLIPProcessor, then `max(mean, 0)`), on the tiny model. Tolerance: 1e-4 on the
/// per-sample scores (100 × cosine) and on the aggregated score.
@Suite struct CLIPScoreTests {
    static let atol = 1e-4

    private func scorer() throws -> CLIPScore {
        try CLIPScore.load(directory: try CLIPFixture.folder("tiny"))
    }

    private func pairs(_ set: CLIPFixture.Inputs.PairSet) throws -> ([Image], [String]) {
        (try set.images.map(CLIPFixture.image), set.prompts)
    }

    /// Padded to the longest prompt with the pad id, mask 0 there, cut at 77: the long prompt loses its eos.
    @Test func tokenizationMatchesTorchmetrics() throws {
        let f = try CLIPFixture.outputs()
        let (ids, mask) = try scorer().tokenize(try CLIPFixture.inputs().prompts)
        try expectEqual(ids, try f.get("text.input_ids"), "input_ids")
        try expectEqual(mask, try f.get("text.attention_mask"), "attention_mask")
        #expect(ids.size(1) == 77)
    }

    @Test func scoresMatchTorchmetrics() throws {
        let f = try CLIPFixture.outputs()
        let clip = try scorer()
        for (name, set) in try CLIPFixture.inputs().sets {
            let (images, prompts) = try pairs(set)
            let scores = try clip.scores(images: images, prompts: prompts)
            try expectClose(scores, try f.get("scores.\(name)"), atol: Self.atol, "scores.\(name)")
            let value = try clip.score(images: images, prompts: prompts)
            let expected = try f.get("clip_score.\(name)").item()
            #expect(abs(value - expected) <= Self.atol, "clip_score.\(name): \(value) vs \(expected)")
        }
    }

    /// The folder as transformers 5 saves it (tokenizer.json only, the image settings in processor_config.json)
    /// scores exactly as the Hub's layout does, against the same torchmetrics values.
    @Test func transformersFiveLayoutScoresTheSame() throws {
        let f = try CLIPFixture.outputs()
        let saved = try CLIPScore.load(directory: try CLIPFixture.folder("tiny_saved"))
        let (ids, _) = try saved.tokenize(try CLIPFixture.inputs().prompts)
        try expectEqual(ids, try f.get("text.input_ids"), "input_ids")
        for (name, set) in try CLIPFixture.inputs().sets {
            let (images, prompts) = try pairs(set)
            try expectClose(try saved.scores(images: images, prompts: prompts), try f.get("scores.\(name)"), atol: Self.atol,
                            "tiny_saved scores.\(name)")
        }
    }

    /// Every image against every prompt (42 pairs, scored in batches of 5), against the script's matrix.
    @Test func scoreMatrixMatchesTorchmetrics() throws {
        let inputs = try CLIPFixture.inputs()
        let clip = try scorer()
        clip.batchSize = 5
        var images: [Image] = [], prompts: [String] = []
        for name in inputs.tiny_images {
            let image = try CLIPFixture.image(name)
            for prompt in inputs.prompts { images.append(image); prompts.append(prompt) }
        }
        let scores = try clip.scores(images: images, prompts: prompts)
        let expected = try CLIPFixture.outputs().get("score_matrix").reshape([-1])
        try expectClose(scores, expected, atol: Self.atol, "score matrix")
    }

    /// torchmetrics clamps the mean, not each sample. The fixture's "mixed" set has a negative sample between
    /// two positive ones: the right value is max(mean, 0), clearly below the mean of clamped samples; the
    /// "negative" set averages below zero and scores exactly 0.
    @Test func clampComesAfterTheMean() throws {
        let f = try CLIPFixture.outputs()
        let sets = try CLIPFixture.inputs().sets
        let clip = try scorer()
        guard let mixedSet = sets["mixed"], let negativeSet = sets["negative"] else {
            Issue.record("fixture lacks the mixed/negative sets")
            return
        }
        let (images, prompts) = try pairs(mixedSet)
        let scores = try clip.scores(images: images, prompts: prompts)
        let values = try scores.to(.float64).toArray(Double.self)
        #expect(values.contains { $0 < 0 } && values.contains { $0 > 0 })
        let mean = values.reduce(0, +) / Double(values.count)
        let perSampleClamped = values.map { max($0, 0) }.reduce(0, +) / Double(values.count)
        let score = try CLIPScore.aggregate(scores)
        #expect(abs(score - mean) < 1e-9 && mean > 0)
        #expect(perSampleClamped - score > 1)
        #expect(abs(score - (try f.get("clip_score.mixed").item())) <= Self.atol)

        let (negImages, negPrompts) = try pairs(negativeSet)
        #expect(try clip.score(images: negImages, prompts: negPrompts) == 0)

        // The formula on its own.
        #expect(try CLIPScore.aggregate(try Tensor([30.0, -50, 10])) == 0)
        #expect(abs(try CLIPScore.aggregate(try Tensor([30.0, -10, 10])) - 10) < 1e-12)
    }

    /// The module form (running sum and count over batches) equals the aggregate over all samples.
    @Test func accumulatorMatchesAggregate() throws {
        var acc = CLIPScoreAccumulator()
        #expect(acc.value == nil)
        try acc.update(try Tensor([Float(30), -10]))
        try acc.update(try Tensor([Float(10)]))
        #expect(acc.count == 3 && abs((acc.value ?? -1) - 10) < 1e-12)
        try acc.update(try Tensor([Float(-100)]))
        #expect(acc.value == 0)
    }

    @Test func inputErrors() throws {
        let clip = try scorer()
        let image = try CLIPFixture.image("wide")
        #expect(throws: CLIPModelError.self) { try clip.scores(images: [image, image], prompts: ["a"]) }
        #expect(throws: CLIPModelError.self) { try clip.scores(images: [], prompts: []) }
        #expect(throws: CLIPModelError.self) { try CLIPScore.aggregate(try Tensor([Float]())) }
        // A folder without the tokenizer files names the missing file.
        let dir = try temporaryDirectory()
        let source = try CLIPFixture.folder("tiny")
        for name in ["config.json", "model.safetensors", "preprocessor_config.json"] {
            try FileManager.default.copyItem(at: source.appendingPathComponent(name), to: dir.appendingPathComponent(name))
        }
        #expect { try CLIPScore.load(directory: dir) } throws: {
            "\($0)".contains(dir.appendingPathComponent("tokenizer.json").path) && "\($0)".contains("vocab.json and merges.txt")
        }
    }
}
