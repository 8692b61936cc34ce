// BlipForConditionalGeneration against transformers, live: a tiny random model saved by
// reference/fixtures/blip.py as a transformers folder (vision features and decoder logits), the same
// weights with the tied LM-head keys written out, loading errors, and the key/shape map of the real
// BLIP-large config built on the meta device.
import Foundation
import Testing
import TestSupport
import Torch
@testable import Captioning

/// fp32 after the whole tiny model, max abs error: vision features (values O(1)) 1e-5; decoder logits (values
/// up to ~40, where float32 steps are ~4e-6) 2e-5. Measured errors are printed as [parity] lines.
let blipTolerance = 1e-5
let logitsTolerance = 2e-5

@Suite struct BlipModelTests {
    @Test func configDecodesWithTransformersDefaults() throws {
        let config = try BlipConfig.load(tinyFolder().appendingPathComponent("config.json"))
        #expect(config.visionConfig.hiddenSize == 32 && config.visionConfig.imageSize == 32 && config.visionConfig.patchSize == 8)
        #expect(config.textConfig.hiddenSize == 32 && config.textConfig.maxPositionEmbeddings == 64)
        #expect(config.textConfig.encoderHiddenSize == config.visionConfig.hiddenSize)
        // BLIP-large's hub config lists only non-default values; the rest come from transformers' defaults.
        let large = try BlipConfig.load(Fixtures.url(blipArea, "blip_large_config.json"))
        #expect(large.visionConfig.imageSize == 384 && large.visionConfig.patchSize == 16
                && large.visionConfig.layerNormEps == 1e-5 && large.visionConfig.numHiddenLayers == 24)
        #expect(large.textConfig.vocabSize == 30524 && large.textConfig.hiddenSize == 768
                && large.textConfig.numAttentionHeads == 12 && large.textConfig.layerNormEps == 1e-12)
        #expect(large.textConfig.bosTokenID == 30522 && large.textConfig.sepTokenID == 102
                && large.textConfig.padTokenID == 0 && large.textConfig.encoderHiddenSize == 1024)
    }

    @Test func visionFeaturesMatchTransformers() throws {
        let model = try BlipForConditionalGeneration.load(folder: tinyFolder())
        let io = try Fixtures.tensors(blipArea, "blip_tiny_io")
        try noGrad {
            let features = try model.visionModel(io.get("pixel_values"))
            try expectCloseReporting(features, io.get("vision_last_hidden_state"), atol: blipTolerance, "vision last_hidden_state")
            try expectCloseReporting(model.visionModel.pooled(features), io.get("vision_pooler_output"), atol: blipTolerance,
                                     "vision pooler_output")
        }
    }

    @Test func decoderLogitsMatchTransformers() throws {
        let model = try BlipForConditionalGeneration.load(folder: tinyFolder())
        let io = try Fixtures.tensors(blipArea, "blip_tiny_io")
        try noGrad {
            let logits = try model(pixelValues: io.get("pixel_values"), inputIds: io.get("decoder_input_ids"))
            try expectCloseReporting(logits, io.get("logits"), atol: logitsTolerance, "decoder logits")
            print("[parity] decoder logits: max |logit| \(try io.get("logits").abs().max().item())")
            // The cached path (one token at a time) gives the same logits as the whole sequence at once.
            let image = try model.visionModel(io.get("pixel_values"))
            let ids = try io.get("decoder_input_ids")
            let cache = BlipTextCache(layers: model.textDecoder.bert.layers.count)
            var steps: [Tensor] = []
            // A two-token block after the first token exercises the masked (past + causal) path.
            for (start, length) in [(0, 1), (1, 2), (3, ids.size(1) - 3)] {
                steps.append(try model.textDecoder(ids.narrow(dim: 1, start: start, length: length),
                                                   encoderHiddenStates: image, cache: cache))
            }
            try expectCloseReporting(Tensor.cat(steps, dim: 1), io.get("logits"), atol: logitsTolerance, "decoder logits, cached")
        }
    }

    @Test func tiedLMHeadKeysInTheFileAreAccepted() throws {
        let model = try BlipForConditionalGeneration.load(folder: Fixtures.url(blipArea, "blip_tiny_tied_keys"))
        let io = try Fixtures.tensors(blipArea, "blip_tiny_io")
        try noGrad {
            let logits = try model(pixelValues: io.get("pixel_values"), inputIds: io.get("decoder_input_ids"))
            try expectClose(logits, io.get("logits"), atol: logitsTolerance, "decoder logits (tied keys in the file)")
        }
    }

    @Test func blipLargeKeysAndShapesMatchTransformers() throws {
        let config = try BlipConfig.load(Fixtures.url(blipArea, "blip_large_config.json"))
        let expected = try blipJSON([String: [Int]].self, "blip_large_shapes.json")
        // Uninitialised half-precision storage: nothing is written, so nothing is paid for but the shapes.
        let model = try BlipForConditionalGeneration(config: config, dtype: .float16, initialize: false)
        let actual = Dictionary(uniqueKeysWithValues: model.store.named.map { ($0.0, $0.1.shape) })
        #expect(actual.count == model.store.count, "duplicate keys")
        let missing = Set(expected.keys).subtracting(actual.keys).sorted()
        let extra = Set(actual.keys).subtracting(expected.keys).sorted()
        #expect(missing.isEmpty, "keys transformers has and Inkwell lacks: \(missing)")
        #expect(extra.isEmpty, "keys Inkwell has and transformers lacks: \(extra)")
        for (key, shape) in expected where actual[key] != nil && actual[key] != shape {
            Issue.record("\(key): Inkwell \(actual[key] ?? []), transformers \(shape)")
        }
        #expect(expected.count == 615)
    }

    @Test func loadingErrorsNameTheFileAndKey() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = try tinyFolder()
        // No config.json.
        do {
            _ = try BlipForConditionalGeneration.load(folder: dir)
            Issue.record("a folder without config.json loaded")
        } catch let error as BlipConfigError {
            #expect(error.file?.hasSuffix("config.json") == true)
        }
        // A config value of the wrong type names its key.
        var json = try String(contentsOf: source.appendingPathComponent("config.json"), encoding: .utf8)
        try json.replacingOccurrences(of: "\"num_hidden_layers\": 2", with: "\"num_hidden_layers\": \"two\"")
            .write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        do {
            _ = try BlipForConditionalGeneration.load(folder: dir)
            Issue.record("a string num_hidden_layers was accepted")
        } catch let error as BlipConfigError {
            #expect(error.key.hasSuffix("num_hidden_layers") && error.file?.hasSuffix("config.json") == true, "\(error)")
        }
        // Heads that do not divide the width.
        json = json.replacingOccurrences(of: "\"num_attention_heads\": 4", with: "\"num_attention_heads\": 5")
        try json.write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        #expect(throws: BlipConfigError.self) { try BlipForConditionalGeneration.load(folder: dir) }
        // No weights.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: source.appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
        do {
            _ = try BlipForConditionalGeneration.load(folder: dir)
            Issue.record("a folder without model.safetensors loaded")
        } catch let error as BlipFolderError {
            #expect(error.description.contains("model.safetensors"))
        }
        // A missing and a mis-shaped key, both named with the file.
        var tensors = try SafetensorsFile(url: source.appendingPathComponent("model.safetensors")).tensors()
        tensors["vision_model.post_layernorm.bias"] = nil
        tensors["text_decoder.cls.predictions.bias"] = try Tensor.zeros([3])
        try Safetensors.save(tensors, to: dir.appendingPathComponent("model.safetensors"))
        do {
            _ = try BlipForConditionalGeneration.load(folder: dir)
            Issue.record("a state dict with a missing key loaded")
        } catch let error as StateDictError {
            #expect(error.missing == ["vision_model.post_layernorm.bias"])
            #expect(error.misShaped.map(\.0) == ["text_decoder.cls.predictions.bias"])
            #expect(error.source.hasSuffix("model.safetensors"))
        }
    }
}
