// `inkwell compare`: base model vs runs' LoRAs on the same prompts and seeds, as one labelled grid.
import ArgumentParser
import Foundation
import Stencil
import RunFiles
import StableDiffusion
import Torch
import Training

struct Compare: ParsableCommand, ComputingCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate the base model and each run's LoRA on the same prompts and seeds, side by side in one grid.",
        discussion: """
        Rows are (prompt, seed) pairs, columns the base model and each run's best/final LoRA at each scale. Prompts, \
        seeds, sampler, steps, size, guidance and negative prompt default to the first run's [samples] settings in its \
        config.toml. Writes <out>/grid.png, index.html, compare.json and images/<column>/p<prompt>_s<seed>.png (with \
        A1111 parameters). Reruns reuse the cells whose inputs are unchanged; --force regenerates them all.
        """)

    @Option(help: "A diffusers model folder or a single-file .safetensors checkpoint (default: the first run's model.path).")
    var model: String?
    @Option(parsing: .upToNextOption, help: "Run folders (runs/<name>), or LoRA .safetensors files.") var runs: [String]
    @Option(parsing: .upToNextOption, help: "Prompts, one row group each (repeatable).") var prompts: [String] = []
    @Option(name: .customLong("negative-prompt"), help: "Negative prompt (default: the run's samples.negative_prompt).")
    var negativePrompt: String?
    @Option(parsing: .upToNextOption, help: "Seeds; every prompt is generated with each.") var seeds: [UInt64] = []
    @Option(help: "Which LoRA of each run: best, final or both.") var checkpoint = "best"
    @Option(parsing: .upToNextOption, help: "LoRA scales; a column per scale.") var scales: [Double] = [1]
    @Option(help: "Denoising steps (default: the run's samples.steps).") var steps: Int?
    @Option(help: "Classifier-free guidance scale (default: the run's samples.guidance).") var guidance: Double?
    @Option(help: "Image size: one number or WxH with W = H (cells are square), a multiple of 8 (default: the run's samples.size).")
    var size: String?
    @Option(name: [.customLong("sampler"), .customLong("scheduler")], help: .init(samplerHelp + " (default: the run's samples.sampler)."))
    var sampler: String?
    @Option(help: "Output folder (default: <first run's parent>/compare).") var out: String?
    @Option(help: "Device: cpu, cuda or cuda:N (default: the best available).") var device: String?
    @Option(help: "Weights dtype: fp32, fp16 or bf16 (default: fp16 on GPU, fp32 on CPU).") var dtype: String?
    @Option(help: "Tokenizer folder for a single-file checkpoint (default: tokenizer/ beside it).") var tokenizer: String?
    @Flag(help: "Regenerate every cell, even those up to date.") var force = false
    @Flag(name: .customLong("vae-tiling"), help: .init(vaeTilingHelp)) var vaeTiling = false
    @Flag(help: .init(offloadHelp)) var offload = false
    @Flag(name: .customLong("no-hash"), help: "Skip hashing a single-file model for the Model hash field.") var noHash = false
    @Flag(help: "Show the grid's cells as stencils (1-bit line art, as `inkwell stencil` makes them; the stencil flags below apply, print size aside).")
    var stencil = false
    @OptionGroup(title: "Stencil (with --stencil)") var stencilOptions: StencilOptions

    @OptionGroup var cpu: CPUOptions

    func run() throws {
        guard !runs.isEmpty else { throw ValidationError("--runs: name at least one run folder or LoRA file") }
        guard let which = CompareCheckpoint(rawValue: checkpoint.lowercased()) else {
            throw ValidationError("--checkpoint must be best, final or both, got '\(checkpoint)'")
        }
        let runURLs = runs.map { URL(fileURLWithPath: $0) }
        let firstRun = runURLs.first { FileManager.default.fileExists(atPath: RunFolder($0).config.path) }
        do {
            var settings: CompareSettings
            if let firstRun, prompts.isEmpty || seeds.isEmpty || steps == nil || size == nil || sampler == nil || guidance == nil {
                settings = try CompareSettings.fromRun(firstRun)
            } else {
                settings = CompareSettings(prompts: [], seeds: [])
            }
            if !prompts.isEmpty { settings.prompts = prompts }
            if !seeds.isEmpty { settings.seeds = seeds }
            if let negativePrompt { settings.negativePrompt = negativePrompt }
            if let steps { settings.steps = steps }
            if let guidance { settings.guidance = guidance }
            if let size {
                let dims = try imageSize(size)
                guard dims[0] == dims[1] else { throw ValidationError("--size: comparison cells are square, got '\(size)'") }
                settings.size = dims[0]
            }
            // The canonical name, so that "DPM++ 2M Karras" and dpm++2m-karras share cached cells.
            if let sampler { settings.sampler = Sampler(name: sampler)?.rawValue ?? sampler }
            if firstRun == nil && (prompts.isEmpty || seeds.isEmpty) {
                throw ReportError("no run has a config.toml to take sample prompts and seeds from: pass --prompts and --seeds")
            }
            try settings.validate()

            let modelPath = try model ?? firstRun.map { try TrainingConfig.load(RunFolder($0).config).model.path }
            guard let modelPath, !modelPath.isEmpty else {
                throw ReportError("--model: say which base model to compare against (no run config names one)")
            }
            let source = try ModelSource(path: modelPath)
            let (columns, notes) = try CompareColumn.columns(modelName: source.displayName, runs: runURLs, checkpoint: which,
                                                            scales: scales)
            for note in notes { say("note: \(note)") }
            let weightsType = try dtype.map { name -> DType in
                guard let t = DType(name: name), t.isFloatingPoint else { throw ValidationError("--dtype must be fp32, fp16 or bf16, got '\(name)'") }
                return t
            }
            let target = try chooseDevice(device, setting: "--device", dtype: weightsType, dtypeSetting: "--dtype")
            let first = runURLs[0].standardizedFileURL
            let directory = out.map { URL(fileURLWithPath: $0) } ?? first.deletingLastPathComponent().appendingPathComponent("compare")

            try TextToImageJob.checkOutputDirectory(directory, setting: "--out")
            var comparison = Comparison(model: source, settings: settings, columns: columns, outputDirectory: directory)
            comparison.force = force
            if stencil {
                var cellSettings = try stencilOptions.settings()
                cellSettings.printSize = try PrintSize(dpi: cellSettings.printSize.dpi)  // cells keep their size
                comparison.gridCell = { try Stencil($0, settings: cellSettings).bitmap.image().rgb() }
            }
            comparison.environment = "\(target) \(weightsType.map { "\($0)" } ?? "default")"
            if !noHash, case .singleFile(let file) = source { comparison.modelHash = try FileHash.modelHash(file) }
            let rows = settings.rows
            say("\(rows.count) rows × \(columns.count) columns (\(settings.sampler), \(settings.steps) steps, \(settings.size) px)")

            let interruption = Interruption.install()
            var bar: ProgressLine?
            let result = try comparison.run(pipeline: {
                say("loading \(source.url.path) on \(target)…")
                let pipeline = try StableDiffusionPipeline.load(source, device: target, dtype: weightsType,
                                                                tokenizer: tokenizer.map { URL(fileURLWithPath: $0) },
                                                                offload: offload)
                pipeline.vae.useTiling = vaeTiling
                return pipeline
            }, progress: { done, total in
                if bar == nil { bar = ProgressLine(total: total, label: "generating", unit: "img") }
                if done > 0 { bar?.update(done) }
                return !interruption.requested
            })
            if result.reused > 0 { say("\(result.reused) cells up to date, \(result.generated) generated") }
            say("wrote \(result.gridURL.path) (\(result.grid.width)×\(result.grid.height))")
            say("wrote \(result.pageURL.path)")
            say("wrote \(result.manifestURL.path)")
        } catch let error as ReportError {
            throw CommandError(error.description)
        } catch is ComparisonStopped {
            say("stopped; the cells generated so far are saved and will be reused")
            throw ExitCode(130)
        }
    }
}
