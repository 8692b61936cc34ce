// What `inkwell compare` puts side by side: the generation settings every cell shares (prompts, seeds,
// sampler, steps, size: by default those of the runs' own sample settings in config.toml), and the
// columns: the base model, then each run's best and/or final LoRA at one or more scales.
import Foundation
import RunFiles
import StableDiffusion

public struct CompareSettings: Codable, Equatable, Sendable {
    public var prompts: [String]
    public var negativePrompt: String
    public var seeds: [UInt64]
    public var steps: Int
    public var guidance: Double
    public var size: Int
    /// A sampler as the user named it (dpm++2m-karras, "DPM++ 2M Karras", euler_a, ...).
    public var sampler: String

    public init(prompts: [String], negativePrompt: String = "", seeds: [UInt64], steps: Int = 20, guidance: Double = 7.5,
                size: Int = 512, sampler: String = Sampler.dpmpp2mKarras.rawValue) {
        self.prompts = prompts
        self.negativePrompt = negativePrompt
        self.seeds = seeds
        self.steps = steps
        self.guidance = guidance
        self.size = size
        self.sampler = sampler
    }

    /// A run's sample settings (`[samples]` of its config.toml): the prompts it was watched with.
    public init(samples: TrainingConfig.Samples) {
        self.init(prompts: samples.prompts, negativePrompt: samples.negativePrompt, seeds: samples.seeds.map { UInt64(max(0, $0)) },
                  steps: samples.steps, guidance: samples.guidance, size: samples.size, sampler: samples.sampler.rawValue)
    }

    /// The `[samples]` settings of a run folder's config.toml; the error names the file.
    public static func fromRun(_ run: URL) throws -> CompareSettings {
        let file = RunFolder(run).config
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw ReportError("\(file.path): no config.toml, so no sample prompts to reuse; pass --prompts and --seeds")
        }
        do {
            return CompareSettings(samples: try TrainingConfig.load(file).samples)
        } catch {
            throw ReportError("\(file.path): cannot read the run's config (\(error))")
        }
    }

    public var resolvedSampler: Sampler? { Sampler(name: sampler) }

    /// Every problem at once, each naming its flag.
    public func validate() throws {
        var problems: [String] = []
        if prompts.isEmpty || prompts.contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            problems.append("--prompts: give at least one non-empty prompt")
        }
        if seeds.isEmpty { problems.append("--seeds: give at least one seed") }
        if steps <= 0 { problems.append("--steps must be positive, got \(steps)") }
        if size <= 0 || size % 8 != 0 { problems.append("--size must be a positive multiple of 8, got \(size)") }
        else {
            // One cell at a time, so the size alone sets the memory (counted with a tiled VAE: the least it can be).
            do {
                try MemoryNeed.check(MemoryNeed.generation(width: size, height: size, batch: 1, vaeTiling: true),
                                     settings: "--size \(size)", remedy: "use a smaller --size")
            } catch { problems.append("\(error)") }
        }
        if !guidance.isFinite { problems.append("--guidance must be a number") }
        if resolvedSampler == nil {
            problems.append("--sampler '\(sampler)' is not one of \(Sampler.names) (or their A1111 / ComfyUI names)")
        }
        if !problems.isEmpty { throw ReportError(problems.joined(separator: "; ")) }
    }

    /// One row per (prompt, seed), prompts outermost.
    public var rows: [CompareRow] {
        prompts.enumerated().flatMap { p, prompt in seeds.map { CompareRow(promptIndex: p, prompt: prompt, seed: $0) } }
    }
}

public struct CompareRow: Codable, Equatable, Sendable {
    public var promptIndex: Int
    public var prompt: String
    public var seed: UInt64
}

public enum CompareCheckpoint: String, CaseIterable, Sendable {
    case best, final, both
}

public struct CompareColumn: Codable, Equatable, Sendable {
    /// First header line: "base model" or the run's name.
    public var title: String
    /// Second header line: the model's name, or checkpoint and scale ("best ×0.5").
    public var detail: String
    /// The LoRA file; nil for the base model.
    public var lora: String?
    public var run: String?
    public var checkpoint: String?
    public var scale: Double?
    /// The folder of this column's images under `images/`.
    public var slug: String

    public var isBase: Bool { lora == nil }

    public static func base(modelName: String) -> CompareColumn {
        CompareColumn(title: "base model", detail: modelName, lora: nil, run: nil, checkpoint: nil, scale: nil, slug: "base")
    }

    /// "1", "0.5", "0.75": the scale as people write it.
    static func scaleText(_ scale: Double) -> String { GenerationInfo.number(scale) }

    /// The base column, then for each run (a run folder, or a LoRA .safetensors file used as is) each
    /// checkpoint asked for at each scale. A run without a best checkpoint (no validation split) uses the
    /// final one instead, and says so in `notes`.
    public static func columns(modelName: String, runs: [URL], checkpoint: CompareCheckpoint,
                               scales: [Double]) throws -> (columns: [CompareColumn], notes: [String]) {
        guard !scales.isEmpty else { throw ReportError("--scales: give at least one LoRA scale") }
        if let bad = scales.first(where: { !$0.isFinite }) { throw ReportError("--scales: \(bad) is not a finite number") }
        let fm = FileManager.default
        var columns = [base(modelName: modelName)]
        var notes: [String] = []
        let names = RunLog.uniqueNames(runs)
        for (runURL, name) in zip(runs, names) {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: runURL.path, isDirectory: &isDirectory) else {
                throw ReportError("\(runURL.path): no such run folder or LoRA file")
            }
            var files: [(String?, URL)] = []
            if !isDirectory.boolValue {
                guard runURL.pathExtension == "safetensors" else {
                    throw ReportError("\(runURL.path): expected a run folder or a .safetensors LoRA file")
                }
                files = [(nil, runURL)]
            } else {
                let run = RunFolder(runURL)
                let wanted: [String] = checkpoint == .both ? ["best", "final"] : [checkpoint.rawValue]
                for which in wanted {
                    let file = which == "best" ? run.best : run.final
                    if fm.fileExists(atPath: file.path) {
                        files.append((which, file))
                    } else if which == "best", !wanted.contains("final"), fm.fileExists(atPath: run.final.path) {
                        notes.append("\(name): no \(run.fileName(.best)) (no validation split?); using \(run.fileName(.final))")
                        files.append(("final", run.final))
                    } else if which == "best" && wanted.contains("final") {
                        notes.append("\(name): no \(run.fileName(.best)); showing final only")
                    } else {
                        throw ReportError("\(file.path): missing (has the run saved a LoRA yet?)")
                    }
                }
            }
            let title = isDirectory.boolValue ? name : runURL.deletingPathExtension().lastPathComponent
            for (which, file) in files {
                for scale in scales {
                    let detail = [which, "×" + scaleText(scale)].compactMap { $0 }.joined(separator: " ")
                    columns.append(CompareColumn(title: title, detail: detail, lora: file.path, run: isDirectory.boolValue ? runURL.path : nil,
                                                 checkpoint: which, scale: scale, slug: ""))
                }
            }
        }
        return (assignSlugs(columns), notes)
    }

    /// Folder names for the columns' images: unique, file-system safe, stable for the same columns.
    static func assignSlugs(_ columns: [CompareColumn]) -> [CompareColumn] {
        var used = Set<String>()
        return columns.map { column in
            var c = column
            let base = column.isBase ? "base"
                : TrainingPlots.fileStem([column.title, column.checkpoint, "x" + scaleText(column.scale ?? 1)]
                    .compactMap { $0 }.joined(separator: "_"))
            var slug = base
            var n = 2
            while used.contains(slug) {
                slug = "\(base)_\(n)"
                n += 1
            }
            used.insert(slug)
            c.slug = slug
            return c
        }
    }
}
