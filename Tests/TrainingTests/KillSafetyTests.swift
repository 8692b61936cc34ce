// `inkwell prepare`, `caption`, `train` and `pipeline` SIGKILLed at seeded random moments (random delays, and
// halfway through random writes: checkpoints, state, latent cache, captions, manifests, samples), each rerun (train
// with --resume) going on from what the killed one left: after every kill each file loads and every finished file
// equals an uninterrupted run's; at the end the whole folder does, the LoRAs bit for bit (see KillHarness).
// On tiny models so that all four take about a minute; INKWELL_KILL_SOAK=N kills N times as often.
import Foundation
import Imaging
import Testing
import TestSupport
@testable import Training

@Suite(.serialized) struct KillSafetyTests {
    static let model = Fixtures.root.appendingPathComponent("pipeline/model")
    static let blip = Fixtures.root.appendingPathComponent("blip/blip_tiny_saved")
    static let tokenizer = Fixtures.root.appendingPathComponent("clip_tokenizer/sd15")
    static let prepare = ["prepare", "--input", "raw", "--output", "data", "--name", "ds", "--resolution", "64"]

    /// Raw images only (no caption files beside them, so that BLIP captions them).
    static func writeRaw(_ work: URL, count: Int = 8) throws {
        let raw = work.appendingPathComponent("raw")
        try FileManager.default.createDirectory(at: raw, withIntermediateDirectories: true)
        for (i, item) in try SyntheticLineArt.make(count: count, size: 96, seed: 5).enumerated() {
            try item.image.writePNG(to: raw.appendingPathComponent(String(format: "art%02d.png", i)))
        }
    }

    /// train.toml: `training` over the prepared dataset, into runs/r.
    static func writeTrainConfig(_ work: URL) throws {
        try (Self.training + """

            [data]
            dataset = "data/ds"
            captions = "vanilla"
            resolution = 64
            [output]
            dir = "runs"
            name = "r"
            """).write(to: work.appendingPathComponent("train.toml"), atomically: true, encoding: .utf8)
    }

    static func prepared(_ work: URL) throws {
        try writeRaw(work)
        let process = Process()
        process.executableURL = KillHarness.binary
        process.arguments = prepare
        process.currentDirectoryURL = work
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw HarnessError("prepare failed") }
    }

    /// The training sections both `train` and `pipeline` use: a few steps, a validation and checkpoint every other
    /// step, a sample image, so that kills land in checkpoint, state, sample and log writes.
    static let training = """
        [model]
        path = "\(model.path)"
        device = "cpu"
        [training]
        max_steps = 4
        batch_size = 1
        [validation]
        every = 2
        [samples]
        every = 4
        prompts = ["a ring"]
        seeds = [1]
        steps = 2
        size = 64
        """

    @Test func prepareKilledAnywhereEndsAsAnUninterruptedRun() throws {
        var harness = try KillHarness(Self.prepare, mutable: ["manifest.json"]) { try Self.writeRaw($0, count: 12) }
        let result = try harness.killRepeatedly(Self.prepare, count: 6)
        #expect(result.kills > 0 && result.insideWrites > 0, "\(result)")
    }

    @Test func captionKilledAnywhereEndsAsAnUninterruptedRun() throws {
        let caption = ["caption", "--dataset", "data/ds", "--blip", Self.blip.path, "--tokenizer", Self.tokenizer.path, "--beams", "1"]
        var harness = try KillHarness(caption, mutable: ["captions.json"]) { try Self.prepared($0) }
        let result = try harness.killRepeatedly(caption, count: 3)
        #expect(result.kills > 0 && result.insideWrites > 0, "\(result)")
    }

    @Test func trainKilledAnywhereResumesToTheSameLoRA() throws {
        let train = ["train", "--config", "train.toml", "--resume"]
        var harness = try KillHarness(train, mutable: ["state", "log.csv"], unchecked: ["status.json", "trainer.json"]) { work in
            try Self.prepared(work)
            try Self.writeTrainConfig(work)
        }
        let result = try harness.killRepeatedly(train, count: 5)
        #expect(result.kills > 0 && result.insideWrites > 0, "\(result)")
    }

    @Test func pipelineKilledAnywhereEndsAsAnUninterruptedRun() throws {
        let pipeline = ["pipeline", "--config", "pipeline.toml"]
        var harness = try KillHarness(pipeline, mutable: ["state", "log.csv", "manifest.json", "captions.json"],
                                      unchecked: ["status.json", "trainer.json", "summary.json", "summary.md"]) { work in
            try Self.writeRaw(work)
            try ("""
                [pipeline]
                name = "p"
                input = "raw"
                datasets = "data"
                resolution = 64
                variants = ["vanilla", "blip"]
                blip = "\(Self.blip.path)"
                blip_beams = 1
                compare_scales = [1.0]

                """ + Self.training + """

                [output]
                dir = "runs"
                """).write(to: work.appendingPathComponent("pipeline.toml"), atomically: true, encoding: .utf8)
        }
        let result = try harness.killRepeatedly(pipeline, count: 2)
        #expect(result.kills > 0, "\(result)")
    }
}
