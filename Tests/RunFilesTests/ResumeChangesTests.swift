// A changed config on --resume: each change listed, those that cannot continue the run refused with the reason.
import Testing
@testable import RunFiles

@Suite struct ResumeChangesTests {
    func config(_ change: (inout TrainingConfig) -> Void = { _ in }) -> TrainingConfig {
        var c = TrainingConfig()
        c.model.path = "models/sd15"
        c.data.dataset = "data/processed/tattoo"
        change(&c)
        return c
    }

    @Test func harmlessChangesAreListedAndApply() throws {
        let diff = try ResumeChanges(saved: config(), now: config {
            $0.samples.every = 50
            $0.samples.prompts = ["a koi"]
            $0.training.gradientCheckpointing = true
        }, step: 40)
        #expect(diff.refused.isEmpty)
        #expect(diff.changes.map(\.description).sorted() == [
            "samples.every 200 → 50",
            "samples.prompts [\"minimal line-art tattoo of a rose, stencil, high-contrast\", \"minimal line-art tattoo of a swallow, stencil, high-contrast\"] → [\"a koi\"]",
            "training.gradient_checkpointing false → true",
        ])
        #expect(try ResumeChanges(saved: config(), now: config(), step: 40).changes.isEmpty)
    }

    @Test func shapesDataOrderAndTheCurveAreRefused() throws {
        let diff = try ResumeChanges(saved: config(), now: config {
            $0.lora.rank = 32
            $0.training.batchSize = 2
            $0.schedule.warmupSteps = 10
            $0.training.maxSteps = 2000
            $0.validation.every = 10
        }, step: 40)
        let refused = Dictionary(uniqueKeysWithValues: diff.refused.map { ($0.key, $0.refusal ?? "") })
        #expect(refused.keys.sorted() == ["lora.rank", "schedule.warmup_steps", "training.batch_size", "training.max_steps"])
        #expect(refused["lora.rank"] == "changes the adapters' shapes")
        #expect(refused["training.max_steps"] == "bends the cosine learning-rate curve the run has followed to step 40")
        #expect(diff.changes.count == 5)
    }

    @Test func moreStepsOnAFlatScheduleAreFine() throws {
        let flat = config { $0.schedule.name = .constantWithWarmup; $0.schedule.warmupSteps = 20 }
        let longer = config { $0.schedule.name = .constantWithWarmup; $0.schedule.warmupSteps = 20; $0.training.maxSteps = 3000 }
        #expect(try ResumeChanges(saved: flat, now: longer, step: 40).refused.isEmpty)
        // Still in the warmup, or already past the new end: refused.
        #expect(try ResumeChanges(saved: flat, now: longer, step: 10).refused.map(\.key) == ["training.max_steps"])
        let shorter = config { $0.schedule.name = .constantWithWarmup; $0.schedule.warmupSteps = 20; $0.training.maxSteps = 30 }
        #expect(try ResumeChanges(saved: flat, now: shorter, step: 40).refused.first?.refusal == "the run is already at step 40")
    }
}

@Suite struct ResumeWorldSizeTests {
    @Test func anotherWorldSizeIsRefusedWithTheOneToResumeWith() throws {
        var c = TrainingConfig()
        c.model.path = "models/sd15"
        let diff = try ResumeChanges(saved: c, now: c, step: 40, savedWorldSize: 2, worldSize: 1)
        #expect(diff.refused.map(\.description) == [
            "world size (ranks) 2 → 1 (the saved position counts global batches of training.batch_size × 2 ranks; resume with 2 ranks (--nproc 2))",
        ])
        #expect(try ResumeChanges(saved: c, now: c, step: 40, savedWorldSize: 2, worldSize: 2).changes.isEmpty)
        #expect(try ResumeChanges(saved: c, now: c, step: 40, savedWorldSize: 1, worldSize: 4).refused.first?.refusal
            == "the saved position counts global batches of training.batch_size × 1 rank; resume with 1 rank (no --nproc)")
    }
}
