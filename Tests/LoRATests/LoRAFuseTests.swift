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
        // Two networks, one with 1×1-conv and feed-forward adapters, on shared layers, with their own multipliers,
        // as `--lora FILE:SCALE` arguments give them.
        let stack = try LoRAStack(loading: [
            try LoRAReference(parsing: Fixtures.url(loraArea, "kohya_from_diffusers.safetensors").path + ":0.7"),
            try LoRAReference(parsing: Fixtures.url(loraArea, "diffusers_old.safetensors").path + ":-0.4"),
        ], into: [.unet: unet.store])
        let (wide, attention) = (stack.networks[0], stack.networks[1])
        #expect(wide.multiplier == 0.7 && attention.multiplier == -0.4)
        #expect(wide.name == "kohya_from_diffusers" && wide.adapters.allSatisfy { $0.multiplier == 0.7 })
        let unfused = try unet.run(inputs)
        #expect(try maxAbsDiff(unfused, inputs.baseOutput) > 1e-3)

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

    @Test func loraArguments() throws {
        let plain = try LoRAReference(parsing: "styles/ink.safetensors")
        #expect(plain.url.path.hasSuffix("styles/ink.safetensors") && plain.multiplier == 1)
        let scaled = try LoRAReference(parsing: "/x/ink.safetensors:-0.25")
        #expect(scaled.url.path == "/x/ink.safetensors" && scaled.multiplier == -0.25)
        let colon = try LoRAReference(parsing: "/x/a:b.safetensors")
        #expect(colon.url.path == "/x/a:b.safetensors" && colon.multiplier == 1)
        expectError(containing: ["names no file"]) { _ = try LoRAReference(parsing: ":0.5") }
        expectError(containing: ["finite"]) { _ = try LoRAReference(parsing: "a.safetensors:inf") }
        // Was: "notanumber" became part of the path ("cannot open"), and 1e308 overflowed to a black image.
        for bad in ["notanumber", "nan", "1e308", "-101"] {
            expectError(containing: ["--lora 'a.safetensors:\(bad)'", "scale '\(bad)'"]) {
                _ = try LoRAReference(parsing: "a.safetensors:\(bad)")
            }
        }
        // A file that does not fit stops the load and takes the networks loaded before it off the model.
        let unet = try tinyUNet()
        let missing = URL(fileURLWithPath: "/nonexistent/lora.safetensors")
        expectError(containing: ["/nonexistent/lora.safetensors"]) {
            _ = try LoRAStack(loading: [LoRAReference(url: try Fixtures.url(loraArea, "diffusers_old.safetensors")),
                                        LoRAReference(url: missing)], into: [.unet: unet.store])
        }
        #expect(unet.attentions.allSatisfy { $0.toQ.adapters.isEmpty })
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
