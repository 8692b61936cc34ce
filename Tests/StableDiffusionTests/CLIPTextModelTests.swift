import Foundation
import Testing
import TestSupport
import Torch
@testable import StableDiffusion

/// Parity with transformers' CLIPTextModel (reference/fixtures/clip_text.py). Tolerance: max abs error
/// 1e-5 in fp32 for every hidden state, the pooled output and the clip-skip embeddings.
@Suite struct CLIPTextModelTests {
    static let atol = 1e-5

    private func folder(_ name: String) throws -> URL {
        try Fixtures.url("clip_text", name + "/model.safetensors").deletingLastPathComponent()
    }

    private func checkForward(_ name: String, layout: String) throws {
        let f = try Fixtures.tensors("clip_text", name)
        let model = try CLIPTextModel.load(directory: try folder(layout))
        let ids = try f.get("input_ids")
        let mask = f["attention_mask"]
        let out = try noGrad { try model(ids, attentionMask: mask, outputHiddenStates: true) }
        try expectClose(out.lastHiddenState, try f.get("last_hidden_state"), atol: Self.atol, "\(layout) last_hidden_state")
        try expectClose(out.pooledOutput, try f.get("pooler_output"), atol: Self.atol, "\(layout) pooler_output")
        let states = out.hiddenStates ?? []
        #expect(states.count == model.config.numHiddenLayers + 1)
        for (i, h) in states.enumerated() {
            try expectClose(h, try f.get("hidden_states.\(i)"), atol: Self.atol, "\(layout) hidden_states.\(i)")
        }
        if mask == nil {
            for k in [1, 2] {
                let e = try noGrad { try model.promptEmbeddings(ids, clipSkip: k) }
                try expectClose(e, try f.get("clip_skip.\(k)"), atol: Self.atol, "\(layout) clip_skip \(k)")
            }
            let plain = try noGrad { try model.promptEmbeddings(ids) }
            try expectClose(plain, try f.get("last_hidden_state"), atol: Self.atol, "\(layout) no clip skip")
        }
    }

    /// eos_token_id 500 (not the largest id): pooled at the first eos, causal mask only, quick_gelu,
    /// from the flattened keys transformers 5 writes.
    @Test func currentEosMatchesTransformers() throws {
        try checkForward("eos_new", layout: "eos_new")
    }

    /// The same weights in SD's hub layout (`text_model.` prefix plus the old `position_ids` buffer).
    @Test func hubLayoutWithPositionIdsLoads() throws {
        try checkForward("eos_new", layout: "eos_new_hub")
    }

    /// Legacy eos_token_id 2: pooled at argmax(ids); padding attention mask; gelu.
    @Test func legacyEosWithAttentionMaskMatchesTransformers() throws {
        try checkForward("eos_legacy", layout: "eos_legacy")
        try checkForward("eos_legacy", layout: "eos_legacy_hub")
    }

    /// The two pooling rules really differ on these inputs, so each test above can fail on the wrong one.
    @Test func poolingRulesAreDistinguished() throws {
        let f = try Fixtures.tensors("clip_text", "eos_new")
        var config = try CLIPTextConfig.load(from: try folder("eos_new").appendingPathComponent("config.json"))
        config.eosTokenId = 2
        let vs = VarStore(initialize: false)
        let legacy = try CLIPTextModel(vs.root, config: config)
        let file = try SafetensorsFile(url: try folder("eos_new").appendingPathComponent("model.safetensors"))
        try vs.load(CLIPTextModel.normalizedStateDict(file.tensors()))
        let pooled = try noGrad { try legacy(try f.get("input_ids")).pooledOutput }
        #expect(try maxAbsDiff(pooled, try f.get("pooler_output")) > 1e-2)
    }

    @Test func sd15ConfigBuildsTheReferenceKeysAndShapes() throws {
        let config = try CLIPTextConfig.load(from: try Fixtures.url("clip_text", "sd15/config.json"))
        #expect(config.hiddenSize == 768 && config.numHiddenLayers == 12 && config.numAttentionHeads == 12)
        #expect(config.eosTokenId == 2 && config.bosTokenId == 0 && config.hiddenAct == "quick_gelu")
        let data = try Data(contentsOf: try Fixtures.url("clip_text", "sd15/shapes.json"))
        let reference = try JSONDecoder().decode([String: [Int]].self, from: data)
        // transformers 5 names the keys without `text_model.`; the loader's rule maps them onto ours.
        let placeholders = try reference.mapValues { _ in try Tensor.zeros([1]) }
        let mapped = Set(CLIPTextModel.normalizedStateDict(placeholders).keys)
        let vs = VarStore(initialize: false)
        _ = try CLIPTextModel(vs.root, config: config)
        #expect(Set(vs.keys) == mapped)
        for (key, shape) in reference {
            #expect(vs["text_model." + key]?.shape == shape, "\(key)")
        }
        #expect(vs.keys.contains("text_model.encoder.layers.11.self_attn.q_proj.weight"))
        #expect(vs.parameterCount == reference.values.reduce(0) { $0 + $1.reduce(1, *) })
        let buffers = try Data(contentsOf: try Fixtures.url("clip_text", "sd15/buffers.json"))
        // position_ids is a non-persistent buffer in the transformers the fixtures come from: files written
        // by it lack the key, older ones have it, and the loader accepts both (tests above).
        #expect(String(decoding: buffers, as: UTF8.self).contains("false"))
    }

    @Test func configDefaultsAndErrors() throws {
        let empty = try JSONDecoder().decode(CLIPTextConfig.self, from: Data("{}".utf8))
        #expect(empty == CLIPTextConfig())
        #expect(empty.hiddenSize == 512 && empty.eosTokenId == 49407 && empty.projectionDim == 512)
        let dir = try temporaryDirectory()
        let bad = dir.appendingPathComponent("config.json")
        try Data(#"{"hidden_size": 30, "num_attention_heads": 4}"#.utf8).write(to: bad)
        #expect { try CLIPTextConfig.load(from: bad) } throws: { "\($0)".contains(bad.path) }
        try Data(#"{"hidden_act": "mystery"}"#.utf8).write(to: bad)
        #expect { try CLIPTextConfig.load(from: bad) } throws: { "\($0)".contains("mystery") }
        try Data(#"{"hidden_size": "big"}"#.utf8).write(to: bad)
        #expect { try CLIPTextConfig.load(from: bad) } throws: { "\($0)".contains(bad.path) }
    }

    @Test func loadErrorsNameTheFile() throws {
        let dir = try temporaryDirectory()
        let source = try folder("eos_new")
        try FileManager.default.copyItem(at: source.appendingPathComponent("config.json"),
                                         to: dir.appendingPathComponent("config.json"))
        #expect { try CLIPTextModel.load(directory: dir) } throws: { "\($0)".contains("model.safetensors") }
        // A file with a missing and an extra key: strict load names both and the file.
        var state = try SafetensorsFile(url: source.appendingPathComponent("model.safetensors")).tensors()
        state["encoder.layers.0.mlp.fc1.bias"] = nil
        state["encoder.layers.9.mlp.fc1.bias"] = try Tensor.zeros([37])
        let weights = dir.appendingPathComponent("model.safetensors")
        try Safetensors.save(state, to: weights)
        #expect {
            try CLIPTextModel.load(directory: dir)
        } throws: {
            let text = "\($0)"
            return text.contains(weights.path) && text.contains("text_model.encoder.layers.0.mlp.fc1.bias")
                && text.contains("text_model.encoder.layers.9.mlp.fc1.bias")
        }
    }

    @Test func inputValidationAndDtype() throws {
        let f = try Fixtures.tensors("clip_text", "eos_new")
        let model = try CLIPTextModel.load(directory: try folder("eos_new"), dtype: .float64)
        let ids = try f.get("input_ids")
        let out = try noGrad { try model(ids) }
        #expect(out.lastHiddenState.dtype == .float64)
        try expectClose(out.lastHiddenState, try f.get("last_hidden_state"), atol: Self.atol, "float64 model")
        #expect(throws: CLIPTextModelError.self) { try model(try ids.to(.float32)) }
        #expect(throws: CLIPTextModelError.self) { try model(try Tensor.zeros([1, 78], dtype: .int64)) }
        #expect(throws: CLIPTextModelError.self) { try model.promptEmbeddings(ids, clipSkip: 4) }
    }
}
