// Adapters on layers: peft's initialisation, a fresh adapter leaving the UNet bit-exact, targeting by key
// pattern, frozen base weights, parameter groups, and several adapters on one layer adding their effects.
import Foundation
import Testing
import TestSupport
import Torch
@testable import LoRA
@testable import StableDiffusion

@Suite struct LoRAAdapterTests {
    /// A one-layer model: `layer` registered at `key`.
    private func singleLinear(_ key: String, inFeatures: Int = 32, outFeatures: Int = 16) throws -> (VarStore, Linear) {
        let store = VarStore()
        var path = store.root
        for part in key.split(separator: ".") { path = path / String(part) }
        return (store, try Linear(path, inFeatures: inFeatures, outFeatures: outFeatures))
    }

    @Test func initialisationMatchesPeft() throws {
        let f = try Fixtures.tensors(loraArea, "init")
        // Same seed as the fixture's torch.Generator: kaiming_uniform_(a=√5) and normal_(std=1/r) draw the same numbers.
        for (initialization, key) in [(LoRAInitialization.kaimingUniform, "kaiming_4x32"), (.gaussian, "gaussian_4x32")] {
            let (store, _) = try singleLinear("attn1.to_q")
            let network = LoRANetwork(generator: try Generator(seed: 123))
            let adapters = try network.addAdapters(to: store, component: .unet,
                                                   config: LoRAConfig(rank: 4, targets: ["to_q"], initialization: initialization))
            try #require(adapters.count == 1)
            try expectEqual(adapters[0].down, try f.get(key), "A (\(key))")
            try expectEqual(adapters[0].up, try Tensor.zeros([16, 4]), "B starts at zero")
        }
        // A 1×1 convolution's A is [r, in, 1, 1] with the same fan-in.
        let store = VarStore()
        _ = try Conv2d(store.root / "proj_in", inChannels: 32, outChannels: 8, kernelSize: 1)
        let network = LoRANetwork(generator: try Generator(seed: 123))
        let adapters = try network.addAdapters(to: store, component: .unet, config: LoRAConfig(rank: 4, targets: ["proj_in"]))
        try expectEqual(adapters[0].down, try f.get("kaiming_conv_4x32"), "conv A")
        #expect(adapters[0].up.shape == [8, 4, 1, 1])
    }

    @Test func freshAdapterLeavesTheUNetBitExact() throws {
        let inputs = try LoRAInputs()
        let unet = try tinyUNet()
        let before = try unet.run(inputs)
        try expectClose(before, inputs.baseOutput, atol: 1e-4, "the tiny UNet itself matches diffusers")
        let network = LoRANetwork(generator: try Generator(seed: 5))
        let targets = LoRATargets.unetAttention + .unetProjections + .unetFeedForward
        let adapters = try network.addAdapters(to: unet.store, component: .unet, config: LoRAConfig(rank: 8, alpha: 16, targets: targets))
        // 2 down + 1 mid + 3 up transformers, each: proj_in, proj_out, 2 × 4 attention projections, 2 feed-forward.
        #expect(adapters.count == 6 * 12)
        #expect(adapters.filter { $0.base.isConv }.count == 12)
        try expectEqual(try unet.run(inputs), before, "fresh adapters (B = 0) change nothing")
        network.isTraining = true  // dropout 0: training mode changes nothing either
        try expectEqual(try unet.run(inputs), before, "fresh adapters in training mode")
        // The adapters are really in the forward pass: a non-zero B changes the output.
        try randomize(network, seed: 9)
        #expect(try maxAbsDiff(try unet.run(inputs), before) > 1e-3)
        let adapted = try unet.run(inputs)
        // ... and taking them off restores the base exactly; putting them back restores the adapted output.
        try network.removeFromModel()
        try expectEqual(try unet.run(inputs), before, "after removeFromModel")
        network.reattach()
        try expectEqual(try unet.run(inputs), adapted, "after reattach")
    }

    @Test func dropoutOnlyInTrainingAndOnlyOnTheAdapterInput() throws {
        let (store, linear) = try singleLinear("to_v")
        let x = try Tensor.randn([64, 32], generator: try Generator(seed: 6))
        let base = try linear(x)
        let network = LoRANetwork(generator: try Generator(seed: 7))
        try network.addAdapters(to: store, component: .unet, config: LoRAConfig(rank: 4, dropout: 0.5, targets: ["to_v"]))
        network.isTraining = true
        try expectEqual(try noGrad { try linear(x) }, base, "B = 0: dropout never reaches the base output")
        try randomize(network, seed: 8)
        network.isTraining = false
        let evaluation = try noGrad { try linear(x) }
        let adapter = network.adapters[0]
        let expected = try base + F.linear(F.linear(x, weight: adapter.down), weight: adapter.up) * adapter.scale
        try expectClose(evaluation, expected, atol: 1e-6, "no dropout outside training")
        network.isTraining = true
        #expect(try maxAbsDiff(try noGrad { try linear(x) }, evaluation) > 1e-3, "dropout is active in training")
    }

    @Test func targetsFollowPeftMatching() throws {
        let unet = try tinyUNet()
        let keys = unet.store.moduleKeys
        let attention = keys.filter(LoRATargets.unetAttention.matches)
        // Every attention projection of the UNet, and nothing else (the VAE is not in this store).
        #expect(attention.count == 6 * 2 * 4)
        #expect(attention.allSatisfy { $0.contains(".attn1.") || $0.contains(".attn2.") })
        #expect(attention.contains("mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0"))
        #expect(!LoRATargets(["to_out.0"]).matches("x.to_out.01"))
        #expect(!LoRATargets(["q"]).matches("x.to_q"))
        #expect(LoRATargets(["attn1.to_q"]).matches("a.b.attn1.to_q"))
        #expect(keys.filter(LoRATargets.unetFeedForward.matches).count == 12)
        expectError(containing: ["no UNet module matches", "nope"]) {
            try LoRANetwork().addAdapters(to: unet.store, component: .unet, config: LoRAConfig(targets: ["nope"]))
        }
        // conv_in is a 3×3 convolution: named in the error, and nothing was attached.
        let network = LoRANetwork()
        expectError(containing: ["conv_in", "3×3"]) {
            try network.addAdapters(to: unet.store, component: .unet, config: LoRAConfig(targets: ["to_q", "conv_in"]))
        }
        #expect(network.adapters.isEmpty && unet.convIn.adapters.isEmpty)
        for rank in [0, 129] {
            expectError(containing: ["rank \(rank)"]) {
                try LoRANetwork().addAdapters(to: unet.store, component: .unet, config: LoRAConfig(rank: rank))
            }
        }
    }

    @Test func onlyAdaptersTrain() throws {
        let inputs = try LoRAInputs()
        let unet = try tinyUNet()
        try unet.store.setTrainable { _ in true }  // even a store left trainable is frozen by addAdapters
        let network = LoRANetwork(generator: try Generator(seed: 1))
        try network.addAdapters(to: unet.store, component: .unet, config: LoRAConfig(rank: 4))
        #expect(unet.store.trainable.isEmpty)
        #expect(network.parameters.count == 2 * 48 && network.parameters.allSatisfy { $0.1.requiresGrad })
        try randomize(network, seed: 2)
        let loss = try F.mseLoss(unet(inputs.sample, timestep: inputs.timesteps, encoderHiddenStates: inputs.context), inputs.target)
        try loss.backward()
        #expect(unet.store.named.allSatisfy { $0.1.grad == nil })
        #expect(network.parameters.allSatisfy { $0.1.grad != nil })
        let optimizer = try AdamW(groups: network.parameterGroups(unetLR: 1e-4))
        #expect(optimizer.parameters.count == network.parameters.count)
    }

    @Test func textEncoderKeysAndGroups() throws {
        let unet = try tinyUNet()
        let textEncoder = try textEncoderStandIn()
        let network = LoRANetwork(generator: try Generator(seed: 3))
        try network.addAdapters(to: unet.store, component: .unet, config: LoRAConfig(rank: 4))
        let te = try network.addAdapters(to: textEncoder, component: .textEncoder,
                                         config: LoRAConfig(rank: 2, alpha: 1, targets: .textEncoderAttention))
        #expect(te.count == 2 * 4)
        let kohya = try network.kohyaStateDict()
        for part in [".lora_down.weight", ".lora_up.weight", ".alpha"] {
            #expect(kohya["lora_te_text_model_encoder_layers_0_self_attn_q_proj" + part] != nil)
            #expect(kohya["lora_te_text_model_encoder_layers_1_self_attn_out_proj" + part] != nil)
            #expect(kohya["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0" + part] != nil)
        }
        #expect(kohya.count == 3 * (48 + 8))
        #expect(try kohya.get("lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight").shape == [2, 32])
        #expect(try kohya.get("lora_te_text_model_encoder_layers_0_self_attn_q_proj.alpha").item() == 1)
        let peft = try network.peftStateDict()
        #expect(peft["text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight"] != nil)
        #expect(peft["unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight"] != nil)
        // One optimizer group per component, the text encoder with its own learning rate.
        let groups = network.parameterGroups(unetLR: 1e-4, textEncoderLR: 5e-5)
        #expect(groups.map(\.name) == ["unet", "text_encoder"])
        #expect(groups.map(\.lr) == [1e-4, 5e-5])
        #expect(groups[1].parameters.count == 16 && groups[0].parameters.count == 96)
        #expect(groups[1].parameters.allSatisfy { $0.name.hasPrefix("text_encoder.") })
        _ = try AdamW(groups: groups)
    }

    @Test func adaptersOnOneLayerAddTheirEffects() throws {
        let (store, linear) = try singleLinear("to_q")
        let x = try Tensor.randn([3, 32], generator: try Generator(seed: 4))
        let base = try linear(x)
        func effect(_ seed: UInt64, rank: Int, alpha: Double, multiplier: Double) throws -> (LoRANetwork, Tensor) {
            let network = LoRANetwork(name: "n\(seed)")
            try network.addAdapters(to: store, component: .unet, config: LoRAConfig(rank: rank, alpha: alpha, targets: ["to_q"]))
            try randomize(network, seed: seed)
            network.multiplier = multiplier
            let adapter = network.adapters[0]
            // (alpha / r) · m · x Aᵀ Bᵀ, computed here independently in float64.
            let expected = try x.to(.float64).matmul(adapter.down.to(.float64).transpose(0, 1))
                .matmul(adapter.up.to(.float64).transpose(0, 1)) * (alpha / Double(rank) * multiplier)
            return (network, expected)
        }
        let (first, e1) = try effect(10, rank: 4, alpha: 8, multiplier: 0.7)
        let (second, e2) = try effect(11, rank: 2, alpha: 1, multiplier: -1.5)
        let both = try noGrad { try linear(x) }
        try expectClose(both.to(.float64) - base.to(.float64), try e1 + e2, atol: 1e-5, "sum of the two effects")
        second.isEnabled = false
        try expectClose(try noGrad { try linear(x) }.to(.float64) - base.to(.float64), e1, atol: 1e-5, "first alone")
        try first.removeFromModel()
        try second.removeFromModel()
        try expectEqual(try linear(x), base, "both removed")
    }
}
