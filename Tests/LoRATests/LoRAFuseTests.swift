// Fusing several networks with their multipliers into the base weights, and unfusing back to the exact
// original weights.
import Foundation
import Testing
import TestSupport
import Torch
@testable import LoRA
@testable import StableDiffusion

@Suite struct LoRAFuseTests {
    @Test func fuseUnfuseRoundTrip() throws {
        let inputs = try LoRAInputs()
        let unet = try tinyUNet()
        let originals = try unet.store.named.map { ($0.0, try $0.1.clone()) }
        // Two networks, one with 1×1-conv and feed-forward adapters, on shared layers, with their own multipliers.
        let wide = try LoRANetwork.load(Fixtures.url(loraArea, "kohya_from_diffusers.safetensors"), into: [.unet: unet.store],
                                        multiplier: 0.7)
        let attention = try LoRANetwork.load(Fixtures.url(loraArea, "diffusers_old.safetensors"), into: [.unet: unet.store],
                                             multiplier: -0.4)
        let unfused = try unet.run(inputs)
        #expect(try maxAbsDiff(unfused, inputs.baseOutput) > 1e-3)

        let stack = LoRAStack([wide, attention])
        try stack.fuse()
        #expect(wide.isFused && attention.isFused)
        try expectCloseReporting(try unet.run(inputs), unfused, atol: unetTolerance, "fused vs unfused")
        // Each fused weight is W + Σ mᵢ αᵢ/rᵢ Bᵢ Aᵢ, the deltas computed here in float64 from the adapters.
        for (key, original) in originals where key.hasSuffix(".weight") {
            guard let weight = unet.store[key] else { continue }
            let module = String(key.dropLast(".weight".count))
            var expected = try original.to(.float64)
            for network in [wide, attention] {
                guard let a = network[.unet, module] else { continue }
                let delta = try a.up.to(.float64).flatten(from: 1).matmul(a.down.to(.float64).flatten(from: 1))
                expected = try expected + (delta * (a.alpha / Double(a.rank) * network.multiplier)).reshape(weight.shape)
            }
            try expectClose(weight, expected, atol: 1e-6, "fused \(key)")
        }
        expectError(containing: ["already fused"]) { try stack.fuse() }
        expectError(containing: ["unfuse"]) { try stack.setMultipliers([1, 1]) }

        try stack.unfuse()
        for (key, original) in originals {
            try expectEqual(try #require(unet.store[key]), original, "unfused \(key)")
        }
        try expectEqual(try unet.run(inputs), unfused, "forward after unfuse")
        // New multipliers after unfusing take effect in the next fuse.
        try stack.setMultipliers([1, 0])
        try stack.fuse()
        let onlyWide = try unet.run(inputs)
        try stack.unfuse()
        attention.isEnabled = false
        try expectCloseReporting(onlyWide, try unet.run(inputs), atol: unetTolerance, "multiplier 0 drops a network")
    }

    @Test func kohyaMetadataAsKohyaWritesIt() throws {
        let unet = try tinyUNet()
        let network = LoRANetwork(name: "ink", generator: try Generator(seed: 1))
        try network.addAdapters(to: unet.store, component: .unet, config: LoRAConfig(rank: 4, alpha: 1))
        var metadata = KohyaMetadata()
        metadata.outputName = "tattoo-lines"
        metadata.learningRate = 1e-4
        metadata.textEncoderLR = 5e-05
        metadata.numTrainImages = 40
        metadata.resolution = (512, 512)
        metadata.cacheLatents = true
        metadata.trainingStartedAt = 1_700_000_000.5
        metadata.tagFrequency = ["10_tattoo": ["line art": 40, "rose": 12, "b\u{e9}ton": 3]]
        metadata.datasetDirectories = ["10_tattoo": .init(repeats: 10, imageCount: 40)]
        let url = try temporaryDirectory().appendingPathComponent("ink.safetensors")
        try network.saveKohya(to: url, metadata: metadata, dtype: .float16)
        let file = try SafetensorsFile(url: url)
        let m = file.metadata
        #expect(m["ss_network_module"] == "networks.lora")
        #expect(m["ss_network_dim"] == "4" && m["ss_network_alpha"] == "1.0")
        #expect(m["ss_base_model_version"] == "sd_v1" && m["ss_v2"] == "False")
        #expect(m["ss_learning_rate"] == "0.0001" && m["ss_text_encoder_lr"] == "5e-05")
        #expect(m["ss_resolution"] == "(512, 512)" && m["ss_cache_latents"] == "True")
        #expect(m["ss_num_train_images"] == "40" && m["ss_training_started_at"] == "1700000000.5")
        #expect(m["ss_tag_frequency"] == #"{"10_tattoo": {"line art": 40, "rose": 12, "b\u00e9ton": 3}}"#)
        #expect(m["ss_dataset_dirs"] == #"{"10_tattoo": {"n_repeats": 10, "img_count": 40}}"#)
        #expect(m["modelspec.architecture"] == "stable-diffusion-v1/lora" && m["modelspec.title"] == "tattoo-lines")
        #expect(m["sshs_model_hash"]?.count == 64)
        // kohya's save precision applies to every tensor, alpha included.
        #expect(file.entries.values.allSatisfy { $0.dtypeName == "F16" })
        #expect(file.entries["lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_q.alpha"]?.shape == [])
        // The file loads back to the same adapters.
        let other = try tinyUNet()
        let back = try LoRANetwork.load(url, into: [.unet: other.store], dtype: .float32)
        #expect(back.adapters.count == 48 && back.adapters.allSatisfy { $0.alpha == 1 && $0.rank == 4 })
        let a = try #require(network[.unet, "down_blocks.0.attentions.0.proj_in"] ?? network.adapters.first)
        let b = try #require(back[.unet, a.key])
        try expectEqual(b.down, try a.down.detach().to(.float16).to(.float32), "A round trip (fp16)")
    }
}
