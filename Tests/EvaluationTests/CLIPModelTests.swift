import Foundation
import StableDiffusion
import Testing
import TestSupport
import Torch
@testable import Evaluation

/// Parity with transformers' CLIPModel and CLIPVisionModel (reference/fixtures/clip_model.py: a tiny random
/// model, text width 32 and vision width 48, both with two layers). Tolerance: max abs error 1e-5 in fp32 for
/// every vision hidden state, the pooled outputs and the projected image/text features (values up to ~10).
@Suite struct CLIPVisionModelTests {
    static let atol = 1e-5

    @Test func visionTowerMatchesTransformers() throws {
        let f = try CLIPFixture.outputs()
        let model = try CLIPModel.load(directory: try CLIPFixture.folder("tiny"))
        let out = try noGrad { try model.visionModel(try f.get("pixel_values_tiny"), outputHiddenStates: true) }
        try expectClose(out.lastHiddenState, try f.get("vision.last_hidden_state"), atol: Self.atol, "last_hidden_state")
        try expectClose(out.pooledOutput, try f.get("vision.pooler_output"), atol: Self.atol, "pooler_output")
        let states = out.hiddenStates ?? []
        #expect(states.count == 3)
        for (i, h) in states.enumerated() {
            try expectClose(h, try f.get("vision.hidden_states.\(i)"), atol: Self.atol, "hidden_states.\(i)")
        }
    }

    /// A standalone CLIPVisionModel folder: transformers 5 writes it without the `vision_model.` prefix.
    @Test func standaloneVisionFolderLoads() throws {
        let f = try CLIPFixture.outputs()
        let vision = try CLIPVisionModel.load(directory: try CLIPFixture.folder("vision"))
        #expect(vision.config.hiddenSize == 48 && vision.config.hiddenAct == "gelu" && vision.config.patchSize == 8)
        let out = try noGrad { try vision(try f.get("pixel_values_tiny")) }
        try expectClose(out.pooledOutput, try f.get("vision.pooler_output"), atol: Self.atol, "standalone pooler_output")
    }

    /// The vision tower reads its own activation (gelu here, the text tower's is quick_gelu): with the
    /// other one the outputs move far beyond the tolerance, so the parity test above can fail on it.
    @Test func activationIsDistinguished() throws {
        let f = try CLIPFixture.outputs()
        let folder = try CLIPFixture.folder("vision")
        var config = try CLIPModelError.decode(CLIPVisionConfig.self, from: folder.appendingPathComponent("config.json"))
        config.hiddenAct = "quick_gelu"
        let vs = VarStore(initialize: false)
        let vision = try CLIPVisionModel(vs.root, config: config)
        let file = try SafetensorsFile(url: folder.appendingPathComponent("model.safetensors"))
        try vs.load(CLIPVisionModel.normalizedStateDict(file.tensors()))
        let pooled = try noGrad { try vision(try f.get("pixel_values_tiny")).pooledOutput }
        #expect(try maxAbsDiff(pooled, try f.get("vision.pooler_output")) > 1e-3)
    }

    @Test func inputValidation() throws {
        let model = try CLIPModel.load(directory: try CLIPFixture.folder("tiny"))
        #expect(throws: CLIPModelError.self) { try model.visionModel(try Tensor.zeros([1, 3, 64, 64])) }
        #expect(throws: CLIPModelError.self) { try model.visionModel(try Tensor.zeros([1, 1, 32, 32])) }
        #expect(throws: CLIPModelError.self) { try model.visionModel(try Tensor.zeros([3, 32, 32])) }
        // float64 weights: the pixels are converted to the model's dtype.
        let f = try CLIPFixture.outputs()
        let double = try CLIPModel.load(directory: try CLIPFixture.folder("tiny"), dtype: .float64)
        let features = try noGrad { try double.imageFeatures(try f.get("pixel_values_tiny")) }
        #expect(features.dtype == .float64)
        try expectClose(features, try f.get("image_features"), atol: Self.atol, "float64 image features")
    }
}

@Suite struct CLIPModelTests {
    static let atol = 1e-5

    private func checkFeatures(_ model: CLIPModel, _ label: String) throws {
        let f = try CLIPFixture.outputs()
        let pixels = try f.get("pixel_values_tiny")
        let ids = try f.get("text.input_ids"), mask = try f.get("text.attention_mask")
        try noGrad {
            try expectClose(try model.imageFeatures(pixels), try f.get("image_features"), atol: Self.atol,
                            "\(label) image features")
            try expectClose(try model.textFeatures(ids, attentionMask: mask), try f.get("text_features"),
                            atol: Self.atol, "\(label) text features")
            let logits = try model.logitsPerImage(pixelValues: try pixels.narrow(dim: 0, start: 0, length: 6),
                                                  inputIds: ids, attentionMask: mask)
            try expectClose(logits, try f.get("logits_per_image"), atol: 1e-4, "\(label) logits_per_image")
        }
    }

    /// get_image_features / get_text_features (padded batch with attention mask, the long prompt cut to 77
    /// so its end-of-text token is gone) and forward's logits, from the folder save_pretrained writes.
    @Test func featuresMatchTransformers() throws {
        let model = try CLIPModel.load(directory: try CLIPFixture.folder("tiny"))
        #expect(model.config.projectionDim == 16 && model.config.visionConfig.hiddenSize == 48)
        #expect(try model.logitScale.item() == (try CLIPFixture.inputs()).logit_scale)
        try checkFeatures(model, "tiny")
    }

    /// Each prompt alone (no padding, no mask): the same features as in the padded batch.
    @Test func unpaddedPromptsMatchTransformers() throws {
        let f = try CLIPFixture.outputs()
        let model = try CLIPModel.load(directory: try CLIPFixture.folder("tiny"))
        let tokenizer = try CLIPTokenizer(folder: try CLIPFixture.folder("tiny", probe: "vocab.json"))
        let expected = try f.get("text_features_single")
        for (i, prompt) in (try CLIPFixture.inputs()).prompts.enumerated() {
            let ids = Array(tokenizer.encode(prompt).prefix(77))
            let features = try noGrad { try model.textFeatures(try Tensor(ids, shape: [1, ids.count])) }
            try expectClose(features, try expected.narrow(dim: 0, start: i, length: 1), atol: Self.atol, "prompt \(i)")
        }
    }

    /// The hub's older layout: both `position_ids` buffers in the file, and `text_config_dict` /
    /// `vision_config_dict` overriding stale `text_config` / `vision_config` values (5 layers, 64 px).
    @Test func hubLayoutLoads() throws {
        let folder = try CLIPFixture.folder("tiny_hub")
        let config = try CLIPConfig.load(from: folder.appendingPathComponent("config.json"))
        #expect(config.textConfig.numHiddenLayers == 2 && config.textConfig.hiddenAct == "quick_gelu")
        #expect(config.visionConfig.imageSize == 32 && config.visionConfig.hiddenAct == "gelu")
        try checkFeatures(try CLIPModel.load(directory: folder), "hub layout")
    }

    /// The keys transformers 5.23's CLIPModel.save_pretrained writes are exactly this model's keys.
    @Test func savedKeysAreTheModelKeys() throws {
        let saved = try JSONDecoder().decode([String].self, from: Data(contentsOf: Fixtures.url(CLIPFixture.area, "saved_keys.json")))
        let config = try CLIPConfig.load(from: try CLIPFixture.folder("tiny").appendingPathComponent("config.json"))
        let vs = VarStore(initialize: false)
        _ = try CLIPModel(vs.root, config: config)
        #expect(Set(vs.keys) == Set(saved))
        #expect(vs.keys.count == saved.count)
    }

    /// openai/clip-vit-base-patch32's config.json (formats.md §7.2, hub layout) builds transformers' keys and
    /// shapes; the model is built uninitialised, so nothing of its 151M parameters is filled.
    @Test func vitB32ConfigBuildsTheReferenceKeysAndShapes() throws {
        let config = try CLIPConfig.load(from: try CLIPFixture.folder("vitb32").appendingPathComponent("config.json"))
        #expect(config.projectionDim == 512 && config.textConfig.eosTokenId == 2 && config.textConfig.hiddenSize == 512)
        #expect(config.visionConfig.hiddenSize == 768 && config.visionConfig.patchSize == 32 && config.visionConfig.numPositions == 50)
        let data = try Data(contentsOf: try Fixtures.url(CLIPFixture.area, "vitb32/shapes.json"))
        let reference = try JSONDecoder().decode([String: [Int]].self, from: data)
        let vs = VarStore(initialize: false)
        _ = try CLIPModel(vs.root, config: config)
        #expect(Set(vs.keys) == Set(reference.keys))
        for (key, shape) in reference {
            #expect(vs[key]?.shape == shape, "\(key)")
        }
        #expect(vs.parameterCount == reference.values.reduce(0) { $0 + $1.reduce(1, *) })
    }

    /// An empty config is CLIP ViT-B/32 (transformers' defaults), except the text eos id (49407 by default).
    @Test func configDefaults() throws {
        let empty = try JSONDecoder().decode(CLIPConfig.self, from: Data("{}".utf8))
        #expect(empty == CLIPConfig())
        #expect(empty.projectionDim == 512 && empty.logitScaleInitValue == 2.6592)
        #expect(empty.visionConfig.hiddenSize == 768 && empty.visionConfig.numHiddenLayers == 12
                && empty.visionConfig.imageSize == 224 && empty.visionConfig.patchSize == 32)
        #expect(empty.textConfig.hiddenSize == 512 && empty.textConfig.numAttentionHeads == 8)
        // An initialised model starts from logit_scale_init_value.
        let vs = VarStore()
        let tinyText = try JSONDecoder().decode(CLIPTextConfig.self, from: Data(
            #"{"hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 10}"#.utf8))
        let tinyVision = try JSONDecoder().decode(CLIPVisionConfig.self, from: Data(
            #"{"hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": [8, 8], "patch_size": 4}"#.utf8))
        #expect(tinyVision.imageSize == 8)
        let model = try CLIPModel(vs.root, config: CLIPConfig(textConfig: tinyText, visionConfig: tinyVision, projectionDim: 4))
        #expect(abs(try model.logitScale.item() - 2.6592) < 1e-6)
    }

    @Test func errorsNameTheFile() throws {
        let dir = try temporaryDirectory()
        let missing = dir.appendingPathComponent("nowhere")
        #expect { try CLIPModel.load(directory: missing) } throws: { "\($0)".contains(missing.path) }
        // No config.json.
        #expect { try CLIPModel.load(directory: dir) } throws: { "\($0)".contains(dir.appendingPathComponent("config.json").path) }
        // Malformed config.json.
        let configURL = dir.appendingPathComponent("config.json")
        try Data(#"{"projection_dim": "wide"}"#.utf8).write(to: configURL)
        #expect { try CLIPModel.load(directory: dir) } throws: { "\($0)".contains(configURL.path) }
        try Data(#"{"vision_config": {"hidden_size": 50, "num_attention_heads": 4}}"#.utf8).write(to: configURL)
        #expect { try CLIPModel.load(directory: dir) } throws: { "\($0)".contains(configURL.path) && "\($0)".contains("50") }
        try Data(#"{"vision_config": {"hidden_act": "mystery"}}"#.utf8).write(to: configURL)
        #expect { try CLIPModel.load(directory: dir) } throws: { "\($0)".contains("mystery") }
        // A good config without weights.
        let source = try CLIPFixture.folder("tiny")
        try FileManager.default.removeItem(at: configURL)
        try FileManager.default.copyItem(at: source.appendingPathComponent("config.json"), to: configURL)
        let weights = dir.appendingPathComponent("model.safetensors")
        #expect { try CLIPModel.load(directory: dir) } throws: { "\($0)".contains(weights.path) }
        // Strict load: a missing and an unexpected key, both named with the file.
        var state = try SafetensorsFile(url: source.appendingPathComponent("model.safetensors")).tensors()
        state["visual_projection.weight"] = nil
        state["vision_model.encoder.layers.7.mlp.fc1.bias"] = try Tensor.zeros([40])
        try Safetensors.save(state, to: weights)
        #expect {
            try CLIPModel.load(directory: dir)
        } throws: {
            let text = "\($0)"
            return text.contains(weights.path) && text.contains("visual_projection.weight")
                && text.contains("vision_model.encoder.layers.7.mlp.fc1.bias")
        }
        // A mis-shaped projection.
        state["visual_projection.weight"] = try Tensor.zeros([16, 32])
        state["vision_model.encoder.layers.7.mlp.fc1.bias"] = nil
        try Safetensors.save(state, to: weights)
        #expect { try CLIPModel.load(directory: dir) } throws: { "\($0)".contains("visual_projection.weight") }
        // A file that is not safetensors.
        try Data("not a safetensors file".utf8).write(to: weights)
        #expect { try CLIPModel.load(directory: dir) } throws: { "\($0)".contains(weights.path) }
    }
}
