// runs/<pipeline>/summary.json: one row per caption variant's run, written by `inkwell pipeline` when its
// runs are done and read by the dashboard's pipeline page. summary.md beside it is the same table for
// people reading the folder in a terminal; nothing reads it back. Run folders are stored relative to the
// pipeline's folder, so the summary stays right when runs/ is moved or copied; summaries written before
// hold absolute paths, which still read (see `runFolder(in:)`).
import AtomicFile
import Foundation

/// One run of a pipeline, as its summary reports it.
public struct PipelineRunResult: Codable, Equatable, Sendable {
    /// The caption variant, which is also the run's folder name inside the pipeline's folder.
    public var variant: String
    public var bestStep: Int?
    public var bestValidationLoss: Double?
    public var finalValidationLoss: Double?
    public var clipScore: Double?
    public var steps: Int
    public var seconds: Double
    public var stepsPerSecond: Double
    /// The run's folder: relative to the pipeline's folder in the file ("blip"), absolute in older files.
    public var folder: String
    /// The LoRA files' base name (`<name>.safetensors`, `<name>-best.safetensors`); absent in older summaries.
    public var loraName: String?
    /// Ink coverage (LineArtMetrics) of this run's comparison cells at its largest LoRA scale, of the base
    /// model's cells and of the training images: the run learned the dataset's line weight when the first
    /// moves from the second toward the third. Absent in older summaries and before a comparison exists.
    public var sampleInkCoverage: Double?
    public var baseInkCoverage: Double?
    public var datasetInkCoverage: Double?
    /// Said beside the CLIP score (e.g. "random CLIP" when the scoring model has random weights).
    public var clipScoreNote: String?

    /// How far the samples' ink coverage moved from the base model's toward the dataset's (1: all the way).
    public var inkShift: Double? {
        guard let s = sampleInkCoverage, let b = baseInkCoverage, let d = datasetInkCoverage, abs(d - b) > 1e-9 else { return nil }
        return (s - b) / (d - b)
    }

    public init(variant: String, bestStep: Int?, bestValidationLoss: Double?, finalValidationLoss: Double?,
                clipScore: Double?, steps: Int, seconds: Double, stepsPerSecond: Double, folder: String,
                loraName: String? = nil) {
        self.variant = variant
        self.bestStep = bestStep
        self.bestValidationLoss = bestValidationLoss
        self.finalValidationLoss = finalValidationLoss
        self.clipScore = clipScore
        self.steps = steps
        self.seconds = seconds
        self.stepsPerSecond = stepsPerSecond
        self.folder = folder
        self.loraName = loraName
    }

    /// What a finished (or stopped) run's own files say: its log and its state.
    public init(variant: String, run: RunFolder) throws {
        let rows = try TrainingLog.read(run.log)
        let state = TrainerState.read(run)
        let seconds = state?.seconds ?? 0
        let steps = rows.last?.step ?? 0
        self.init(variant: variant, bestStep: state?.bestStep, bestValidationLoss: state?.bestValidationLoss,
                  finalValidationLoss: rows.last(where: { $0.validationLoss != nil })?.validationLoss,
                  clipScore: rows.last(where: { $0.clipScore != nil })?.clipScore, steps: steps, seconds: seconds,
                  stepsPerSecond: seconds > 0 ? Double(steps) / seconds : 0, folder: run.root.path,
                  loraName: run.loraName)
    }

    /// The run's folder, for a summary read from `pipelineFolder`: a relative folder resolves against it;
    /// an absolute one (older summaries) is used while it exists, and otherwise taken to have moved along
    /// with the pipeline (the same last component inside `pipelineFolder`).
    public func runFolder(in pipelineFolder: URL) -> RunFolder {
        let root: URL
        if !folder.hasPrefix("/") {
            root = pipelineFolder.appendingPathComponent(folder)
        } else if FileManager.default.fileExists(atPath: folder) {
            root = URL(fileURLWithPath: folder)
        } else {
            root = pipelineFolder.appendingPathComponent(URL(fileURLWithPath: folder).lastPathComponent)
        }
        return loraName.map { RunFolder(root, loraName: $0) } ?? RunFolder(root)
    }

    /// This row with its folder written relative to `pipelineFolder`.
    func relative(to pipelineFolder: URL) -> PipelineRunResult {
        var row = self
        if folder.hasPrefix("/") { row.folder = relativePath(URL(fileURLWithPath: folder), from: pipelineFolder) }
        return row
    }
}

/// `target`'s path from `base` ("blip", "../other/run", "." for the same folder).
func relativePath(_ target: URL, from base: URL) -> String {
    let to = target.standardizedFileURL.pathComponents, from = base.standardizedFileURL.pathComponents
    var shared = 0
    while shared < min(to.count, from.count) && to[shared] == from[shared] { shared += 1 }
    let parts = Array(repeating: "..", count: from.count - shared) + to[shared...]
    return parts.isEmpty ? "." : parts.joined(separator: "/")
}

public enum PipelineSummaryFile {
    public static let fileName = "summary.json"
    public static let markdownName = "summary.md"

    /// Whether `folder` is a pipeline's folder.
    public static func exists(in folder: URL) -> Bool {
        FileManager.default.fileExists(atPath: folder.appendingPathComponent(fileName).path)
    }

    /// Writes summary.json and summary.md into the pipeline's folder, run folders relative to it.
    public static func write(_ rows: [PipelineRunResult], name: String, to folder: URL) throws {
        let rows = rows.map { $0.relative(to: folder) }
        try writeAtomically(Data(markdown(rows, name: name).utf8), to: folder.appendingPathComponent(markdownName))
        try writeAtomically(try encoded(rows), to: folder.appendingPathComponent(fileName))
    }

    /// The rows of a pipeline's summary.json; nil when it has none or it cannot be read.
    public static func read(in folder: URL) -> [PipelineRunResult]? {
        guard let data = FileManager.default.contents(atPath: folder.appendingPathComponent(fileName).path) else { return nil }
        let json = JSONDecoder()
        json.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try? json.decode([PipelineRunResult].self, from: data)
    }

    static func encoded(_ rows: [PipelineRunResult]) throws -> Data {
        let json = JSONEncoder()
        json.outputFormatting = [.prettyPrinted, .sortedKeys]
        json.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try json.encode(rows)
    }

    static func markdown(_ rows: [PipelineRunResult], name: String) -> String {
        func f(_ x: Double?, _ format: String = "%.5f") -> String { x.map { String(format: format, $0) } ?? "–" }
        var md = "# \(name)\n\n"
        md += "| run | best step | best val loss | final val loss | CLIP score | ink: base → samples (data) | steps | train time | it/s | files |\n"
        md += "|---|---|---|---|---|---|---|---|---|---|\n"
        for r in rows {
            let run = RunFolder(URL(fileURLWithPath: r.folder), loraName: r.loraName ?? r.variant)
            md += "| \(r.variant) | \(r.bestStep.map(String.init) ?? "–") | \(f(r.bestValidationLoss)) | \(f(r.finalValidationLoss)) "
                + "| \(f(r.clipScore, "%.2f"))\(r.clipScoreNote.map { " (\($0))" } ?? "") | \(inkText(r)) | \(r.steps) | \(f(r.seconds, "%.0f")) s | \(f(r.stepsPerSecond, "%.2f")) "
                + "| `\(r.folder)/lora/\(run.fileName(.best))`, `\(run.fileName(.final))` |\n"
        }
        if rows.contains(where: { $0.inkShift != nil }) {
            md += "\nInk coverage is the fraction of dark pixels (LineArtMetrics): of the base model's samples, of each run's "
                + "samples at its largest LoRA scale (same prompts and seeds), and of the training images; the percentage is "
                + "how far the samples moved from the base model toward the data.\n"
        }
        if let best = lowestValidationLoss(rows) {
            md += "\nLowest validation loss: **\(best.variant)** at step \(best.bestStep.map(String.init) ?? "?").\n"
        }
        md += "\nValidation loss is measured on the same held-out images with fixed noise and timesteps, so it compares across runs.\n"
        return md
    }

    /// "4.1% → 9.8% (12.0%), 73% of the way", or "–".
    public static func inkText(_ r: PipelineRunResult) -> String {
        guard let s = r.sampleInkCoverage, let b = r.baseInkCoverage, let d = r.datasetInkCoverage else { return "–" }
        let shift = r.inkShift.map { String(format: ", %.0f%% of the way", 100 * $0) } ?? ""
        return String(format: "%.1f%% → %.1f%% (%.1f%%)", 100 * b, 100 * s, 100 * d) + shift
    }

    /// The run whose best validation loss is lowest.
    public static func lowestValidationLoss(_ rows: [PipelineRunResult]) -> PipelineRunResult? {
        rows.filter { $0.bestValidationLoss?.isFinite == true }
            .min { ($0.bestValidationLoss ?? 0) < ($1.bestValidationLoss ?? 0) }
    }
}
