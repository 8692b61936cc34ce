// LoRA training with the UNet's gradient checkpointing against diffusers + peft with
// `enable_gradient_checkpointing()` (reference/fixtures/checkpointing.py): the same modules checkpointed, the
// same loss and gradients, with LoRA dropout too (the recomputation replays the masks).
import Foundation
import Testing
import TestSupport
import Torch
@testable import LoRA
@testable import StableDiffusion

/// Serialized: LoRA dropout draws from the default generator, as peft's does.
@Suite(.serialized) struct GradientCheckpointingTests {
    static let area = "checkpointing"
    /// Loss and gradients after the whole tiny UNet, as `LoRATrainingTests.tolerance`: 1e-5.
    static let tolerance = 1e-5
    /// Inkwell with against without checkpointing: 1e-7 (measured ≤ 7e-9). The same operations, but where a
    /// tensor feeds a checkpointed block and something else (a skip connection), its gradient's terms are
    /// summed in another order (the block's share arrives as one sum), which float32 rounds differently.
    static let plainTolerance = 1e-7

    struct Step {
        let loss: Tensor
        let grads: [String: Tensor]
        /// The default generator's next draw after backward.
        let nextDraw: Tensor
        let counts: GradientCheckpointing.Counts?
    }

    /// One forward/backward of the fixture's LoRA on the fixture's UNet, with peft's initial weights, the
    /// default generator seeded as the fixture seeds it before the forward (LoRA dropout draws from it).
    private func step(_ fixture: String, targets: LoRATargets, checkpointing: Bool) throws -> Step {
        let (f, metadata) = try Safetensors.load(Fixtures.url(Self.area, fixture + ".safetensors"))
        let rank = try #require(Int(metadata["rank"] ?? "")), alpha = try #require(Double(metadata["alpha"] ?? ""))
        let dropout = try #require(Double(metadata["dropout"] ?? "")), seed = try #require(UInt64(metadata["forward_seed"] ?? ""))
        let io = try Fixtures.tensors(Self.area, "io")
        let unet = try UNet2DConditionModel.load(folder: Fixtures.url(Self.area, "unet"))
        let network = LoRANetwork()
        try network.addAdapters(to: unet.store, component: .unet,
                                config: LoRAConfig(rank: rank, alpha: alpha, dropout: dropout, targets: targets))
        let initial = Dictionary(uniqueKeysWithValues: f.filter { $0.key.hasPrefix("initial.") }
            .map { ("unet." + $0.key.dropFirst("initial.".count), $0.value) })
        #expect(Set(initial.keys) == Set(network.parameters.map(\.0)), "targeted modules differ from peft's")
        try network.loadParameters(initial, source: fixture)
        network.isTraining = true
        if checkpointing { unet.gradientCheckpointing = GradientCheckpointing() }

        try manualSeed(seed)
        let prediction = try unet(io.get("sample"), timestep: io.get("timesteps"), encoderHiddenStates: io.get("encoder_hidden_states"))
        let loss = try F.mseLoss(prediction, io.get("target"))
        try loss.backward()
        var grads: [String: Tensor] = [:]
        for (key, tensor) in network.parameters { grads[String(key.dropFirst("unet.".count))] = tensor.grad }
        #expect(unet.store.named.allSatisfy { $0.1.grad == nil }, "a base parameter got a gradient")
        return Step(loss: try loss.detach(), grads: grads, nextDraw: try Tensor.rand([4]),
                    counts: unet.gradientCheckpointing?.counts)
    }

    private func check(_ fixture: String, targets: LoRATargets) throws {
        let expected = try Fixtures.tensors(Self.area, fixture)
        let plain = try step(fixture, targets: targets, checkpointing: false)
        let checkpointed = try step(fixture, targets: targets, checkpointing: true)
        let counts = try #require(checkpointed.counts)
        // diffusers checkpoints 17 modules in this UNet (each down/up resnet, the mid block's second resnet,
        // each transformer block); a missing or extra one changes the count.
        #expect(counts.checkpointed == 17 && counts.recomputed == 17, "\(counts.checkpointed) / \(counts.recomputed)")

        try expectClose(checkpointed.loss, try expected.get("loss"), atol: Self.tolerance, "\(fixture) loss")
        try expectEqual(checkpointed.nextDraw, try expected.get("next_draw"), "default generator after backward")
        try expectEqual(plain.nextDraw, try expected.get("next_draw"), "default generator after backward (plain)")
        var worst = 0.0, worstPlain = 0.0
        let keys = expected.keys.filter { $0.hasPrefix("grad.") }.map { String($0.dropFirst("grad.".count)) }
        #expect(Set(keys) == Set(checkpointed.grads.keys))
        for key in keys.sorted() {
            let reference = try expected.get("grad." + key)
            guard let grad = checkpointed.grads[key] else { Issue.record("\(key) has no gradient"); continue }
            worst = max(worst, try maxAbsDiff(grad, reference))
            try expectClose(grad, reference, atol: Self.tolerance, "grad \(key) vs diffusers with checkpointing")
            try expectClose(grad, try #require(plain.grads[key]), atol: Self.plainTolerance,
                            "grad \(key) with vs without checkpointing")
            worstPlain = max(worstPlain, try maxAbsDiff(grad, try #require(plain.grads[key])))
        }
        print("[checkpointing parity] \(fixture) gradients: max abs diff \(worst) vs diffusers with checkpointing, "
              + "\(worstPlain) vs Inkwell without")
        // And without checkpointing on both sides (dropout masks included).
        let expectedPlain = try Fixtures.tensors(Self.area, fixture + "_plain")
        try expectClose(plain.loss, try expectedPlain.get("loss"), atol: Self.tolerance, "\(fixture) loss (plain)")
        for key in keys {
            try expectClose(try #require(plain.grads[key]), try expectedPlain.get("grad." + key), atol: Self.tolerance,
                            "grad \(key) vs diffusers without checkpointing")
        }
    }

    @Test func attentionLoRAGradientsMatchDiffusersWithCheckpointing() throws {
        try check("attention", targets: .unetAttention)
    }

    /// Dropout 0.25, on adapters inside the checkpointed transformer blocks (attention, feed-forward) and
    /// outside them (the 1×1 proj_in/proj_out).
    @Test func wideLoRAWithDropoutMatchesDiffusersWithCheckpointing() throws {
        try check("wide_dropout", targets: .unetAttention + .unetProjections + .unetFeedForward)
    }
}
