// A synthetic runs/ folder written by the trainer's own writers (RunFiles): log.csv through TrainingLog,
// config.toml from a TrainingConfig, state/trainer.json from a TrainerState, lora/*.safetensors through
// Safetensors, sample PNGs carrying the A1111 `parameters` text GenerationInfo writes, and the pipeline's
// summary.json through PipelineSummaryFile; so renaming a field in the trainer breaks these tests. The
// samples are drawn as simple line art so that screenshots look like what the dashboard is for.
// Everything lives in a fresh temporary folder whose parent also holds a "secret" file that no request
// may reach.
import Foundation
import Imaging
import RunFiles
import StableDiffusion
import Torch

struct RunsFixture {
    static let header = TrainingLogRow.header
    /// "minimal line-art tattoo of a rose…" in the PNGs; the config lists other words, so a test can
    /// tell which source the page's prompt text came from.
    static let prompts = ["minimal line-art tattoo of a rose, stencil, high-contrast",
                          "minimal line-art tattoo of a swallow, stencil, high-contrast"]
    static let secret = "SECRET-OUTSIDE-RUNS"

    let base: URL
    var root: URL { base.appendingPathComponent("runs") }

    init() throws {
        base = FileManager.default.temporaryDirectory.appendingPathComponent("inkwell-dashboard-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try Self.secret.write(to: base.appendingPathComponent("secret.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: base.appendingPathComponent("outside"), withIntermediateDirectories: true)
        try Self.secret.write(to: base.appendingPathComponent("outside/secret.txt"), atomically: true, encoding: .utf8)
        try Self.lineArt(step: 40, prompt: 0).writePNG(to: base.appendingPathComponent("secret.png"))
    }

    func remove() { try? FileManager.default.removeItem(at: base) }

    func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    func write(_ text: String, to relative: String) throws {
        let url = self.url(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    func folder(_ id: String) -> RunFolder { RunFolder(url(id)) }

    /// Appends a row to a run's log as the trainer does while it trains.
    func append(_ row: TrainingLogRow, to id: String) throws {
        try TrainingLog(appendingTo: folder(id).log).append(row)
    }

    /// Replaces a run's log with `rows` (what a resumed run leaves: a new, shorter file).
    func writeLog(_ rows: [TrainingLogRow], to id: String) throws {
        let log = try TrainingLog(url: folder(id).log)
        for row in rows { try log.append(row) }
    }

    func writeConfig(_ config: TrainingConfig, to id: String) throws {
        try write(try config.toml(), to: "\(id)/config.toml")
    }

    /// A real (tiny) safetensors file where the trainer writes a LoRA.
    func writeCheckpoint(_ name: CheckpointName, in id: String, value: Float) throws {
        let url = folder(id).checkpoint(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Safetensors.save(["lora_unet_down.lora_down.weight": try Tensor([value, value])], to: url)
    }

    // MARK: Runs

    /// A log row as the trainer logs it.
    static func row(step: Int, train: Double?, smoothed: Double?, val: Double? = nil, clip: Double? = nil, lr: Double) -> TrainingLogRow {
        TrainingLogRow(step: step, epoch: step / 20, trainLoss: train, smoothedLoss: smoothed, validationLoss: val, clipScore: clip,
                       learningRate: lr, gradNorm: train.map { _ in 0.5 }, nonFinite: 0)
    }

    /// Validation loss of the synthetic runs: a U-shaped curve whose bottom is at `bestAt`.
    static func valLoss(step: Int, bestAt: Int, offset: Double) -> Double {
        let d = Double(step - bestAt) / 40
        return 0.11 + offset + 0.02 * d * d
    }

    /// The page's rendering of `valLoss` (five significant digits, as `fmt(x, 5)` writes it).
    static func valLossText(step: Int, bestAt: Int, offset: Double) -> String {
        String(format: "%.5g", valLoss(step: step, bestAt: bestAt, offset: offset))
    }

    /// Rows 0...steps: noisy decreasing train loss, its EMA, val loss every 10 steps, CLIP score at sample steps.
    static func rows(steps: Int, bestAt: Int, offset: Double, samplesEvery: Int, maxSteps: Int) -> [TrainingLogRow] {
        var smoothed: Double?
        var out: [TrainingLogRow] = []
        for step in 0...steps {
            let noise = sin(Double(step) * 12.9898 + offset * 100) * 0.04
            let train = step == 0 ? nil : 0.16 * exp(-Double(step) / 30) + 0.09 + noise + offset
            if let t = train { smoothed = smoothed.map { 0.9 * $0 + 0.1 * t } ?? t }
            let val = step % 10 == 0 ? valLoss(step: step, bestAt: bestAt, offset: offset) : nil
            let clip = step % samplesEvery == 0 ? 0.24 + Double(step) / Double(maxSteps) * 0.06 - offset : nil
            let warm = min(1, Double(step) / 5)
            let lr = 1e-4 * warm * 0.5 * (1 + cos(Double.pi * Double(step) / Double(maxSteps)))
            out.append(row(step: step, train: train, smoothed: smoothed, val: val, clip: clip, lr: max(lr, 1e-7)))
        }
        return out
    }

    /// The run's resolved config; its sample prompts differ from the PNGs' ("config prompt zero"), so a test
    /// can tell which source the page's prompt text came from.
    static func config(maxSteps: Int, samplesEvery: Int, captions: CaptionVariant) -> TrainingConfig {
        var config = TrainingConfig()
        config.model.path = "models/sd15"
        config.data.dataset = "data/processed/flash"
        config.data.captions = captions
        config.training.maxSteps = maxSteps
        config.samples.every = samplesEvery
        config.samples.prompts = ["config prompt zero", "config prompt one"]
        config.samples.seeds = [1, 2]
        return config
    }

    /// Writes a run: its log, config, samples every `samplesEvery` steps up to `steps`, and optionally
    /// state/trainer.json with `stateBest`, lora/best and lora/final.
    func run(_ id: String, steps: Int, maxSteps: Int = 40, bestAt: Int, offset: Double = 0, samplesEvery: Int = 10,
             stateBest: Int? = nil, finished: Bool = false, captions: CaptionVariant = .blip) throws {
        try writeConfig(Self.config(maxSteps: maxSteps, samplesEvery: samplesEvery, captions: captions), to: id)
        try writeLog(Self.rows(steps: steps, bestAt: bestAt, offset: offset, samplesEvery: samplesEvery, maxSteps: maxSteps), to: id)
        for step in stride(from: 0, through: steps, by: samplesEvery) {
            for prompt in 0..<Self.prompts.count {
                for seed in [1, 2] { try sample(id, step: step, prompt: prompt, seed: seed, maxSteps: maxSteps) }
            }
            if step > 0 { try writeCheckpoint(.step(step), in: id, value: Float(step)) }
        }
        if let stateBest {
            var state = TrainerState()
            state.step = steps
            state.epoch = 1
            state.position = 3
            state.bestStep = stateBest
            state.bestValidationLoss = Self.valLoss(step: stateBest, bestAt: bestAt, offset: offset)
            state.lastValidationLoss = .nan
            state.seconds = 12.5
            try write(String(decoding: try state.encoded(), as: UTF8.self), to: "\(id)/state/\(TrainerState.fileName)")
            try writeCheckpoint(.best, in: id, value: -1)
        }
        if finished { try writeCheckpoint(.final, in: id, value: -2) }
    }

    func sample(_ id: String, step: Int, prompt: Int, seed: Int, maxSteps: Int = 40) throws {
        let names = Sampler.dpmpp2mKarras.a1111
        let parameters = GenerationInfo(prompt: Self.prompts[prompt], negativePrompt: "color, shading, blurry", steps: 20,
                                        sampler: names.sampler, scheduleType: names.schedule, cfgScale: 7.5, seed: UInt64(seed),
                                        width: 128, height: 128, model: id).text
        let url = folder(id).sample(step: step, SampleName(prompt: prompt, seed: seed))
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Self.lineArt(step: step * 40 / max(maxSteps, 1) + seed * 3, prompt: prompt)
            .writePNG(to: url, text: [PNGTextChunk(keyword: "parameters", text: parameters)])
    }

    /// A 128-pixel black-on-white drawing: a rose-like spiral (prompt 0) or a swallow-like chevron
    /// (prompt 1), cleaner and bolder as `progress` (0 to ~46) grows.
    static func lineArt(step progress: Int, prompt: Int, size: Int = 128) throws -> Image {
        var pixels = [UInt8](repeating: 255, count: size * size)
        let c = Double(size) / 2
        let thickness = 1.0 + Double(progress) / 14
        let wobble = max(0, 8 - Double(progress) / 5)
        for y in 0..<size {
            for x in 0..<size {
                let dx = Double(x) - c, dy = Double(y) - c
                let r = (dx * dx + dy * dy).squareRoot()
                let a = atan2(dy, dx)
                var ink = false
                if prompt == 0 {
                    // Spiral petals: r ≈ k·(angle + 2πn).
                    for n in 0..<4 {
                        let target = 6 * (a + Double.pi + 2 * Double.pi * Double(n)) / 2 + sin(a * 5) * wobble
                        if abs(r - target) < thickness { ink = true }
                    }
                    if r > 50, r < 50 + thickness { ink = true }
                } else {
                    // Two wing strokes and a tail fork.
                    let wing = abs(abs(dx) * 0.55 - (dy + 10)) < thickness * 1.4 && abs(dx) < 52
                    let body = abs(dx) < thickness + 1 && dy > -20 && dy < 28
                    let tail = abs(abs(dx) - (dy - 28) * 0.6) < thickness && dy > 28 && dy < 50
                    ink = wing || body || tail || (abs(r - 58) < 0.8 && Int(a * 30) % 2 == 0 && wobble > 2)
                }
                if ink { pixels[y * size + x] = 20 }
            }
        }
        return try Image(width: size, height: size, channels: 1, pixels: pixels).rgb()
    }

    // MARK: The standard layout

    /// alpha: finished, best step 20 from state (the log's lowest val loss is at 30);
    /// beta: still training (no state, best from the log); pipe/r1, pipe/r2: a pipeline's runs.
    static func standard() throws -> RunsFixture {
        let f = try RunsFixture()
        try f.run("alpha", steps: 40, bestAt: 30, offset: 0, stateBest: 20, finished: true, captions: .vanilla)
        try f.run("beta", steps: 25, bestAt: 20, offset: 0.01, captions: .blip)
        try f.run("pipe/r1", steps: 40, bestAt: 20, offset: 0.004, stateBest: 20, finished: true, captions: .blip)
        try f.run("pipe/r2", steps: 40, bestAt: 30, offset: -0.003, stateBest: 30, finished: true, captions: .blipPlus)
        // The summary as `inkwell pipeline` writes it, from the runs' own files.
        let results = try ["r1", "r2"].map { try PipelineRunResult(variant: $0, run: f.folder("pipe/\($0)")) }
        try PipelineSummaryFile.write(results, name: "Caption comparison", to: f.url("pipe"))
        try lineArt(step: 30, prompt: 1, size: 96).writePNG(to: f.url("pipe/compare/grid.png"))
        try f.write("<html><body>compare</body></html>", to: "pipe/compare/index.html")
        try f.write("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"></svg>", to: "pipe/plots/val_loss.svg")
        try f.write("not a png", to: "pipe/plots/val_loss.png")
        try lineArt(step: 10, prompt: 0, size: 64).writePNG(to: f.url("pipe/plots/clip_score.png"))
        return f
    }
}
