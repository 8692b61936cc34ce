// LoRA files written by the reference tools (peft, diffusers' save_lora_weights and conversion utilities) load
// in Inkwell and give the UNet output diffusers gives with them; malformed and mismatched files fail with errors
// that name every offending key, and leave the model untouched.
import Foundation
import Testing
import TestSupport
import Torch
@testable import LoRA
@testable import StableDiffusion

@Suite struct LoRAFileTests {
    private func checkFile(_ file: String, expected: String, format: LoRAFileFormat, modules: Int,
                           translation: LDMKeyTranslation? = nil) throws {
        let inputs = try LoRAInputs()
        let reference = try Fixtures.tensors(loraArea, "expected").get(expected)
        let unet = try tinyUNet()
        let url = try Fixtures.url(loraArea, file)
        let parsed = try LoRAFile(url: url)
        #expect(parsed.format == format, "\(file)")
        let network = try LoRANetwork.load(parsed, into: [.unet: unet.store], ldmTranslation: translation)
        #expect(network.adapters.count == modules, "\(file)")
        try expectCloseReporting(try unet.run(inputs), reference, atol: unetTolerance, file)
    }

    /// diffusers' `save_lora_weights` with the LoraConfig in `lora_adapter_metadata`: alpha 8 / r 4, and
    /// alpha 2 for every `to_k` through `alpha_pattern`.
    /// Was: a .ckpt got "header length … exceeds the format's limit", a named pipe blocked forever, and NaN
    /// weights gave a black image without a word.
    @Test func pickledPipedAndNonFiniteFilesAreRefusedBeforeUse() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("inkwell-lora-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let good = try Fixtures.url(loraArea, "diffusers_old.safetensors")
        let ckpt = folder.appendingPathComponent("style.ckpt")
        try FileManager.default.copyItem(at: good, to: ckpt)
        expectError(containing: ["style.ckpt", "pickled PyTorch checkpoint"]) { _ = try LoRAFile(url: ckpt) }
        let fifo = folder.appendingPathComponent("pipe.safetensors")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        expectError(containing: ["pipe.safetensors", "named pipe"]) { _ = try LoRAFile(url: fifo) }
        let tensors = try SafetensorsFile(url: good).tensors().mapValues { try $0.clone() }
        let key = try #require(tensors.keys.sorted().first)
        try tensors[key]!.fill_(.infinity)
        let bad = folder.appendingPathComponent("diverged.safetensors")
        try Safetensors.save(tensors, to: bad)
        expectError(containing: [bad.path, key, "NaN or infinite"]) { _ = try LoRAFile(url: bad) }
    }

    @Test func peftFileWithAdapterMetadata() throws {
        try checkFile("peft_metadata/pytorch_lora_weights.safetensors", expected: "peft_metadata", format: .peft, modules: 72)
        let file = try LoRAFile(url: Fixtures.url(loraArea, "peft_metadata/pytorch_lora_weights.safetensors"))
        #expect(file.modules.filter { $0.name.description.hasSuffix(".to_k") }.allSatisfy { $0.alpha == 2 })
        #expect(file.modules.filter { $0.name.description.hasSuffix(".to_q") }.allSatisfy { $0.alpha == 8 })
    }

    /// diffusers' `convert_state_dict_to_kohya`: `lora_unet_…` names, int64 alphas equal to the rank.
    @Test func kohyaFileFromDiffusersConversion() throws {
        try checkFile("kohya_from_diffusers.safetensors", expected: "kohya_from_diffusers", format: .kohya, modules: 72)
    }

    /// The same weights under LDM block names (`lora_unet_input_blocks_1_1_…`), resolved through the
    /// caller's LDM mapping; without the mapping they match nothing, and the error lists them.
    @Test func kohyaFileWithLDMNames() throws {
        try checkFile("kohya_ldm.safetensors", expected: "kohya_ldm", format: .kohya, modules: 72, translation: ldmTranslation)
        let unet = try tinyUNet()
        let text = expectError(containing: ["none of its 72 LoRA modules", "lora_unet_input_blocks_1_1_proj_in.lora_down.weight",
                                            "lora_unet_middle_block_1_transformer_blocks_0_attn2_to_v.lora_down.weight"]) {
            _ = try LoRANetwork.load(Fixtures.url(loraArea, "kohya_ldm.safetensors"), into: [.unet: unet.store])
        }
        #expect(text.contains("more"), "a long list is cut, with a count")
    }

    /// `use_rslora` in the metadata: scale alpha / √r (3 / 2 here, not 3 / 4).
    @Test func peftFileWithRSLoRA() throws {
        try checkFile("peft_rslora/pytorch_lora_weights.safetensors", expected: "peft_rslora", format: .peft, modules: 48)
    }

    @Test func diffusersLoraDownFile() throws {
        try checkFile("diffusers_new/pytorch_lora_weights.safetensors", expected: "diffusers_new", format: .diffusers, modules: 48)
    }

    @Test func oldAttentionProcessorFile() throws {
        try checkFile("diffusers_old.safetensors", expected: "diffusers_old", format: .diffusers, modules: 48)
    }

    /// A model's own state dict (`…to_q.lora_A.default.weight`, no prefix); alpha = r there, so scale 1.
    @Test func peftKeysWithAdapterName() throws {
        try checkFile("peft_default.safetensors", expected: "attention_own", format: .peft, modules: 48)
    }

    /// peft's `save_pretrained`: `base_model.model.` keys, alpha 2 / r 4 read from adapter_config.json.
    @Test func peftSavePretrainedFolder() throws {
        try checkFile("peft_model/adapter_model.safetensors", expected: "peft_model_own", format: .peft, modules: 72)
    }

    /// diffusers' kohya conversion of a text-encoder LoRA made on transformers 5's flattened CLIPTextModel:
    /// `lora_te1_encoder_layers_0_self_attn_q_proj`, placed on `text_model.encoder.layers.0.self_attn.q_proj`.
    @Test func textEncoderKohyaFileFromDiffusers() throws {
        let source = try Fixtures.tensors(loraArea, "te_state")
        let textEncoder = try textEncoderStandIn()
        let network = try LoRANetwork.load(Fixtures.url(loraArea, "kohya_te_from_diffusers.safetensors"),
                                           into: [.textEncoder: textEncoder])
        #expect(network.adapters.count == 8 && network.components == [.textEncoder])
        for adapter in network.adapters {
            #expect(adapter.key.hasPrefix("text_model.encoder.layers."))
            let peftKey = String(adapter.key.dropFirst("text_model.".count))
            try expectEqual(adapter.down, try source.get(peftKey + ".lora_A.weight"), "\(peftKey) A")
            try expectEqual(adapter.up, try source.get(peftKey + ".lora_B.weight"), "\(peftKey) B")
            #expect(adapter.scale == 1, "alpha = rank in diffusers' conversion")
        }
        // The stand-in's layers really carry them.
        let q = try #require(textEncoder.module(at: "text_model.encoder.layers.1.self_attn.q_proj") as? Linear)
        #expect(q.adapters.count == 1)
    }

    // MARK: Errors

    private static let toQ = "down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"

    /// Writes `tensors` as a LoRA file and loads it into a fresh tiny UNet, expecting an error naming `fragments`;
    /// the UNet must carry no adapter afterwards.
    private func expectLoadError(_ tensors: [String: Tensor], _ fragments: [String],
                                 sourceLocation: SourceLocation = #_sourceLocation) throws {
        let url = try temporaryDirectory().appendingPathComponent("bad.safetensors")
        try Safetensors.save(tensors, to: url)
        let unet = try tinyUNet()
        let text = expectError(containing: [url.path] + fragments, sourceLocation: sourceLocation) {
            _ = try LoRANetwork.load(url, into: [.unet: unet.store, .textEncoder: try textEncoderStandIn()],
                                     ldmTranslation: ldmTranslation)
        }
        print("[lora error] " + text)
        let adapted = unet.store.modules().filter { (($0.module as? Linear)?.adapters.count ?? 0) > 0 }
        #expect(adapted.isEmpty, "a failed load attached adapters", sourceLocation: sourceLocation)
    }

    private func lora(_ name: String, rank: Int = 2, inFeatures: Int = 32, outFeatures: Int = 32) throws -> [String: Tensor] {
        [name + ".lora_down.weight": try Tensor.randn([rank, inFeatures]),
         name + ".lora_up.weight": try Tensor.randn([outFeatures, rank]),
         name + ".alpha": try Tensor(scalar: Float(rank))]
    }

    @Test func unsupportedModuleTypesAreNamed() throws {
        var tensors = try lora("lora_unet_" + Self.toQ)
        let loha = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_k"
        for part in ["hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"] { tensors["\(loha).\(part)"] = try Tensor.randn([2, 2]) }
        tensors["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_v.lokr_w1"] = try Tensor.randn([2, 2])
        // DoRA: valid down/up plus a magnitude that cannot be dropped silently.
        let dora = "lora_unet_down_blocks_0_attentions_0_proj_out"
        tensors.merge(try lora(dora), uniquingKeysWith: { a, _ in a })
        tensors[dora + ".dora_scale"] = try Tensor.randn([32, 1])
        // A 3×3 convolution LoRA (LoCon's conv_dim) on a resnet.
        tensors["lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight"] = try Tensor.randn([2, 32, 3, 3])
        tensors["lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight"] = try Tensor.randn([32, 2, 1, 1])
        try expectLoadError(tensors, ["\(loha).hada_w1_a: LoHa", "\(loha).hada_w2_b: LoHa", "attn1_to_v.lokr_w1: LoKr",
                                      "\(dora).dora_scale: DoRA", "resnets_0_conv1.lora_down.weight", "3×3"])
        // The same in PEFT naming.
        try expectLoadError([
            "unet.down_blocks.0.attentions.0.proj_in.lora_A.weight": try Tensor.randn([2, 32, 1, 1]),
            "unet.down_blocks.0.attentions.0.proj_in.lora_B.weight": try Tensor.randn([32, 2, 1, 1]),
            "unet.down_blocks.0.attentions.0.proj_in.lora_magnitude_vector": try Tensor.randn([32]),
        ], ["proj_in.lora_magnitude_vector: DoRA"])
    }

    @Test func misShapedTensorsAreListed() throws {
        var tensors = try lora("lora_unet_" + Self.toQ, rank: 4, inFeatures: 16)
        tensors.merge(try lora("lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k", outFeatures: 8),
                      uniquingKeysWith: { a, _ in a })
        try expectLoadError(tensors, ["mis-shaped tensors (2)",
                                      "\(Self.toQ).lora_down.weight: model needs [4, 32], file has [4, 16]",
                                      "attn2_to_k.lora_up.weight: model needs [64, 2], file has [8, 2]"])
        // Ranks that disagree between down and up.
        try expectLoadError(["lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": try Tensor.randn([4, 32]),
                             "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": try Tensor.randn([32, 3])],
                            ["q_proj.lora_up.weight: model needs [32, 4], file has [32, 3]"])
    }

    @Test func filesThatMatchNothing() throws {
        var tensors = try lora("lora_unet_up_blocks_7_attentions_0_transformer_blocks_0_attn1_to_q")
        tensors.merge(try lora("lora_te_text_model_encoder_layers_9_self_attn_q_proj"), uniquingKeysWith: { a, _ in a })
        try expectLoadError(tensors, ["none of its 2 LoRA modules matches",
                                      "lora_unet_up_blocks_7_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight",
                                      "lora_te_text_model_encoder_layers_9_self_attn_q_proj.lora_down.weight"])
        // Some match, some do not: strict loading fails and lists the strays.
        var partly = try lora("lora_unet_" + Self.toQ)
        partly.merge(try lora("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn3_to_q"), uniquingKeysWith: { a, _ in a })
        try expectLoadError(partly, ["modules that match nothing in the model (1)", "attn3_to_q.lora_down.weight"])
        // Not a LoRA at all.
        try expectLoadError(["conv_in.weight": try Tensor.randn([4]), "conv_in.bias": try Tensor.randn([4])],
                            ["holds no LoRA weights", "conv_in.weight", "conv_in.bias"])
        // Half a module, and a text-encoder LoRA given no text encoder.
        try expectLoadError(["lora_unet_\(Self.toQ).lora_down.weight": try Tensor.randn([2, 32]),
                             "lora_unet_\(Self.toQ).alpha": try Tensor(scalar: Float(1))],
                            ["incomplete modules", "\(Self.toQ).lora_down.weight"])
        let unet = try tinyUNet()
        let url = try temporaryDirectory().appendingPathComponent("te.safetensors")
        try Safetensors.save(try lora("lora_te_text_model_encoder_layers_0_self_attn_q_proj"), to: url)
        expectError(containing: ["no text encoder was given"]) { _ = try LoRANetwork.load(url, into: [.unet: unet.store]) }
    }

    @Test func nonStrictLoadSkipsStrays() throws {
        var tensors = try lora("lora_unet_" + Self.toQ)
        tensors.merge(try lora("lora_te_text_model_encoder_layers_0_self_attn_q_proj"), uniquingKeysWith: { a, _ in a })
        let url = try temporaryDirectory().appendingPathComponent("mixed.safetensors")
        try Safetensors.save(tensors, to: url)
        let unet = try tinyUNet()
        let network = try LoRANetwork.load(url, into: [.unet: unet.store], strict: false)
        #expect(network.adapters.map(\.key) == ["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"])
        #expect(network.skipped.count == 1 && network.skipped[0].contains("lora_te_text_model_encoder_layers_0_self_attn_q_proj"))
    }
}
