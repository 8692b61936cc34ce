// `inkwell train --resume` as a user runs it (the debug binary), with no thread setting of its own: it runs with
// the CPU thread count the run recorded in state/trainer.json, and so ends with the uninterrupted run's LoRA bit
// for bit; a different count the user fixes wins, with a warning. On the tiny fixture model, whose LoRA after four
// steps differs between 1 and 2 threads (checked here too: the test can tell a wrong count).
import Foundation
import RunFiles
import Testing
import TestSupport
import Torch
@testable import Training

@Suite(.serialized) struct ResumeThreadsTests {
    /// `inkwell ARGS` in `work`, with none of the test process's thread settings (OMP_*, MKL_*, GOMP_*,
    /// INKWELL_THREADS) and `extra` added; its status and output.
    static func train(_ arguments: [String], in work: URL, environment extra: [String: String] = [:]) throws -> (Int32, String) {
        let environment = ProcessInfo.processInfo.environment.filter { key, _ in
            !["OMP_", "GOMP_", "MKL_", "INKWELL_THREADS", CPUPacing.launcherVariable].contains { key.hasPrefix($0) }
        }.merging(extra) { $1 }
        return try TrainCommandStopTests.inkwell(["train", "--config", "train.toml"] + arguments, in: work, environment: environment)
    }

    /// Four steps on a flat learning rate (so that a run trained to step 2 may be continued to 4), validated and
    /// checkpointed every other step.
    static func writeConfig(_ work: URL) throws {
        try (KillSafetyTests.training + """

            [schedule]
            name = "constant"
            [data]
            dataset = "data/ds"
            captions = "vanilla"
            resolution = 64
            [output]
            dir = "runs"
            """).write(to: work.appendingPathComponent("train.toml"), atomically: true, encoding: .utf8)
    }

    static func lora(_ work: URL, _ name: String) -> URL { work.appendingPathComponent("runs/\(name)/lora/\(name).safetensors") }

    static func recordedThreads(_ work: URL, _ name: String) throws -> Int? {
        try TrainerState(decoding: Data(contentsOf: work.appendingPathComponent("runs/\(name)/state/trainer.json"))).cpuThreads
    }

    @Test func resumeWithoutASettingTakesTheRecordedCountAndEndsBitForBit() throws {
        #expect(FileManager.default.isExecutableFile(atPath: KillHarness.binary.path), "build first: swift build --build-tests")
        let work = try temporaryDirectory()
        try KillSafetyTests.prepared(work)
        try Self.writeConfig(work)

        // A: uninterrupted, two threads.
        let (a, aOut) = try Self.train(["--set", "output.name=a"], in: work, environment: ["INKWELL_THREADS": "2"])
        try #require(a == 0, "\(aOut)")
        #expect(aOut.contains("CPU threads: 2 (INKWELL_THREADS), held for the run and recorded in its state"), "\(aOut)")
        #expect(try Self.recordedThreads(work, "a") == 2)

        // The same run on one thread ends elsewhere in the last bits: a resume on the wrong count would be seen.
        let (one, oneOut) = try Self.train(["--set", "output.name=one"], in: work, environment: ["INKWELL_THREADS": "1"])
        try #require(one == 0, "\(oneOut)")
        #expect(try KillHarness.difference(Self.lora(work, "one"), Self.lora(work, "a")) != nil,
                "1 and 2 threads train the same LoRA: the test cannot tell the count")

        // B: two threads to step 2, then resumed to step 4 with no thread setting at all.
        let (b1, b1Out) = try Self.train(["--set", "output.name=b", "--set", "training.max_steps=2"], in: work,
                                         environment: ["INKWELL_THREADS": "2"])
        try #require(b1 == 0, "\(b1Out)")
        #expect(try Self.recordedThreads(work, "b") == 2)
        // The same state, kept for the two resumes below.
        let copy = try temporaryDirectory().appendingPathComponent("work")
        try FileManager.default.copyItem(at: work, to: copy)
        let ranked = try temporaryDirectory().appendingPathComponent("work")
        try FileManager.default.copyItem(at: work, to: ranked)

        let resume = ["--set", "output.name=b", "--set", "training.max_steps=4", "--resume"]
        let (b2, b2Out) = try Self.train(resume, in: work)
        try #require(b2 == 0, "\(b2Out)")
        #expect(b2Out.contains("CPU threads: 2, from the run's state (an exact resume needs the count the run started with)"), "\(b2Out)")
        #expect(!b2Out.contains("warning"), "\(b2Out)")
        #expect(try Self.recordedThreads(work, "b") == 2)
        #expect(try KillHarness.difference(Self.lora(work, "b"), Self.lora(work, "a")) == nil)

        // A rank of `--nproc` gets OMP_NUM_THREADS from the launcher, marked as its share: the recorded count replaces it
        // as it replaces the automatic one (here the wrong count, 1, is certain, whatever the machine's load).
        let (r, rOut) = try Self.train(resume, in: ranked, environment: ["OMP_NUM_THREADS": "1", CPUPacing.launcherVariable: "1"])
        try #require(r == 0, "\(rOut)")
        #expect(rOut.contains("CPU threads: 2, from the run's state"), "\(rOut)")
        #expect(try Self.recordedThreads(ranked, "b") == 2)
        #expect(try KillHarness.difference(Self.lora(ranked, "b"), Self.lora(work, "a")) == nil)

        // The user's --threads 1 wins, with the warning; the state then records 1, and the LoRA is not A's.
        let (c, cOut) = try Self.train(resume + ["--threads", "1"], in: copy)
        try #require(c == 0, "\(cOut)")
        #expect(cOut.contains("warning: CPU threads: 1 (--threads), but the run trained with 2"), "\(cOut)")
        #expect(cOut.contains("differ from an uninterrupted run's in the last bits; leave --threads out to resume exactly"), "\(cOut)")
        #expect(try Self.recordedThreads(copy, "b") == 1)
        #expect(try KillHarness.difference(Self.lora(copy, "b"), Self.lora(work, "a")) != nil)
    }
}
