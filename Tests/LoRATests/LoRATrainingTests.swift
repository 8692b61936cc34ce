// One training step on the tiny UNet against the same step with diffusers + peft (reference/fixtures/lora.py):
// peft's initial A/B loaded into Inkwell's adapters, the same inputs, MSE loss, backward, fused AdamW.
import Foundation
import Testing
import TestSupport
import Torch
@testable import LoRA
@testable import StableDiffusion

@Suite struct LoRATrainingTests {
    /// Loss and gradients after the whole tiny UNet: 1e-5 (measured ≤ 1.2e-7).
    static let tolerance = 1e-5
    /// AdamW's first step moves a weight by lr · g / (|g| + ε) (plus decay): for gradient elements well above
    /// float32 noise (|g| > 1e-4) the updated weights agree to 1e-6; elements with tiny gradients, whose float32
    /// rounding that ratio amplifies, are held to 1e-4 (1% of lr = 1e-2). A missing decay (lr · 1e-2 · |w|) or a
    /// wrong learning rate shows in the well-conditioned elements.
    static let updateTolerance = (wellConditioned: 1e-6, all: 1e-4)

    private func checkStep(_ fixture: String, targets: LoRATargets) throws {
        let (f, metadata) = try Safetensors.load(Fixtures.url(loraArea, fixture + ".safetensors"))
        let rank = Int(metadata["rank"] ?? "") ?? 0, alpha = Double(metadata["alpha"] ?? "") ?? 0
        let inputs = try LoRAInputs()
        let unet = try tinyUNet()
        let network = LoRANetwork()
        try network.addAdapters(to: unet.store, component: .unet, config: LoRAConfig(rank: rank, alpha: alpha, targets: targets))
        // The same modules as peft targeted, and peft's initial weights in them.
        let initial = Dictionary(uniqueKeysWithValues: f.filter { $0.key.hasPrefix("initial.") }
            .map { ("unet." + $0.key.dropFirst("initial.".count), $0.value) })
        #expect(Set(initial.keys) == Set(network.parameters.map(\.0)), "targeted modules differ from peft's")
        try network.loadParameters(initial, source: fixture)
        network.isTraining = true

        let prediction = try unet(inputs.sample, timestep: inputs.timesteps, encoderHiddenStates: inputs.context)
        let loss = try F.mseLoss(prediction.to(.float32), inputs.target.to(.float32))
        try expectCloseReporting(loss, try f.get("loss"), atol: Self.tolerance, "\(fixture) loss")
        try loss.backward()
        var worstGrad = 0.0
        for (key, tensor) in network.parameters {
            let peftKey = String(key.dropFirst("unet.".count))
            guard let grad = tensor.grad else { Issue.record("\(key) has no gradient"); continue }
            worstGrad = max(worstGrad, try maxAbsDiff(grad, try f.get("grad." + peftKey)))
            try expectClose(grad, try f.get("grad." + peftKey), atol: Self.tolerance, "grad \(peftKey)")
        }
        print("[lora parity] \(fixture) gradients: max abs diff \(worstGrad)")
        #expect(unet.store.named.allSatisfy { $0.1.grad == nil }, "a base parameter got a gradient")

        let optimizer = try AdamW(groups: network.parameterGroups(unetLR: 1e-2, weightDecay: 1e-2))
        try optimizer.step()
        var worst = (wellConditioned: 0.0, all: 0.0)
        for (key, tensor) in network.parameters {
            let peftKey = String(key.dropFirst("unet.".count))
            let expected = try f.get("after." + peftKey)
            let diff = try (tensor.detach() - expected).abs()
            let small = try f.get("grad." + peftKey).abs().le(1e-4)
            let conditioned = try diff.maskedFill(small, 0).max().item(), all = try diff.max().item()
            worst = (max(worst.wellConditioned, conditioned), max(worst.all, all))
            #expect(conditioned <= Self.updateTolerance.wellConditioned, "updated \(peftKey) (|g| > 1e-4): \(conditioned)")
            #expect(all <= Self.updateTolerance.all, "updated \(peftKey): \(all)")
            // The step really moved the weight (a no-op optimizer would fail here).
            #expect(try maxAbsDiff(tensor, try f.get("initial." + peftKey)) > 1e-4)
        }
        print("[lora parity] \(fixture) AdamW update: max abs diff \(worst.wellConditioned) where |g| > 1e-4, \(worst.all) overall")
    }

    @Test func attentionStepMatchesPeft() throws {
        try checkStep("train_attention", targets: .unetAttention)
    }

    /// 1×1-conv projections and feed-forward layers too, with alpha / r = 1/2.
    @Test func wideStepMatchesPeft() throws {
        try checkStep("train_wide", targets: .unetAttention + .unetProjections + .unetFeedForward)
    }

    /// fp16 mixed precision as diffusers' training script sets it up (fixture `train_fp16*`): the UNet in float16,
    /// float32 adapters, loss scaled and gradients unscaled by GradScaler, AdamW skipped on overflow.
    private func checkHalfPrecisionStep(_ fixture: String) throws -> (found: Bool, gradient: Double) {
        let (f, metadata) = try Safetensors.load(Fixtures.url(loraArea, fixture + ".safetensors"))
        let inputs = try LoRAInputs()
        let unet = try UNet2DConditionModel.load(folder: Fixtures.url(loraArea, "unet"), dtype: .float16)
        let network = LoRANetwork()
        try network.addAdapters(to: unet.store, component: .unet, config: LoRAConfig(rank: 4, alpha: 8, targets: .unetAttention))
        let initial = Dictionary(uniqueKeysWithValues: f.filter { $0.key.hasPrefix("initial.") }
            .map { ("unet." + $0.key.dropFirst("initial.".count), $0.value) })
        try network.loadParameters(initial, source: fixture)
        network.isTraining = true
        #expect(network.parameters.allSatisfy { $0.1.dtype == .float32 })

        var scaler = try GradScaler(initScale: Double(metadata["init_scale"] ?? "") ?? 0)
        let prediction = try unet(inputs.sample.to(.float16), timestep: inputs.timesteps,
                                  encoderHiddenStates: inputs.context.to(.float16))
        #expect(prediction.dtype == .float16)
        let loss = try F.mseLoss(prediction.to(.float32), inputs.target.to(.float32))
        try expectClose(loss, try f.get("loss"), atol: 1e-6, "\(fixture) loss")
        try scaler.scaled(loss).backward()
        let parameters = network.parameters.map(\.1)
        let found = try scaler.unscale(parameters)
        #expect(found == (try f.get("found_inf").toArray(Bool.self)[0]), "\(fixture): overflow detection differs from PyTorch's")
        var worst = 0.0
        if !found {
            for (key, tensor) in network.parameters {
                let expected = try f.get("grad." + key.dropFirst("unet.".count))
                let g = try #require(tensor.grad)
                worst = max(worst, try maxAbsDiff(g, expected))
                // Adapters run in float32 on float16 activations exactly as peft runs them.
                try expectClose(g, expected, atol: Self.halfTolerance, "grad \(key)")
            }
            let optimizer = try AdamW(groups: network.parameterGroups(unetLR: 1e-2, weightDecay: 1e-2))
            try optimizer.step()
        }
        try scaler.update(foundInf: found)
        #expect(scaler.scale == (try f.get("scale").item()), "\(fixture): scale after the step")
        for (key, tensor) in network.parameters where found {
            // A skipped step leaves every adapter weight exactly as it was.
            try expectClose(tensor, try f.get("after." + key.dropFirst("unet.".count)), atol: 0, "skipped \(key)")
        }
        return (found, worst)
    }

    /// Half-precision UNet gradients: the same kernels in the same order as diffusers + peft (measured: 0).
    static let halfTolerance = 1e-6

    @Test func halfPrecisionStepMatchesPeftWithGradScaler() throws {
        let (found, worst) = try checkHalfPrecisionStep("train_fp16")
        #expect(!found)
        print("[lora parity] fp16 step gradients: max abs diff \(worst)")
    }

    @Test func halfPrecisionOverflowIsSkippedAsPyTorchSkipsIt() throws {
        #expect(try checkHalfPrecisionStep("train_fp16_overflow").found)
    }
}
