// BlipForConditionalGeneration.generate against transformers' generate, live: greedy and beam search
// (3 and 4 beams) on a batch of three images, with and without the prefix "a tattoo of", with transformers'
// default length and with the options Inkwell exposes (max_length, max_new_tokens, min_length,
// repetition_penalty, length_penalty, early_stopping true/"never"). The fixture's captions end at [SEP] at
// different steps or run to the length limit. Ids must be identical, with the KV cache and without it, and
// the captions decoded as `processor.decode(ids, skip_special_tokens=True)` must be identical.
import Foundation
import Testing
import TestSupport
import Torch
@testable import Captioning

/// generation.json: per run, the `generate` keyword arguments, transformers' ids and decoded captions.
struct GenerationRun: Decodable {
    struct Kwargs: Decodable {
        var prefix: Bool?
        var num_beams: Int?
        var max_length: Int?
        var max_new_tokens: Int?
        var min_length: Int?
        var repetition_penalty: Double?
        var length_penalty: Double?
        var early_stopping: EarlyStoppingValue?
    }
    /// `early_stopping`: a boolean or "never".
    enum EarlyStoppingValue: Decodable {
        case flag(Bool)
        case never

        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .flag(b); return }
            guard try c.decode(String.self) == "never" else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "early_stopping must be a boolean or \"never\"")
            }
            self = .never
        }
    }
    let kwargs: Kwargs
    let captions: [String]
    let ids: [[Int]]

    var options: GenerationOptions {
        var o = GenerationOptions()
        o.numBeams = kwargs.num_beams ?? 1
        o.maxLength = kwargs.max_length
        o.maxNewTokens = kwargs.max_new_tokens
        o.minLength = kwargs.min_length ?? 0
        o.repetitionPenalty = kwargs.repetition_penalty ?? 1
        o.lengthPenalty = kwargs.length_penalty ?? 1
        switch kwargs.early_stopping {
        case .flag(true): o.earlyStopping = .whenFull
        case .never: o.earlyStopping = .never
        default: o.earlyStopping = .heuristic
        }
        return o
    }
}

let generationRuns = ["greedy", "greedy_prefix", "beam3", "beam3_prefix", "beam3_short", "beam3_options", "beam4_never",
                      "greedy_options"]

@Suite struct BlipGenerationTests {
    @Test(arguments: generationRuns) func generatesTheSameIdsAsTransformers(run name: String) throws {
        let model = try BlipForConditionalGeneration.load(folder: tinyFolder())
        let processor = try BlipProcessor(folder: tinyFolder())
        let io = try Fixtures.tensors(blipArea, "blip_tiny_io")
        guard let run = try blipJSON([String: GenerationRun].self, "generation.json")[name] else {
            Issue.record("generation.json has no run \(name)")
            return
        }
        let pixels = try io.get("pixel_values")
        let prompt = run.kwargs.prefix == true ? try io.get("prompt_ids") : nil
        if let prompt {
            // The prefix ids are the tokenizer's: [CLS] a tattoo of [SEP].
            #expect(try rows(prompt).allSatisfy { $0 == processor.tokenizer.encode("a tattoo of") })
        }
        var options = run.options
        let cached = try model.generate(pixelValues: pixels, inputIds: prompt, options: options)
        try expectEqual(cached, io.get("generated_\(name)"), "\(name): ids (KV cache)")
        #expect(try rows(cached) == run.ids, "\(name): ids")
        options.useCache = false
        try expectEqual(model.generate(pixelValues: pixels, inputIds: prompt, options: options), cached,
                        "\(name): ids without the KV cache")
        #expect(try processor.decode(cached) == run.captions, "\(name): captions")
    }

    @Test func theFixtureIsNotDegenerate() throws {
        // A test that passes on constant output proves little: the fixture's captions must vary in length
        // and content, end at [SEP] in some runs and at the length limit in others.
        let runs = try blipJSON([String: GenerationRun].self, "generation.json")
        let all = runs.values.flatMap(\.ids)
        #expect(Set(all.flatMap { $0 }).count >= 15, "distinct tokens generated")
        #expect(all.contains { $0.contains(102) } && all.contains { !$0.contains(102) })
        #expect(Set(runs.values.flatMap(\.captions)).count >= 12)
        #expect(all.allSatisfy { $0.count >= 10 })
    }

    /// The folder as the fixture wrote it (vocab.txt, preprocessor_config.json) and as transformers 5 saves it
    /// (tokenizer.json only, the image settings nested in processor_config.json).
    @Test(arguments: ["blip_tiny", "blip_tiny_saved"]) func captionerRunsImagesToStrings(folder: String) throws {
        // The whole path from [0, 1] RGB images: processor, model, decode (the same images the fixture's
        // pixel values came from, one size per call).
        let captioner = try BlipCaptioner(folder: Fixtures.url(blipArea, folder))
        #expect(captioner.processor.imageProcessor.height == 32, "the model's own image size, not the 384 default")
        let raw = try Fixtures.tensors(blipArea, "image_processor")
        let runs = try blipJSON([String: GenerationRun].self, "generation.json")
        let names = ["image_smooth_45x61", "image_noise_70x50", "image_noise_20x27"]
        for (index, name) in names.enumerated() {
            let image = try raw.get(name).permute([2, 0, 1]).unsqueeze(0).to(.float32) / 255
            let plain = try captioner.caption(image)
            let prefixed = try captioner.caption(image, prefix: "a tattoo of", options: GenerationOptions(maxLength: 20, numBeams: 3))
            #expect(plain == [runs["greedy"]?.captions[index] ?? "-"], "\(name)")
            #expect(prefixed == [runs["beam3_prefix"]?.captions[index] ?? "-"], "\(name), prefixed")
        }
    }

    @Test func badInputsAreRejected() throws {
        let model = try BlipForConditionalGeneration.load(folder: tinyFolder())
        let pixels = try Fixtures.tensors(blipArea, "blip_tiny_io").get("pixel_values")
        // The wrong image size (transformers would silently slice its position table).
        #expect(throws: TorchError.self) {
            try model.generate(pixelValues: Tensor.zeros([1, 3, 16, 16]))
        }
        // A prompt as long as the maximum length.
        #expect(throws: TorchError.self) {
            try model.generate(pixelValues: pixels, inputIds: Tensor.zeros([3, 6], dtype: .int64),
                               options: GenerationOptions(maxLength: 5))
        }
        // More positions than the position table holds (64 in the tiny model); min_length keeps [SEP] away.
        #expect(throws: TorchError.self) {
            try model.generate(pixelValues: pixels, options: GenerationOptions(maxLength: 70, minLength: 70))
        }
    }
}
