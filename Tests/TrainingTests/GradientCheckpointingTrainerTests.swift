// The trainer with `training.gradient_checkpointing = true`: the same weights and log as without it (LoRA
// dropout on, text-encoder LoRA too, so both models' recomputations must replay the dropout generator), and an
// interrupted run resumed with it equals an uninterrupted one, bit for bit.
import Foundation
import RunFiles
import Testing
import TestSupport
import StableDiffusion
import Torch
@testable import Training

/// Serialized: the runs compare bit for bit, so no other test may draw from the default generator meanwhile.
@Suite(.serialized) struct GradientCheckpointingTrainerTests {
    @Test func configKeyDefaultsOffAndIsSettableInTheFileAndWithSet() throws {
        let minimal = "[model]\npath = \"m\"\n[data]\ndataset = \"d\"\n"
        #expect(try TrainingConfig.parse(minimal, overrides: []).training.gradientCheckpointing == false)
        let inFile = try TrainingConfig.parse(minimal + "[training]\ngradient_checkpointing = true\n", overrides: [])
        #expect(inFile.training.gradientCheckpointing)
        #expect(try TrainingConfig.parse(minimal, overrides: ["training.gradient_checkpointing=true"]).training.gradientCheckpointing)
        // The resolved config written into a run keeps it.
        #expect(try TrainingConfig.parse(inFile.toml(), overrides: []).training.gradientCheckpointing)
        #expect(throws: (any Error).self) {
            _ = try TrainingConfig.parse(minimal, overrides: ["training.gradient_checkpointing=yes"])
        }
    }

    @Test func checkpointedRunEqualsPlainRunAndResumesExactly() throws {
        let dir = try temporaryDirectory()
        let settings: (Bool) -> (inout TrainingConfig) -> Void = { checkpointing in
            { c in
                c.lora.dropout = 0.1
                c.lora.textEncoder = true
                c.training.gradientAccumulation = 2
                c.training.gradientCheckpointing = checkpointing
            }
        }
        let plain = try makeTrainer(dir, output: "plain", configure: settings(false))
        _ = try plain.run(resume: false)
        #expect(plain.pipeline.unet.gradientCheckpointing == nil)

        let straight = try makeTrainer(dir, output: "straight", configure: settings(true))
        _ = try straight.run(resume: false)
        let unetCounts = try #require(straight.pipeline.unet.gradientCheckpointing?.counts)
        let textCounts = try #require(straight.pipeline.textEncoder.gradientCheckpointing?.counts)
        #expect(unetCounts.recomputed > 0 && unetCounts.recomputed == unetCounts.checkpointed)
        #expect(textCounts.recomputed > 0 && textCounts.recomputed == textCounts.checkpointed)

        let first = try makeTrainer(dir, output: "resumed", configure: settings(true))
        let partial = try first.run(resume: false, shouldStop: { first.state.step >= 4 })
        #expect(partial.interrupted && partial.steps == 4)
        let second = try makeTrainer(dir, output: "resumed", configure: settings(true))
        let summary = try second.run(resume: true)
        #expect(!summary.interrupted && summary.steps == 6)

        let a = try Safetensors.load(plain.run.final).tensors
        let b = try Safetensors.load(straight.run.final).tensors
        let c = try Safetensors.load(second.run.final).tensors
        #expect(Set(a.keys) == Set(b.keys) && Set(a.keys) == Set(c.keys) && !a.isEmpty)
        // Against the plain run: 1e-6. Gradients differ from the plain graph's in float32 rounding only (a
        // checkpointed block's share of a gradient is summed apart; ≤ 1e-7 in GradientCheckpointingTests), which
        // 6 AdamW steps at lr 2e-3 keep far below this; a dropped mask or a missing gradient is far above.
        for (key, value) in a {
            try expectClose(try #require(b[key]), value, atol: 1e-6, "\(key): checkpointing vs plain")
            try expectEqual(try #require(c[key]), try #require(b[key]), "\(key): resumed vs uninterrupted, checkpointing")
        }
        let plainLog = try TrainingLog.read(plain.run.log), straightLog = try TrainingLog.read(straight.run.log)
        #expect(try TrainingLog.read(second.run.log) == straightLog)
        #expect(plainLog.map(\.step) == straightLog.map(\.step))
        for (p, s) in zip(plainLog, straightLog) {
            for (x, y) in [(p.trainLoss, s.trainLoss), (p.validationLoss, s.validationLoss), (p.gradNorm, s.gradNorm)] {
                #expect((x == nil) == (y == nil) && abs((x ?? 0) - (y ?? 0)) <= 1e-6, "step \(p.step): \(String(describing: x)) vs \(String(describing: y))")
            }
        }
        let (_, metadata) = try Safetensors.load(straight.run.final)
        #expect(metadata["ss_gradient_checkpointing"] == "True")
    }
}
