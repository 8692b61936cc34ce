// What one run folder says about itself, read through RunFiles (the trainer's own definitions of its
// files): its status from status.json (RunStatusReading), progress from log.csv, the best step from
// state/trainer.json (or the lowest val_loss in the log when the state is missing), checkpoints in lora/,
// sample images with their prompts read back from the PNG's A1111 text, and config.toml. Every file may be missing or half-written while the trainer runs:
// each read degrades to "absent", never to an error page.
import Foundation
import Imaging
import RunFiles

struct RunReader: Sendable {
    let root: RunsRoot
    let logs: LogStore
    let prompts: PromptCache
    /// Without status.json: a log written within this many seconds counts as a run in progress.
    var liveWindow: TimeInterval = 120
    /// A "running" status.json whose heartbeat is older than this is not responding (the trainer beats
    /// every few seconds).
    var staleAfter: TimeInterval = 60
    /// The clock statuses are judged by (the tests move it).
    var now: @Sendable () -> Date = { Date() }

    // MARK: Summary

    func summary(_ run: RunLocation, rows: [TrainingLogRow]? = nil) async -> RunSummary {
        let rows = await logRows(run, cached: rows)
        let state = self.state(run)
        let best = self.best(run, rows: rows, state: state)
        let samples = sampleImages(run)
        let updated = modified(run.folder.log) ?? modified(run.folder.config)
        let status = self.status(run, rows: rows)
        return RunSummary(id: run.id, name: run.name, group: run.group, pipeline: run.pipeline,
                          status: status.status, statusGuessed: status.guessed, trainer: status.trainer,
                          lastStep: rows.last?.step ?? state?.step, maxSteps: trainingConfig(run)?.training.maxSteps,
                          bestStep: best?.step, bestValLoss: best?.valLoss,
                          lastValLoss: rows.lastValidation?.validationLoss ?? state?.lastValidationLoss,
                          latestSample: samples.max { ($0.step, -$0.prompt, -$0.seed) < ($1.step, -$1.prompt, -$1.seed) },
                          updated: updated?.timeIntervalSince1970)
    }

    func logRows(_ run: RunLocation, cached: [TrainingLogRow]? = nil) async -> [TrainingLogRow] {
        if let cached { return cached }
        return await logs.rows(run.folder.log)
    }

    // MARK: Detail

    func detail(_ run: RunLocation) async -> RunDetail {
        let rows = await logRows(run)
        let summary = await self.summary(run, rows: rows)
        let state = self.state(run)
        let config = ConfigSections(run: run.folder)
        return RunDetail(summary: summary, config: config,
                         configPath: config == nil ? nil : root.relative(run.folder.config),
                         checkpoints: checkpoints(run), samples: await samples(run),
                         best: best(run, rows: rows, state: state), state: state)
    }

    func log(_ run: RunLocation, since: Int) async -> LogResponse {
        let rows = await logRows(run)
        let state = self.state(run)
        let reachesSince = since < 0 || rows.contains { $0.step >= since } || rows.isEmpty
        let reset = !reachesSince
        let newRows = reset ? rows : rows.filter { $0.step > since }
        let status = self.status(run, rows: rows)
        return LogResponse(id: run.id, since: since, reset: reset, rows: newRows, lastStep: rows.last?.step,
                           bestStep: best(run, rows: rows, state: state)?.step,
                           sampleSteps: sampleSteps(run), status: status.status, statusGuessed: status.guessed,
                           trainer: status.trainer)
    }

    // MARK: Files of the run

    /// The run's config.toml decoded as the trainer reads it; nil when absent or not a valid config.
    func trainingConfig(_ run: RunLocation) -> TrainingConfig? {
        try? TrainingConfig.load(run.folder.config)
    }

    func state(_ run: RunLocation) -> TrainerStateInfo? {
        TrainerState.read(run.folder).map(TrainerStateInfo.init)
    }

    func best(_ run: RunLocation, rows: [TrainingLogRow], state: TrainerStateInfo?) -> BestCheckpoint? {
        let bestFile = run.folder.best
        let path = FileManager.default.fileExists(atPath: bestFile.path) ? root.relative(bestFile) : nil
        if let step = state?.bestStep {
            // The log's value at that step is the one plotted; the state's is the same number unrounded.
            let logged = rows.last { $0.step == step }?.validationLoss
            return BestCheckpoint(step: step, valLoss: state?.bestValidationLoss ?? logged, source: .state, path: path)
        }
        guard let row = rows.bestValidation else { return nil }
        return BestCheckpoint(step: row.step, valLoss: row.validationLoss, source: .log, path: path)
    }

    func checkpoints(_ run: RunLocation) -> [Checkpoint] {
        let folder = run.folder.lora
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        var out: [Checkpoint] = []
        for name in names where name.hasSuffix(".safetensors") && !name.hasPrefix(".") {
            let url = folder.appendingPathComponent(name)
            guard let path = root.relative(url) else { continue }
            let bytes = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? 0
            let kind: Checkpoint.Kind
            var step: Int?
            switch run.folder.checkpointName(fileName: name) {
            case .best: kind = .best
            case .final: kind = .final
            case .step(let s): kind = .step; step = s
            case nil: kind = .other
            }
            out.append(Checkpoint(name: name, path: path, kind: kind, step: step, bytes: bytes))
        }
        let order: [Checkpoint.Kind: Int] = [.best: 0, .final: 1, .step: 2, .other: 3]
        return out.sorted { (order[$0.kind] ?? 3, $0.step ?? 0, $0.name) < (order[$1.kind] ?? 3, $1.step ?? 0, $1.name) }
    }

    // MARK: Samples

    func sampleSteps(_ run: RunLocation) -> [Int] { run.folder.sampleSteps() }

    func sampleImages(_ run: RunLocation) -> [SampleImage] {
        var images: [SampleImage] = []
        for step in sampleSteps(run) {
            let folder = run.folder.samples(step: step)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            for name in names {
                guard let sample = SampleName(fileName: name), let path = root.relative(folder.appendingPathComponent(name)) else { continue }
                images.append(SampleImage(step: step, prompt: sample.prompt, seed: sample.seed, path: path))
            }
        }
        return images.sorted { ($0.step, $0.prompt, $0.seed) < ($1.step, $1.prompt, $1.seed) }
    }

    func samples(_ run: RunLocation) async -> SampleSet {
        let images = sampleImages(run)
        let configured = trainingConfig(run)?.samples.prompts ?? []
        var infos: [PromptInfo] = []
        for index in Set(images.map(\.prompt)).sorted() {
            // The newest image of the prompt carries the text it was really generated from.
            let newest = images.last { $0.prompt == index }
            var parameters: String?
            if let newest, let url = try? root.file(newest.path) { parameters = await prompts.parameters(url) }
            let text = parameters.map(Self.promptLine) ?? (index < configured.count ? configured[index] : "prompt \(index)")
            infos.append(PromptInfo(index: index, text: text, parameters: parameters))
        }
        return SampleSet(steps: Array(Set(images.map(\.step))).sorted(), prompts: infos,
                         seeds: Set(images.map(\.seed)).sorted(), images: images)
    }

    // MARK: Helpers

    func modified(_ url: URL) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date
    }

    /// The prompt of an A1111 parameters text: everything before "Negative prompt:" or the settings line.
    static func promptLine(_ parameters: String) -> String {
        var lines: [Substring] = []
        for line in parameters.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("Negative prompt:") || line.hasPrefix("Steps: ") { break }
            lines.append(line)
        }
        return lines.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The `parameters` text of sample PNGs, read once per file version (path and modification time).
actor PromptCache {
    private var cache: [String: (Date, String?)] = [:]

    func parameters(_ url: URL) -> String? {
        let modified = (try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date ?? .distantPast
        if let (date, text) = cache[url.path], date == modified { return text }
        let text = (try? PNGText.read(url))?.dictionary["parameters"]
        if cache.count > 4096 { cache.removeAll() }
        cache[url.path] = (modified, text)
        return text
    }
}
