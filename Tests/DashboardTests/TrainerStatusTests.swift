// The dashboard's run status against the trainer's own status.json: tiny real training runs (the SD1.x-
// architecture fixture model, 32 px synthetic line art) write it, and the dashboard reads it back as the
// page gets it: running with its rate and ETA, finished, stopped by a signal, failed with the error, and a
// "running" left behind by a killed trainer shown as not responding.
import Foundation
import RunFiles
import StableDiffusion
import Testing
import TestSupport
@testable import Dashboard
@testable import Training

/// A trainer writing the run `name` into `runs` (a fixture's runs/ folder): 4 steps, validation every 2,
/// one 32 px sample every 2 steps (so step 0, the base model, too).
func tinyTrainer(_ runs: URL, name: String, configure: (inout TrainingConfig) -> Void = { _ in }) throws -> LoRATrainer {
    let model = try Fixtures.url("pipeline", "model")
    let data = runs.deletingLastPathComponent().appendingPathComponent("data-\(name)")
    let items = try SyntheticLineArt.make(count: 6, size: 32, seed: 5)
    let examples = try SyntheticLineArt.write(items, to: data.appendingPathComponent("images")).enumerated().map { i, url in
        TrainingExample(name: url.lastPathComponent, image: url, caption: items[i].caption, isValidation: i >= 5)
    }
    var config = TrainingConfig()
    config.model.path = model.path
    config.data.dataset = data.path
    config.data.resolution = 32
    config.lora.rank = 4
    config.lora.alpha = 4
    config.training.maxSteps = 4
    config.training.batchSize = 2
    config.validation.every = 2
    config.samples.every = 2
    config.samples.steps = 2
    config.samples.size = 32
    config.samples.seeds = [1]
    config.samples.prompts = Array(config.samples.prompts.prefix(1))
    config.output.dir = runs.path
    config.output.name = name
    configure(&config)
    let pipeline = try StableDiffusionPipeline.load(.diffusersFolder(model), device: .cpu, dtype: .float32)
    return try LoRATrainer(config: config, examples: examples, pipeline: pipeline, modelIdentity: "tiny-fixture",
                           cacheDirectory: data.appendingPathComponent("cache"))
}

/// The id of a process that has exited (and been reaped), so `kill(pid, 0)` finds nothing.
func exitedProcessID() throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/true")
    try process.run()
    process.waitUntilExit()
    return process.processIdentifier
}

struct Boom: Error, CustomStringConvertible {
    var description: String { "the disk caught fire" }
}

@Suite(.serialized) struct TrainerStatusTests {
    @Test func aRealRunReadsAsRunningThenFinishedAndAKilledOneAsNotResponding() async throws {
        let fixture = try RunsFixture()
        defer { fixture.remove() }
        let trainer = try tinyTrainer(fixture.root, name: "live")
        trainer.statusInterval = 0
        let folder = fixture.folder("live")
        var running: Data?
        let summary = try trainer.run(resume: false, events: { event in
            // What a dashboard polling at that moment would read: the status the trainer wrote after step 2.
            if case .step(2, _, _, _, _) = event { running = FileManager.default.contents(atPath: folder.status.path) }
        })
        #expect(!summary.interrupted)
        // Every step beat (interval 0): start, 4 steps, the evaluations' beats, the end.
        #expect((trainer.heartbeat?.writes ?? 0) >= 6)

        let data = DashboardData(root: try RunsRoot(fixture.root))
        let finished = try await data.run("live").summary
        #expect(finished.status == .finished && !finished.statusGuessed)
        let done = try #require(finished.trainer)
        #expect(done.state == "finished" && done.step == 4 && done.totalSteps == 4)
        #expect(done.etaSeconds == nil && done.error == nil && done.signal == nil && done.unresponsive == nil)
        #expect(done.pid == ProcessInfo.processInfo.processIdentifier && done.host == TrainerStatus.currentHost)
        #expect((done.elapsedSeconds ?? 0) > 0 && (done.stepsPerSecond ?? 0) > 0)
        #expect(done.heartbeat >= done.startedAt)

        // The file as it was during step 2: training, with the step, rate and ETA the page shows.
        let snapshot = try #require(running)
        try snapshot.write(to: folder.status)
        let live = try await data.run("live").summary
        #expect(live.status == .training)
        let beat = try #require(live.trainer)
        #expect(beat.state == "running" && beat.step == 2 && beat.totalSteps == 4)
        let rate = try #require(beat.stepsPerSecond)
        #expect(rate > 0 && beat.etaSeconds.map { abs($0 - 2 / rate) < 1e-6 } == true)
        let log = try await data.log("live", since: 3)
        #expect(log.status == .training && log.trainer == beat)

        // The trainer was killed right then: a minute later its heartbeat is stale.
        var later = data
        later.now = { Date().addingTimeInterval(61) }
        let stale = try await later.run("live").summary
        #expect(stale.status == .notResponding && stale.trainer?.unresponsive == .staleHeartbeat)
        #expect(stale.trainer?.heartbeat == beat.heartbeat)
        #expect(await later.index().runs.first?.status == .notResponding)

        // Its process gone on this host: not responding at once. On another host the pid says nothing.
        var gone = try TrainerStatus(decoding: snapshot)
        gone.pid = try exitedProcessID()
        try gone.write(folder)
        let dead = try await data.run("live").summary
        #expect(dead.status == .notResponding && dead.trainer?.unresponsive == .processGone)
        gone.host = TrainerStatus.currentHost + "-elsewhere"
        try gone.write(folder)
        #expect(try await data.run("live").summary.status == .training)

        // A run from before status.json: the log's age decides, labelled as a guess.
        try FileManager.default.removeItem(at: folder.status)
        let old = try await data.run("live").summary
        #expect(old.status == .finished && old.trainer == nil)
        try FileManager.default.removeItem(at: folder.final)
        let guessed = try await data.run("live").summary
        #expect(guessed.status == .training && guessed.statusGuessed)
        #expect(try await later.run("live").summary.status == .training)
        var muchLater = data
        muchLater.now = { Date().addingTimeInterval(600) }
        #expect(try await muchLater.run("live").summary.status == .stopped)
    }

    @Test func stoppedBySignalAndFailedWithTheError() async throws {
        let fixture = try RunsFixture()
        defer { fixture.remove() }
        let data = DashboardData(root: try RunsRoot(fixture.root))

        // Interrupted (as SIGTERM asks) after 2 steps; the default interval writes only the start and the end.
        let stopping = try tinyTrainer(fixture.root, name: "stopped")
        stopping.statusInterval = 3600
        var steps = 0
        let partial = try stopping.run(resume: false, shouldStop: { steps >= 2 }, stopSignal: { "SIGTERM" },
                                       events: { if case .step = $0 { steps += 1 } })
        #expect(partial.interrupted && partial.steps == 2)
        #expect(stopping.heartbeat?.writes == 2)
        let stopped = try await data.run("stopped").summary
        #expect(stopped.status == .stopped && !stopped.statusGuessed)
        #expect(stopped.trainer?.state == "stopped" && stopped.trainer?.signal == "SIGTERM" && stopped.trainer?.step == 2)
        #expect(stopped.trainer?.etaSeconds == nil)

        // Resumed to the end: the same file now says finished.
        let resumed = try tinyTrainer(fixture.root, name: "stopped")
        _ = try resumed.run(resume: true)
        let finished = try await data.run("stopped").summary
        #expect(finished.status == .finished && finished.trainer?.step == 4 && finished.trainer?.signal == nil)

        // An error in step 2: the status says failed, with the error, before the error reaches the caller.
        let failing = try tinyTrainer(fixture.root, name: "failed")
        var batches = 0
        failing.faultInjection = { point in
            if point == .microBatch { batches += 1; if batches > 1 { throw Boom() } }
        }
        #expect(throws: Boom.self) { try failing.run(resume: false) }
        let failed = try await data.run("failed").summary
        #expect(failed.status == .failed)
        #expect(failed.trainer?.state == "failed" && failed.trainer?.error == "the disk caught fire" && failed.trainer?.step == 1)
        let index = await data.index()
        #expect(index.runs.map(\.id) == ["failed", "stopped"])
        #expect(index.runs.map(\.status) == [.failed, .finished])
    }

    /// The trainer's step-0 samples are the base model's (adapters off, B zero): the compare view's base column.
    @Test func compareShowsARealRunsStepZeroAsTheBaseModel() async throws {
        let fixture = try RunsFixture()
        defer { fixture.remove() }
        _ = try tinyTrainer(fixture.root, name: "a").run(resume: false)
        let data = DashboardData(root: try RunsRoot(fixture.root))
        let compare = try await data.compare(["a"])
        #expect(compare.steps == [2, 4] && compare.commonSteps == [2, 4] && compare.pick == .step(4))
        #expect(compare.base.count == 1 && compare.base.first?.run == "a")
        #expect(compare.base.first?.samples.map(\.path) == ["a/samples/step_000000/p0_s1.png"])
        #expect(compare.runs.first?.samples.map(\.step) == [4])
        #expect(try await data.compare(["a"], pick: .step(2)).runs.first?.samples.map(\.path) == ["a/samples/step_000002/p0_s1.png"])
    }
}
