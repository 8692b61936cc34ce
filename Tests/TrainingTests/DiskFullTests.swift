// `inkwell train` (the real binary) writing its run onto a disk that fills up halfway: a small tmpfs mounted for
// the test where the machine allows it (root, as here and in CI), else a full disk injected into Inkwell's writes
// (INKWELL_FAULT_DISK_FULL_AFTER, Sources/AtomicFile/WriteFaults.swift); the test prints which ran. The run
// fails with a "disk full" error naming the file, leaves no temporary file, every checkpoint and the saved state
// load and equal an uninterrupted run's, and `--resume` after space is freed ends with the same LoRA bit for bit.
import Foundation
import RunFiles
import Testing
import TestSupport
import Torch
@testable import Training

@Suite struct DiskFullTests {
    /// `mount`/`umount` as a user runs them: whether it worked.
    static func system(_ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    /// Bytes the files under `folder` take on a tmpfs (whole 4 KiB pages).
    static func pages(_ folder: URL) -> Int {
        KillHarness.files(in: folder).reduce(0) { total, file in
            let size = (try? FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(file).path)[.size] as? Int) ?? 0
            return total + (size + 4095) / 4096 * 4096
        }
    }

    @Test func aFullDiskIsNamedAndResumeAfterFreeingSpaceEndsWithTheSameLoRA() throws {
        let harness = try KillHarness(["train", "--config", "train.toml"], mutable: []) { work in
            try KillSafetyTests.prepared(work)
            try KillSafetyTests.writeTrainConfig(work)
        }
        let fm = FileManager.default
        // The latent cache stays on the real disk (kept from a first run); the run folder gets half the room it needs.
        try fm.copyItem(at: harness.reference.appendingPathComponent("data/ds/cache"), to: harness.work.appendingPathComponent("data/ds/cache"))
        let runs = harness.work.appendingPathComponent("runs")
        try fm.createDirectory(at: runs, withIntermediateDirectories: true)
        let needed = Self.pages(harness.reference.appendingPathComponent("runs"))
        let room = needed / 2 / 4096 * 4096
        let filler = runs.appendingPathComponent("filler")
        // Twice the finished run's size: a state save holds the new state beside the old one until its rename.
        let size = 2 * needed
        let mounted = Self.system(["mount", "-t", "tmpfs", "-o", "size=\(size)", "tmpfs", runs.path])
        defer { if mounted { _ = Self.system(["umount", "-l", runs.path]) } }
        var environment: [String: String] = [:]
        if mounted {
            try Data(count: size - room).write(to: filler)
            print("DiskFullTests: a \(size)-byte tmpfs with \(room) bytes free")
        } else {
            environment["INKWELL_FAULT_DISK_FULL_AFTER"] = String(room)
            print("DiskFullTests: mount refused; a full disk injected after \(room) bytes (INKWELL_FAULT_DISK_FULL_AFTER)")
        }

        let full = try harness.run(["train", "--config", "train.toml"], environment: environment)
        guard case .exited(let status, let output) = full else { throw HarnessError("the run was killed: \(full)") }
        #expect(status != 0, "the run did not fail on a full disk: \(output)")
        #expect(output.contains("disk full"), "\(output)")
        #expect(output.contains(runs.appendingPathComponent("r").path), "the error names no file of the run: \(output)")
        let temporaries = KillHarness.files(in: runs, temporaries: true).filter(KillHarness.isTemporary)
        #expect(temporaries.isEmpty, "\(temporaries)")
        // What was written before the disk filled is whole: checkpoints and samples equal the uninterrupted run's,
        // and the state (if one was saved) loads.
        try harness.checkIntact(after: "the full disk")
        let run = RunFolder(runs.appendingPathComponent("r"))
        if fm.fileExists(atPath: run.state.path) {
            #expect(TrainerState.read(run) != nil)
            for name in ["lora", "optimizer", "rng"] { _ = try Safetensors.load(run.state.appendingPathComponent("\(name).safetensors")) }
        }
        #expect(!run.isFinished)

        if mounted { try fm.removeItem(at: filler) }
        let resumed = try harness.run(["train", "--config", "train.toml", "--resume"])
        guard case .exited(0, _) = resumed else { throw HarnessError("--resume after freeing space failed: \(resumed)") }
        for checkpoint in [run.final, run.best] {
            let file = "runs/r/lora/" + checkpoint.lastPathComponent
            #expect(try KillHarness.difference(harness.work.appendingPathComponent(file), harness.reference.appendingPathComponent(file)) == nil, "\(file)")
        }
        #expect(try String(contentsOf: run.log, encoding: .utf8)
            == String(contentsOf: harness.reference.appendingPathComponent("runs/r/log.csv"), encoding: .utf8))
    }
}
