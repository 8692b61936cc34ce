// A stop request (Ctrl-C, SIGTERM) between steps' slow parts: the step-0 sample pass, a later validation
// pass, latent caching. The trainer stops at once (within one denoising step or one image), saves the state of
// the last completed step, and `--resume` ends with the uninterrupted run's LoRA and log, bit for bit.
import Foundation
import RunFiles
import Testing
import TestSupport
import Torch
@testable import Training

@Suite struct StopRequestTests {
    /// Validation every 3 steps (2 held-out images), samples every 3 steps: 1 prompt × 1 seed, 4 denoising steps.
    static func settings(_ config: inout TrainingConfig) {
        config.lora.dropout = 0.1
        config.samples.every = 3
        config.samples.steps = 4
        config.samples.size = 32
        config.samples.prompts = ["a ring"]
        config.samples.seeds = [7]
    }

    /// A run that a stop request interrupts at the `poll`th poll of shouldStop at `step`. Returns the trainer,
    /// how many times it polled at that step, and its summary.
    func interrupt(_ dir: URL, stopAt step: Int, poll: Int) throws -> (LoRATrainer, polls: Int, TrainingSummary) {
        let first = try makeTrainer(dir, output: "resumed", configure: Self.settings)
        // Cached beforehand, so that the polls counted are the evaluation's, not the caching's.
        try first.prepareCaches(events: { _ in })
        var polls = 0
        let stopped = try first.run(resume: false, shouldStop: { [unowned first] in
            guard first.state.step == step else { return false }
            polls += 1
            return polls >= poll
        })
        return (first, polls, stopped)
    }

    /// Resumes the interrupted run and checks it against an uninterrupted one.
    func resumeEqualsAStraightRun(_ dir: URL) throws {
        let straight = try makeTrainer(dir, output: "straight", configure: Self.settings)
        _ = try straight.run(resume: false)
        let second = try makeTrainer(dir, output: "resumed", configure: Self.settings)
        let summary = try second.run(resume: true)
        #expect(!summary.interrupted && summary.steps == 6)
        let a = try Safetensors.load(straight.run.final).tensors, b = try Safetensors.load(second.run.final).tensors
        #expect(Set(a.keys) == Set(b.keys) && !a.isEmpty)
        for (key, value) in a { try expectEqual(try #require(b[key]), value, key) }
        #expect(try TrainingLog.read(straight.run.log) == TrainingLog.read(second.run.log))
        for sampled in [0, 3, 6] {
            let names = try FileManager.default.contentsOfDirectory(atPath: second.run.samples(step: sampled).path)
            #expect(names.filter { $0.hasSuffix(".png") }.count == 1, "step \(sampled): \(names)")
        }
        #expect(TrainerState.read(second.run)?.pendingEvaluation == nil)
    }

    /// The reported hole: a stop during the step-0 samples (adapters off, before any update) was ignored
    /// until they were all rendered.
    @Test func stopDuringTheStepZeroSamplesResumesExactly() throws {
        let dir = try temporaryDirectory()
        // Polls at step 0: the 2 validation images, then one per denoising step; the 4th is the sample's 2nd step.
        let (first, polls, stopped) = try interrupt(dir, stopAt: 0, poll: 4)
        #expect(polls == 4, "nothing polled after the stop: the sample ended within its denoising step")
        #expect(stopped.interrupted && stopped.steps == 0)
        let saved = try #require(TrainerState.read(first.run))
        #expect(saved.step == 0 && saved.pendingEvaluation == TrainerState.PendingEvaluation(trainLoss: nil, gradNorm: nil))
        // Not half a samples folder, and no log row for an evaluation that did not finish.
        #expect(!FileManager.default.fileExists(atPath: first.run.samples(step: 0).path))
        #expect(try TrainingLog.read(first.run.log).isEmpty)
        try resumeEqualsAStraightRun(dir)
    }

    /// A stop during step 3's validation pass: the state of step 3 is saved with its training loss, for the
    /// evaluation's log row that --resume writes.
    @Test func stopDuringALaterValidationResumesExactly() throws {
        let dir = try temporaryDirectory()
        // Polls at step 3: the one before the next step is never reached; validation image 2 is the 2nd.
        let (first, polls, stopped) = try interrupt(dir, stopAt: 3, poll: 2)
        #expect(polls == 2)
        #expect(stopped.interrupted && stopped.steps == 3)
        let saved = try #require(TrainerState.read(first.run))
        let pending = try #require(saved.pendingEvaluation)
        #expect(saved.step == 3 && pending.trainLoss != nil)
        #expect(!FileManager.default.fileExists(atPath: first.run.samples(step: 3).path))
        #expect(try TrainingLog.read(first.run.log).map(\.step) == [0, 1, 2])
        try resumeEqualsAStraightRun(dir)
    }

    /// A stop while caching latents: before step 0, so no state; the entries written are kept, and the next
    /// run caches only the rest.
    @Test func stopWhileCachingKeepsTheCachedLatents() throws {
        let dir = try temporaryDirectory()
        let trainer = try makeTrainer(dir, configure: Self.settings)
        var polls = 0
        var messages: [String] = []
        let stopped = try trainer.run(resume: false, shouldStop: { polls += 1; return polls >= 3 },
                                      events: { if case .message(let text) = $0 { messages.append(text) } })
        #expect(stopped.interrupted && stopped.steps == 0)
        #expect(messages.contains { $0.contains("stopped while caching latents") }, "\(messages)")
        let cached = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("cache").path)
        #expect(cached.filter { $0.hasSuffix(".safetensors") }.count == 2)
        #expect(TrainerState.read(trainer.run) == nil)

        var encoded: [String] = []
        let again = try makeTrainer(dir, configure: Self.settings)
        let summary = try again.run(resume: true, events: { if case .message(let text) = $0 { encoded.append(text) } })
        #expect(!summary.interrupted && summary.steps == 6)
        #expect(encoded.contains("cached latents of 6 image(s)"), "\(encoded)")
    }
}
