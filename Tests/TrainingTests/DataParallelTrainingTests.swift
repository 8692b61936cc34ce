// Data-parallel training as a user runs it: the real `inkwell` binary (the debug build) on 2 ranks with Gloo on
// this CPU, started by `--nproc 2` or, as torchrun would, by setting each rank's environment. The tiny SD1.x
// fixture model on 7 prepared 64 px images; a few steps each, so the suite takes tens of seconds per run.
import Foundation
import RunFiles
import Testing
import TestSupport
import Torch
@testable import Training

@Suite(.serialized) struct DataParallelTrainingTests {
    static let binary = TrainCommandStopTests.binary

    /// A prepared dataset (7 training images, 1 validation) and a config writer for it.
    struct Setup {
        let dir: URL

        init() throws {
            #expect(FileManager.default.isExecutableFile(atPath: DataParallelTrainingTests.binary.path), "build first: swift build --build-tests")
            dir = try temporaryDirectory()
            let raw = dir.appendingPathComponent("raw")
            _ = try SyntheticLineArt.write(try SyntheticLineArt.make(count: 8, size: 64, seed: 3), to: raw)
            let (status, output) = try TrainCommandStopTests.inkwell(["prepare", "--input", raw.path, "--output",
                                                                      dir.appendingPathComponent("data").path,
                                                                      "--name", "ds", "--resolution", "64"])
            try #require(status == 0, "\(output)")
        }

        /// The sections train.toml and pipeline.toml share: `steps` steps with per-rank `batch`, flips, a noise offset
        /// and accumulation over 2 micro-batches (so each step draws several kinds of randomness, and 7 images make
        /// short global batches); `data`, the [data] section's lines. A LoRA learning rate (1e-4): AdamW's near-sign
        /// updates turn float rounding into differences proportional to it, and at 1e-2 one process alone differs by
        /// 6e-5 between 1 and 2 threads, so 1e-6 could not be asked there. The sample prompt is for a pipeline's compare.
        func trainingSections(steps: Int, batch: Int, data: String) throws -> String {
            """
            [model]
            path = "\(try Fixtures.url("pipeline", "model").path)"
            device = "cpu"
            [data]
            \(data)
            [training]
            max_steps = \(steps)
            batch_size = \(batch)
            gradient_accumulation = 2
            noise_offset = 0.05
            [optimizer]
            learning_rate = 0.0001
            [schedule]
            name = "constant"
            [validation]
            every = 2
            [samples]
            every = 0
            prompts = ["a ring"]
            seeds = [1]
            steps = 2
            size = 64

            """
        }

        /// train.toml over the prepared dataset, into runs/run.
        func config(steps: Int, batch: Int) throws -> URL {
            let url = dir.appendingPathComponent("train-\(steps)-\(batch).toml")
            let data = """
                dataset = "\(dir.appendingPathComponent("data/ds").path)"
                captions = "vanilla"
                resolution = 64
                flip = true
                """
            try (try trainingSections(steps: steps, batch: batch, data: data) + """
                [output]
                dir = "\(dir.appendingPathComponent("runs").path)"
                name = "run"
                """).write(to: url, atomically: true, encoding: .utf8)
            return url
        }

        func run(_ name: String, in outputDir: String = "runs") -> RunFolder {
            RunFolder(dir.appendingPathComponent(outputDir).appendingPathComponent(name))
        }
    }

    /// Starts `inkwell arguments…` (or `executable arguments…`) with `environment` added, its output going to `log`,
    /// as a shell starts it (shellProcess: signals are sent to these).
    static func start(_ arguments: [String], executable: URL = binary, environment: [String: String] = [:], log: URL) throws -> Process {
        let process = shellProcess(executable, arguments)
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    static func finish(_ process: Process, within seconds: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return false
        }
        return true
    }

    static func text(_ url: URL) -> String { (try? String(contentsOf: url, encoding: .utf8)) ?? "" }

    /// The environment torchrun gives rank `rank` of `world` (rank 0 hosts the store).
    static func rankEnvironment(_ rank: Int, of world: Int, port: Int) -> [String: String] {
        LaunchEnvironment(rank: rank, worldSize: world, localRank: rank, masterAddress: "127.0.0.1", masterPort: port).variables
            .merging(["OMP_NUM_THREADS": "1"]) { $1 }
    }

    /// Waits until the run's log has a row for `step` (or the process ends).
    static func waitForStep(_ step: Int, in run: RunFolder, while process: Process, seconds: TimeInterval = 240) {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline {
            if let rows = try? TrainingLog.read(run.log), rows.contains(where: { $0.step >= step }) { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// Sends `signal` to `process` once `run` has logged step 2, waits for it to end, and returns the state it
    /// saved, which must lie before the run's last step (`steps`).
    static func stop(_ process: Process, with signal: Int32, log: URL, run: RunFolder, steps: Int) throws -> TrainerState {
        waitForStep(2, in: run, while: process)
        try #require(process.isRunning, "the run ended before it could be stopped: \(text(log))")
        kill(process.processIdentifier, signal)
        #expect(finish(process, within: 120), "not stopped: \(text(log))")
        let state = try #require(TrainerState.read(run), "no saved state: \(text(log))")
        #expect(state.step >= 2 && state.step < steps, "stopped at \(state.step): \(text(log))")
        return state
    }

    static func expectSameTraining(_ a: RunFolder, _ b: RunFolder, _ context: String) throws {
        let rowsA = try TrainingLog.read(a.log), rowsB = try TrainingLog.read(b.log)
        #expect(rowsA.map(\.step) == rowsB.map(\.step), "\(context)")
        for (x, y) in zip(rowsA, rowsB) {
            for (u, v, what) in [(x.trainLoss, y.trainLoss, "train loss"), (x.validationLoss, y.validationLoss, "validation loss"),
                                 (x.gradNorm, y.gradNorm, "grad norm")] {
                #expect((u == nil) == (v == nil), "step \(x.step) \(what): \(String(describing: u)) vs \(String(describing: v)) (\(context))")
                if let u, let v { #expect(abs(u - v) <= 1e-6, "step \(x.step) \(what): \(u) vs \(v) (\(context))") }
            }
        }
        let loraA = try Safetensors.load(a.final).tensors, loraB = try Safetensors.load(b.final).tensors
        #expect(loraA.keys.sorted() == loraB.keys.sorted())
        var worst = 0.0
        for (key, t) in loraA {
            let u = try #require(loraB[key])
            worst = max(worst, try (t - u).abs().max().item())
        }
        #expect(worst <= 1e-6, "final LoRA differs by \(worst) (\(context))")
        // The LoRA moved: equal files because nothing trained would prove nothing.
        let up = try #require(loraA.first { $0.key.hasSuffix("lora_up.weight") }?.value)
        #expect(try up.abs().max().item() > 1e-4)
    }

    @Test func twoRanksWithBatchOneTrainAsOneRankWithBatchTwoAndOnlyRankZeroWrites() throws {
        let setup = try Setup()
        // Two ranks as torchrun starts them; rank 1 is pointed at another output folder, which must stay empty.
        let port = try RankLauncher.freePort()
        let config = try setup.config(steps: 4, batch: 1).path
        let ranks = try (0..<2).map { rank in
            try Self.start(["train", "--config", config, "--dist-timeout", "120",
                            "--set", "output.dir=\(setup.dir.appendingPathComponent(rank == 0 ? "runs" : "rank1-runs").path)",
                            "--set", "output.name=two"],
                           environment: Self.rankEnvironment(rank, of: 2, port: port),
                           log: setup.dir.appendingPathComponent("rank\(rank).out"))
        }
        let single = try Self.start(["train", "--config", try setup.config(steps: 4, batch: 2).path, "--set", "output.name=one"],
                                    environment: ["OMP_NUM_THREADS": "1"], log: setup.dir.appendingPathComponent("one.out"))
        for (process, name) in zip(ranks + [single], ["rank0", "rank1", "one"]) {
            let output = Self.text(setup.dir.appendingPathComponent("\(name).out"))
            #expect(Self.finish(process, within: 300), "\(name) did not finish: \(output)")
            #expect(process.terminationStatus == 0, "\(name): \(Self.text(setup.dir.appendingPathComponent("\(name).out")))")
        }
        try Self.expectSameTraining(setup.run("two"), setup.run("one"), "2 ranks × batch 1 vs 1 rank × batch 2")
        let state = try #require(TrainerState.read(setup.run("two")))
        #expect(state.worldSize == 2 && state.step == 4)
        #expect(!FileManager.default.fileExists(atPath: setup.dir.appendingPathComponent("rank1-runs").path),
                "rank 1 wrote files: \(Self.text(setup.dir.appendingPathComponent("rank1.out")))")
        #expect(!Self.text(setup.dir.appendingPathComponent("rank1.out")).contains("validation loss"), "rank 1 reports nothing")
    }

    @Test func resumeAfterCtrlCToTheLauncherEqualsTheUninterruptedRun() throws {
        let setup = try Setup()
        let config = try setup.config(steps: 6, batch: 1).path
        let full = try Self.start(["train", "--config", config, "--nproc", "2", "--set", "output.name=full"],
                                  log: setup.dir.appendingPathComponent("full.out"))
        #expect(Self.finish(full, within: 300) && full.terminationStatus == 0, "\(Self.text(setup.dir.appendingPathComponent("full.out")))")

        let cutLog = setup.dir.appendingPathComponent("cut.out")
        let cut = try Self.start(["train", "--config", config, "--nproc", "2", "--set", "output.name=cut"], log: cutLog)
        let stopped = try Self.stop(cut, with: SIGINT, log: cutLog, run: setup.run("cut"), steps: 6)
        #expect(cut.terminationStatus == 0, "\(Self.text(cutLog))")
        #expect(Self.text(cutLog).contains("--resume --nproc 2"), "\(Self.text(cutLog))")

        // One rank cannot continue what two saved: refused before anything loads, with the reason.
        let (refusedStatus, refused) = try TrainCommandStopTests.inkwell(["train", "--config", config, "--set", "output.name=cut", "--resume"])
        #expect(refusedStatus != 0)
        #expect(refused.contains("world size (ranks) 2 → 1") && refused.contains("resume with 2 ranks (--nproc 2)"), "\(refused)")

        let resumedLog = setup.dir.appendingPathComponent("resumed.out")
        let resumed = try Self.start(["train", "--config", config, "--nproc", "2", "--set", "output.name=cut", "--resume"], log: resumedLog)
        #expect(Self.finish(resumed, within: 300) && resumed.terminationStatus == 0, "\(Self.text(resumedLog))")
        // The ranks' thread count, the launcher's share (cores / 2), is recorded and taken from the state on resume.
        let share = max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
        #expect(stopped.cpuThreads == share)
        #expect(Self.text(resumedLog).contains("CPU threads: \(share), from the run's state"), "\(Self.text(resumedLog))")
        try Self.expectSameTraining(setup.run("cut"), setup.run("full"), "stopped at step \(stopped.step) and resumed vs uninterrupted")
    }

    @Test func aKilledRankMakesTheOtherExitWithAClearErrorWithinTheTimeout() throws {
        let setup = try Setup()
        let port = try RankLauncher.freePort()
        let config = try setup.config(steps: 50, batch: 1).path
        let logs = (0..<2).map { setup.dir.appendingPathComponent("rank\($0).out") }
        let ranks = try (0..<2).map { rank in
            try Self.start(["train", "--config", config, "--dist-timeout", "20"],
                           environment: Self.rankEnvironment(rank, of: 2, port: port), log: logs[rank])
        }
        Self.waitForStep(1, in: setup.run("run"), while: ranks[0])
        try #require(ranks[0].isRunning && ranks[1].isRunning, "\(Self.text(logs[0]))\n\(Self.text(logs[1]))")
        kill(ranks[1].processIdentifier, SIGKILL)
        let killed = Date()
        #expect(Self.finish(ranks[0], within: 60), "rank 0 still running 60 s after rank 1 died")
        let seconds = Date().timeIntervalSince(killed)
        _ = Self.finish(ranks[1], within: 5)
        let output = Self.text(logs[0])
        #expect(ranks[0].terminationStatus != 0, "\(output)")
        #expect(seconds < 20 + 15, "rank 0 took \(seconds) s to notice")
        #expect(output.contains("rank 0 of 2: the all-reduce failed (another rank died or did not answer within 20 s)"), "\(output)")
    }

    @Test func theLauncherStopsTheOtherRanksWhenOneFailsAndNamesIt() throws {
        let setup = try Setup()
        let config = try setup.config(steps: 50, batch: 1).path
        let log = setup.dir.appendingPathComponent("launcher.out")
        let launcher = try Self.start(["train", "--config", config, "--nproc", "2", "--dist-timeout", "20"], log: log)
        Self.waitForStep(1, in: setup.run("run"), while: launcher)
        // The ranks are the launcher's children; kill rank 1 (the second one started).
        let children = try String(contentsOfFile: "/proc/\(launcher.processIdentifier)/task/\(launcher.processIdentifier)/children",
                                  encoding: .utf8).split(separator: " ").compactMap { Int32($0) }.sorted()
        try #require(children.count == 2, "children: \(children); \(Self.text(log))")
        kill(children[1], SIGKILL)
        #expect(Self.finish(launcher, within: 60), "the launcher still runs 60 s after a rank died: \(Self.text(log))")
        let output = Self.text(log)
        #expect(launcher.terminationStatus == 128 + SIGKILL, "\(output)")
        #expect(output.contains("rank 1 of 2 (pid \(children[1])) was killed by Killed (signal 9); stopping the other ranks"), "\(output)")
        #expect(kill(children[0], 0) != 0, "rank 0 outlived the launcher")
    }

    @Test func aOneRankLaunchTrainsExactlyAsThePlainRun() throws {
        // torchrun --nproc-per-node 1: a process group of one, every bucket, loss and stop flag through Gloo.
        let setup = try Setup()
        let config = try setup.config(steps: 4, batch: 2).path
        let launched = try Self.start(["train", "--config", config, "--set", "output.name=launched", "--dist-timeout", "120"],
                                      environment: Self.rankEnvironment(0, of: 1, port: try RankLauncher.freePort()),
                                      log: setup.dir.appendingPathComponent("launched.out"))
        let plain = try Self.start(["train", "--config", config, "--set", "output.name=plain"], environment: ["OMP_NUM_THREADS": "1"],
                                   log: setup.dir.appendingPathComponent("plain.out"))
        for (process, name) in [(launched, "launched"), (plain, "plain")] {
            #expect(Self.finish(process, within: 300) && process.terminationStatus == 0,
                    "\(name): \(Self.text(setup.dir.appendingPathComponent("\(name).out")))")
        }
        let output = Self.text(setup.dir.appendingPathComponent("launched.out"))
        #expect(output.contains("rank 0 of 1: process group (gloo)"), "\(output)")
        try Self.expectSameTraining(setup.run("launched"), setup.run("plain"), "1-rank launch vs plain run")
        // Not merely close: the same bits (an average over one rank is the value itself).
        let a = try Safetensors.load(setup.run("launched").final).tensors, b = try Safetensors.load(setup.run("plain").final).tensors
        for (key, t) in a { #expect(try (t - #require(b[key])).abs().max().item() == 0, "\(key)") }
    }

    /// The real torchrun (torch.distributed.run from the venv's torch: its elastic agent hosts the store and sets
    /// each worker's environment) starting 2 ranks of `inkwell train` as the README says: the same training as one
    /// process with batch 2; Ctrl-C to torchrun (which passes it on to its workers) saves the state, the hint
    /// says to start torchrun again, and that resume ends where the uninterrupted launch did.
    @Test func torchrunStartsTheRanksAsItStartsPython() throws {
        let setup = try Setup()
        let torchrun = Fixtures.packageRoot.appendingPathComponent(".venv/bin/torchrun")
        try #require(FileManager.default.isExecutableFile(atPath: torchrun.path), "no torchrun in .venv: run scripts/bootstrap.sh")
        let config = try setup.config(steps: 8, batch: 1).path
        func launch(_ name: String, resume: Bool = false) throws -> (Process, URL) {
            let log = setup.dir.appendingPathComponent("\(name)\(resume ? "-resumed" : "").out")
            let process = try Self.start(["--nproc-per-node", "2", "--master-port", String(try RankLauncher.freePort()), "--no-python",
                                          Self.binary.path, "train", "--config", config, "--set", "output.name=\(name)",
                                          "--dist-timeout", "120"] + (resume ? ["--resume"] : []),
                                         executable: torchrun, log: log)
            return (process, log)
        }
        let (full, fullLog) = try launch("full")
        let single = try Self.start(["train", "--config", try setup.config(steps: 8, batch: 2).path, "--set", "output.name=one"],
                                    environment: ["OMP_NUM_THREADS": "1"], log: setup.dir.appendingPathComponent("one.out"))
        #expect(Self.finish(full, within: 300) && full.terminationStatus == 0, "\(Self.text(fullLog))")
        #expect(Self.finish(single, within: 300) && single.terminationStatus == 0, "\(Self.text(setup.dir.appendingPathComponent("one.out")))")
        #expect(Self.text(fullLog).contains("rank 0 of 2: process group (gloo)"), "\(Self.text(fullLog))")
        let state = try #require(TrainerState.read(setup.run("full")), "\(Self.text(fullLog))")
        #expect(state.worldSize == 2 && state.step == 8)
        try Self.expectSameTraining(setup.run("full"), setup.run("one"), "torchrun, 2 ranks × batch 1 vs 1 rank × batch 2")

        let (cut, cutLog) = try launch("cut")
        let stopped = try Self.stop(cut, with: SIGINT, log: cutLog, run: setup.run("cut"), steps: 8)
        #expect(stopped.worldSize == 2)
        let output = Self.text(cutLog)
        #expect(output.contains("to continue: torchrun … --no-python inkwell train --config"), "\(output)")
        #expect(output.contains("--resume, with the same 2 ranks"), "\(output)")
        // Rank 0 speaks for both: the stop is said once, though torchrun passed the signal to each worker.
        #expect(output.components(separatedBy: "stopping at the next safe point").count == 2, "\(output)")
        let (resumed, resumedLog) = try launch("cut", resume: true)
        #expect(Self.finish(resumed, within: 300) && resumed.terminationStatus == 0, "\(Self.text(resumedLog))")
        try Self.expectSameTraining(setup.run("cut"), setup.run("full"), "torchrun stopped at step \(stopped.step) and resumed vs uninterrupted")
    }

    /// `inkwell pipeline --nproc 2`: prepare, caption and compare run once in the pipeline's process, each run's
    /// training on 2 ranks through the launcher, so it trains as one process with twice the batch would. SIGTERM to
    /// the pipeline alone (a scheduler's stop, no terminal) reaches the ranks through the pipeline's own signal
    /// handling: they save the state, the pipeline exits 130, and the same command again ends as the uninterrupted one.
    @Test func thePipelineTrainsEachRunOnItsRanks() throws {
        let setup = try Setup()
        let runs = setup.dir.appendingPathComponent("runs")
        func pipeline(_ name: String) throws -> URL {
            let url = setup.dir.appendingPathComponent("\(name).toml")
            try ("""
                [pipeline]
                name = "\(name)"
                input = "\(setup.dir.appendingPathComponent("raw").path)"
                datasets = "\(setup.dir.appendingPathComponent("pdata").path)"
                resolution = 64
                variants = ["vanilla"]
                compare_scales = [1.0]

                """ + (try setup.trainingSections(steps: 8, batch: 1, data: "flip = true")) + """
                [output]
                dir = "\(runs.path)"
                """).write(to: url, atomically: true, encoding: .utf8)
            return url
        }
        func start(_ name: String, _ log: String) throws -> (Process, URL) {
            let url = setup.dir.appendingPathComponent(log)
            return (try Self.start(["pipeline", "--config", try pipeline(name).path, "--nproc", "2", "--dist-timeout", "120"], log: url), url)
        }
        let (full, fullLog) = try start("p", "p.out")
        #expect(Self.finish(full, within: 600) && full.terminationStatus == 0, "\(Self.text(fullLog))")
        #expect(Self.text(fullLog).contains("rank 0 of 2: process group (gloo)"), "\(Self.text(fullLog))")
        let run = RunFolder(runs.appendingPathComponent("p/vanilla"))
        let state = try #require(TrainerState.read(run), "\(Self.text(fullLog))")
        #expect(state.worldSize == 2 && state.step == 8)
        #expect(FileManager.default.fileExists(atPath: runs.appendingPathComponent("p/compare/grid.png").path), "\(Self.text(fullLog))")

        // The same run in one process with batch 2, from the config the pipeline wrote for its ranks.
        let (status, single) = try TrainCommandStopTests.inkwell(["train", "--config", run.config.path, "--set", "training.batch_size=2",
                                                                  "--set", "output.name=one", "--threads", "1"])
        #expect(status == 0, "\(single)")
        try Self.expectSameTraining(run, RunFolder(runs.appendingPathComponent("p/one")), "pipeline on 2 ranks × batch 1 vs train, 1 rank × batch 2")

        let cutRun = RunFolder(runs.appendingPathComponent("q/vanilla"))
        let (cut, cutLog) = try start("q", "q.out")
        let stopped = try Self.stop(cut, with: SIGTERM, log: cutLog, run: cutRun, steps: 8)
        #expect(cut.terminationStatus == 130, "\(Self.text(cutLog))")
        #expect(Self.text(cutLog).contains("stopped during train vanilla"), "\(Self.text(cutLog))")
        let (again, againLog) = try start("q", "q-again.out")
        #expect(Self.finish(again, within: 600) && again.terminationStatus == 0, "\(Self.text(againLog))")
        // Read again: its LoRA name comes from the config.toml the pipeline has written since.
        try Self.expectSameTraining(RunFolder(cutRun.root), run, "pipeline stopped at step \(stopped.step) and run again vs uninterrupted")
    }

    @Test func ncclForCPURanksIsRefusedBeforeAnyRankStarts() throws {
        let setup = try Setup()
        let config = try setup.config(steps: 2, batch: 1).path
        let started = Date()
        let (status, output) = try TrainCommandStopTests.inkwell(["train", "--config", config, "--nproc", "2", "--dist-backend", "nccl"])
        #expect(status != 0)
        #expect(output.contains("--dist-backend nccl needs CUDA GPUs, but model.device is cpu: use --dist-backend gloo"), "\(output)")
        #expect(!output.contains("starting 2 data-parallel ranks"), "\(output)")
        #expect(Date().timeIntervalSince(started) < 60)
        // Without ranks the flag would do nothing: said, not ignored.
        let (alone, aloneOutput) = try TrainCommandStopTests.inkwell(["train", "--config", config, "--dist-backend", "gloo"])
        #expect(alone != 0 && aloneOutput.contains("--dist-backend gloo is for data-parallel ranks: add --nproc N"), "\(aloneOutput)")
    }

    @Test func killingTheLauncherStopsItsRanksAndTheyKeepTheirState() throws {
        // SIGKILL gives the launcher no chance to pass anything on: the ranks learn it from the kernel
        // (PR_SET_PDEATHSIG → SIGTERM) and stop as after Ctrl-C, rank 0 saving the state.
        let setup = try Setup()
        let config = try setup.config(steps: 200, batch: 1).path
        let log = setup.dir.appendingPathComponent("launcher.out")
        let launcher = try Self.start(["train", "--config", config, "--nproc", "2", "--dist-timeout", "60"], log: log)
        Self.waitForStep(1, in: setup.run("run"), while: launcher)
        let children = try String(contentsOfFile: "/proc/\(launcher.processIdentifier)/task/\(launcher.processIdentifier)/children",
                                  encoding: .utf8).split(separator: " ").compactMap { Int32($0) }
        try #require(children.count == 2, "children: \(children); \(Self.text(log))")
        kill(launcher.processIdentifier, SIGKILL)
        launcher.waitUntilExit()
        let killed = Date()
        // Reparented, an exited rank is a zombie until its new parent reaps it (or gone).
        func running(_ pid: Int32) -> Bool {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            return !stat[close...].hasPrefix(") Z")
        }
        while children.contains(where: running), Date().timeIntervalSince(killed) < 120 {
            Thread.sleep(forTimeInterval: 0.1)
        }
        let alive = children.filter(running)
        alive.forEach { kill($0, SIGKILL) }
        #expect(alive.isEmpty, "ranks \(alive) outlived their launcher by 120 s")
        let state = try #require(TrainerState.read(setup.run("run")), "no state saved: \(Self.text(log))")
        #expect(state.step >= 1 && state.step < 200 && state.worldSize == 2, "state at step \(state.step), world size \(String(describing: state.worldSize)): \(Self.text(log))")
    }
}
