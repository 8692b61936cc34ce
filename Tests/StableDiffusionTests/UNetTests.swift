// UNet2DConditionModel against diffusers, live: tiny models saved by reference/fixtures/unet_vae.py with
// random weights, and the key/shape map of the real SD1.5 config.
import Foundation
import Testing
import TestSupport
import Torch
@testable import StableDiffusion

/// The fixture area written by reference/fixtures/unet_vae.py.
let unetVAEArea = "unet_vae"

/// fp32 after a whole (tiny) model: max abs error ~1e-4, as DESIGN.md states.
let wholeModelTolerance = 1e-4

/// `expectClose` that also prints the measured error, so reports can quote it.
func expectCloseReporting(_ actual: Tensor, _ expected: Tensor, atol: Double, _ label: String,
                          sourceLocation: SourceLocation = #_sourceLocation) throws {
    if actual.shape == expected.shape { print("[parity] \(label): max abs diff \(try maxAbsDiff(actual, expected))") }
    try expectClose(actual, expected, atol: atol, label, sourceLocation: sourceLocation)
}

/// For values spanning orders of magnitude (a VAE std of e^10 beside ones of e^-15): max |a − b| / (1 + |b|).
func expectRelativeClose(_ actual: Tensor, _ expected: Tensor, rtol: Double, _ label: String,
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
    guard actual.shape == expected.shape else {
        Issue.record("\(label): shape \(actual.shape) != \(expected.shape)", sourceLocation: sourceLocation)
        return
    }
    let a = try actual.to(.float64), b = try expected.to(.float64)
    let error = try ((a - b).abs() / (b.abs() + 1)).max().item()
    print("[parity] \(label): max relative diff \(error)")
    if !(error <= rtol) { Issue.record("\(label): max relative diff \(error) > \(rtol)", sourceLocation: sourceLocation) }
}

/// A fixture JSON file decoded as `T`.
func fixtureJSON<T: Decodable>(_ type: T.Type, _ file: String) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(contentsOf: Fixtures.url(unetVAEArea, file)))
}

/// Every registered key with its shape.
func keyShapes(_ store: VarStore) -> [String: [Int]] {
    Dictionary(uniqueKeysWithValues: store.named.map { ($0.0, $0.1.shape) })
}

/// Records which keys differ between two key→shape maps (readable, unlike a dictionary dump).
func expectSameKeyShapes(_ actual: [String: [Int]], _ expected: [String: [Int]], _ label: String,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    let missing = Set(expected.keys).subtracting(actual.keys).sorted()
    let extra = Set(actual.keys).subtracting(expected.keys).sorted()
    let shaped = expected.keys.filter { actual[$0] != nil && actual[$0] != expected[$0] }.sorted()
    if !missing.isEmpty { Issue.record("\(label): missing \(missing)", sourceLocation: sourceLocation) }
    if !extra.isEmpty { Issue.record("\(label): unexpected \(extra)", sourceLocation: sourceLocation) }
    for key in shaped {
        Issue.record("\(label): \(key) is \(actual[key] ?? []), diffusers \(expected[key] ?? [])", sourceLocation: sourceLocation)
    }
}

@Suite struct UNetTests {
    @Test func timestepEmbeddingMatchesDiffusers() throws {
        let f = try Fixtures.tensors(unetVAEArea, "timesteps")
        let t = try f.get("t")
        // Same libtorch ops in the same order: equal to float32 rounding.
        let cases: [(String, Tensor, Int, Bool, Double)] = [
            ("flip_shift0_320", t, 320, true, 0), ("noflip_shift1_32", t, 32, false, 1),
            ("flip_shift0_odd_33", t, 33, true, 0), ("float_flip_shift0_64", try f.get("t_float"), 64, true, 0),
        ]
        for (name, timesteps, dim, flip, shift) in cases {
            let emb = try getTimestepEmbedding(timesteps, dim: dim, flipSinToCos: flip, downscaleFreqShift: shift)
            try expectClose(emb, try f.get(name), atol: 1e-6, name)
        }
    }

    /// Runs one tiny UNet fixture: a batch of different timesteps, a Python-float timestep broadcast over
    /// the batch, and a 0-d timestep with an odd spatial size (explicit upsampling sizes).
    private func checkTinyUNet(_ name: String) throws {
        let unet = try UNet2DConditionModel.load(folder: Fixtures.url(unetVAEArea, name))
        let io = try Fixtures.tensors(unetVAEArea, name + "_io")
        try noGrad {
            let sample = try io.get("sample"), context = try io.get("encoder_hidden_states")
            let out = try unet(sample, timestep: io.get("timesteps"), encoderHiddenStates: context)
            try expectCloseReporting(out, io.get("output"), atol: wholeModelTolerance, "\(name) timesteps [10, 999]")
            let outFloat = try unet(sample, timestep: 250.5, encoderHiddenStates: context)
            try expectCloseReporting(outFloat, io.get("output_float_t"), atol: wholeModelTolerance, "\(name) t = 250.5")
            let outOdd = try unet(io.get("sample_odd"), timestep: Tensor(scalar: 37),
                                  encoderHiddenStates: io.get("encoder_hidden_states_odd"))
            try expectCloseReporting(outOdd, io.get("output_odd"), atol: wholeModelTolerance, "\(name) 7×9 sample, 0-d t")
        }
    }

    @Test func tinySD1UNetMatchesDiffusers() throws { try checkTinyUNet("unet_tiny") }

    /// Linear projections, per-block head counts, only-cross-attention per block, two transformer layers,
    /// flip/shift, centred input, mid scale factor, 1×1 conv_in, time_embedding_dim.
    @Test func variantUNetMatchesDiffusers() throws { try checkTinyUNet("unet_variant") }

    @Test func fp16VariantFileIsLoadedIntoFloat32() throws {
        let folder = try Fixtures.url(unetVAEArea, "unet_tiny")
        let unet = try UNet2DConditionModel.load(folder: folder, variant: "fp16")
        let full = try UNet2DConditionModel.load(folder: folder)
        // The variant file was read, not the fp32 one: its weights are fp16-rounded.
        let (w16, w32) = (try #require(unet.store["conv_in.weight"]), try #require(full.store["conv_in.weight"]))
        #expect(w16.dtype == .float32)
        #expect(try !w16.equal(w32))
        try expectEqual(w16, try w32.to(.float16).to(.float32), "fp16-rounded conv_in")
        let io = try Fixtures.tensors(unetVAEArea, "unet_tiny_io")
        let expected = try Fixtures.tensors(unetVAEArea, "unet_tiny_fp16_io").get("output")
        try noGrad {
            let out = try unet(io.get("sample"), timestep: io.get("timesteps"),
                               encoderHiddenStates: io.get("encoder_hidden_states"))
            try expectCloseReporting(out, expected, atol: wholeModelTolerance, "fp16 variant")
        }
    }

    @Test func sd15ConfigDecodesWithDiffusersDefaults() throws {
        let config = try fixtureJSON(UNet2DConditionConfig.self, "sd15_unet_config.json")
        #expect(config.attentionHeads == .all(8))
        #expect(config.sampleSize == .square(64))
        #expect(config.blockOutChannels == [320, 640, 1280, 1280])
        #expect(config.crossAttentionDim == .all(768))
        // Absent from the hub file: diffusers' defaults (formats.md §1.3).
        #expect(config.midBlockType == "UNetMidBlock2DCrossAttn")
        #expect(config.useLinearProjection == false && config.upcastAttention == false)
        #expect(config.transformerLayersPerBlock == .all(1) && config.onlyCrossAttention == .all(false))
        #expect(config.timeEmbeddingType == "positional" && config.resnetTimeScaleShift == "default")
        #expect(config.convInKernel == 3 && config.convOutKernel == 3 && config.normNumGroups == 32)
        let blocks = try config.validate()
        #expect(blocks.heads == [8, 8, 8, 8] && blocks.layers == [2, 2, 2, 2])
        // Encoding writes diffusers' keys back, and decoding that gives the same config.
        let again = try JSONDecoder().decode(UNet2DConditionConfig.self, from: JSONEncoder().encode(config))
        #expect(again == config)
        let json = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        #expect(json.contains("\"attention_head_dim\":8"))
    }

    @Test func sd15KeysAndShapesEqualDiffusers() throws {
        let config = try fixtureJSON(UNet2DConditionConfig.self, "sd15_unet_config.json")
        let expected = try fixtureJSON([String: [Int]].self, "sd15_unet_shapes.json")
        // No initialisation: the 860M parameters are never touched, so no memory is committed.
        let store = VarStore(initialize: false)
        let unet = try UNet2DConditionModel(store.root, config: config)
        #expect(store.count == expected.count)
        expectSameKeyShapes(keyShapes(store), expected, "SD1.5 UNet")
        // Attention modules know their keys (LoRA targets them): 16 transformer blocks × attn1/attn2.
        let attentions = unet.attentions
        #expect(attentions.count == 32)
        for attention in attentions {
            for (name, linear) in [("to_q", attention.toQ), ("to_k", attention.toK), ("to_v", attention.toV),
                                   ("to_out.0", attention.toOut)] {
                #expect(store["\(attention.key).\(name).weight"] === linear.weight, "\(attention.key).\(name)")
            }
        }
        #expect(attentions.first?.key == "down_blocks.0.attentions.0.transformer_blocks.0.attn1")
        #expect(attentions.first?.toK.inFeatures == 320 && attentions[1].toK.inFeatures == 768)
        // Epsilons too small for a 1e-4 parity test to see (formats.md §1.3): resnets use norm_eps,
        // Transformer2DModel's GroupNorm a fixed 1e-6, its LayerNorms 1e-5.
        let down0 = try #require(unet.downBlocks[0] as? CrossAttnDownBlock2D)
        #expect(down0.resnets[0].norm1.eps == 1e-5 && down0.attentions[0].norm.eps == 1e-6)
        #expect(down0.attentions[0].transformerBlocks[0].norm1.eps == 1e-5 && unet.convNormOut.eps == 1e-5)
    }

    @Test func runsInBFloat16() throws {
        let unet = try UNet2DConditionModel.load(folder: Fixtures.url(unetVAEArea, "unet_tiny"), dtype: .bfloat16)
        #expect(unet.store["conv_in.weight"]?.dtype == .bfloat16)
        let io = try Fixtures.tensors(unetVAEArea, "unet_tiny_io")
        try noGrad {
            let out = try unet(io.get("sample").to(.bfloat16), timestep: io.get("timesteps"),
                               encoderHiddenStates: io.get("encoder_hidden_states").to(.bfloat16))
            #expect(out.dtype == .bfloat16)
            // bfloat16 keeps 8 bits of mantissa: the whole model lands within a few hundredths.
            try expectCloseReporting(out, io.get("output"), atol: 0.05, "bf16 UNet vs fp32 diffusers")
        }
    }

    @Test func unsupportedConfigValuesAreRejectedNamingKeyAndFile() throws {
        let base = try JSONSerialization.jsonObject(
            with: Data(contentsOf: Fixtures.url(unetVAEArea, "sd15_unet_config.json"))) as? [String: Any] ?? [:]
        let cases: [(String, Any)] = [
            ("class_embed_type", "timestep"), ("addition_embed_type", "text"), ("time_embedding_type", "fourier"),
            ("down_block_types", ["AttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]),
            ("up_block_types", ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "AttnUpBlock2D"]),
            ("mid_block_type", NSNull()), ("num_class_embeds", 10), ("encoder_hid_dim_type", "text_proj"),
            ("attention_head_dim", [8, 8]), ("layers_per_block", "two"), ("resnet_time_scale_shift", "scale_shift"),
            ("num_attention_heads", 8), ("act_fn", "mish"), ("dropout", 0.1), ("attention_head_dim", 7),
        ]
        let dir = try temporaryDirectory()
        for (key, value) in cases {
            var json = base
            json[key] = value
            try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent("config.json"))
            do {
                _ = try UNet2DConditionModel.load(folder: dir)
                Issue.record("\(key) = \(value) was accepted")
            } catch let error as DiffusersConfigError {
                #expect(error.key == key, "\(error)")
                #expect(error.description.contains(dir.appendingPathComponent("config.json").path), "\(error)")
            }
        }
        // A folder of another component is named as such.
        let error = #expect(throws: DiffusersConfigError.self) {
            _ = try UNet2DConditionModel.load(folder: Fixtures.url(unetVAEArea, "vae_tiny"))
        }
        #expect(error?.key == "_class_name")
    }

    @Test func strictLoadReportsEveryBadKeyAndTheFile() throws {
        let source = try Fixtures.url(unetVAEArea, "unet_tiny")
        let dir = try temporaryDirectory()
        try FileManager.default.copyItem(at: source.appendingPathComponent("config.json"),
                                         to: dir.appendingPathComponent("config.json"))
        var state = try Safetensors.load(source.appendingPathComponent("diffusion_pytorch_model.safetensors")).tensors
        state["conv_in.bias"] = nil
        state["mid_block.attentions.0.transformer_blocks.0.attn1.to_q.bias"] = try Tensor.zeros([64])
        state["conv_out.weight"] = try Tensor.zeros([4, 32, 1, 1])
        let weights = dir.appendingPathComponent("diffusion_pytorch_model.safetensors")
        try Safetensors.save(state, to: weights)
        let error = #expect(throws: StateDictError.self) { _ = try UNet2DConditionModel.load(folder: dir) }
        #expect(error?.missing == ["conv_in.bias"])
        #expect(error?.unexpected == ["mid_block.attentions.0.transformer_blocks.0.attn1.to_q.bias"])
        #expect(error?.misShaped.map(\.0) == ["conv_out.weight"])
        #expect(error?.description.contains(weights.path) == true)
        // A variant that is not there names the file it looked for.
        let missing = #expect(throws: DiffusersFolderError.self) { _ = try UNet2DConditionModel.load(folder: dir, variant: "bf16") }
        #expect(missing?.description.contains("diffusion_pytorch_model.bf16.safetensors") == true)
    }
}
