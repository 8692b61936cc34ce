// GradScaler against torch.amp.GradScaler (reference/fixtures/optim.py): a float32 parameter used through
// float16 matmuls, 12 steps whose loss multipliers make fp16 gradients overflow, back off, grow and overflow again.
import Foundation
import Testing
import TestSupport
@testable import Torch

@Suite struct GradScalerTests {
    @Test func matchesTorchGradScalerOverOverflowsAndGrowth() throws {
        let (f, metadata) = try Safetensors.load(Fixtures.url("optim", "grad_scaler.safetensors"))
        var scaler = try GradScaler(initScale: Double(metadata["init_scale"] ?? "") ?? 0, growthFactor: 2, backoffFactor: 0.5,
                                    growthInterval: Int(metadata["growth_interval"] ?? "") ?? 0)
        let weight = try f.get("weight"), multipliers = try f.get("multipliers").toArray(Float.self)
        let param = try f.get("start").clone().requiresGrad(true)
        let optimizer = try AdamW(parameters: [("param", param)], lr: 1e-2)
        let expectedScales = try f.get("scale").toArray(Double.self)
        let expectedFound = try f.get("found_inf").toArray(Bool.self)
        for (i, multiplier) in multipliers.enumerated() {
            let h = try F.linear(f.get("input.\(i)").to(.float16), weight: param.to(.float16))
            let loss = try F.linear(h, weight: weight).to(.float32).pow(2).mean() * Double(multiplier)
            try scaler.scaled(loss).backward()
            let found = try scaler.unscale([param])
            #expect(found == expectedFound[i], "step \(i): inf/NaN found \(found), PyTorch \(expectedFound[i])")
            if !found {
                // Same kernels in the same order: the unscaled gradient is PyTorch's to the bit.
                try expectClose(try #require(param.grad), try f.get("grad.\(i)"), atol: 0, "gradient at step \(i)")
                try optimizer.step()
            }
            try scaler.update(foundInf: found)
            try optimizer.zeroGrad()
            #expect(scaler.scale == expectedScales[i], "scale after step \(i)")
            try expectClose(param, try f.get("after.\(i)"), atol: 0, "parameter after step \(i)")
        }
        #expect(Int(scaler.growthTracker) == (try f.get("growth_tracker").itemInt()))
    }

    @Test func savedStateRoundTrips() throws {
        var scaler = try GradScaler(initScale: 1024, growthInterval: 2)
        try scaler.update(foundInf: false)
        let decoded = try JSONDecoder().decode(GradScaler.self, from: try JSONEncoder().encode(scaler))
        #expect(decoded == scaler && decoded.growthTracker == 1)
    }

    @Test func rejectsMeaninglessSettings() {
        #expect(throws: TorchError.self) { try GradScaler(initScale: 0) }
        #expect(throws: TorchError.self) { try GradScaler(backoffFactor: 1) }
        #expect(throws: TorchError.self) { try GradScaler(growthInterval: 0) }
    }
}
