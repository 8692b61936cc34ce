// The answers the JSON routes give, computed from runs/ on each request (the folder is the only
// source of truth: nothing is remembered between requests but parse caches keyed by file version).
// Kept apart from HTTP so that each answer can be tested as a value.
import Foundation
import RunFiles

public struct DashboardData: Sendable {
    public let root: RunsRoot
    let logs = LogStore()
    let prompts = PromptCache()
    let thumbnails = Thumbnails()
    /// The clock run statuses are judged by (the tests move it past a heartbeat).
    var now: @Sendable () -> Date = { Date() }

    public init(root: RunsRoot) { self.root = root }

    var reader: RunReader { RunReader(root: root, logs: logs, prompts: prompts, now: now) }

    /// Every run and pipeline, runs in folder order.
    public func index() async -> RunsIndexResponse {
        let scan = root.scan()
        var runs: [RunSummary] = []
        for run in scan.runs { runs.append(await reader.summary(run)) }
        return RunsIndexResponse(runs: runs, pipelines: scan.pipelines.map { pipelineSummary($0, scan: scan) })
    }

    public func run(_ id: String) async throws -> RunDetail {
        await reader.detail(try location(id, in: root.scan()))
    }

    /// Rows logged after step `since` (all rows for a negative `since`).
    public func log(_ id: String, since: Int) async throws -> LogResponse {
        await reader.log(try location(id, in: root.scan()), since: since)
    }

    /// Val-loss curves and samples of several runs side by side: those at `pick` (by default the newest step
    /// every run has sampled), beside the base model's (step 0).
    public func compare(_ ids: [String], pick requested: SamplePick? = nil) async throws -> CompareResponse {
        let scan = root.scan()
        let locations = try ids.map { try location($0, in: scan) }
        var images: [String: [SampleImage]] = [:]
        for run in locations { images[run.id] = reader.sampleImages(run) }
        let stepSets = locations.map { run in Set((images[run.id] ?? []).map(\.step)).subtracting([0]) }
        let steps = stepSets.reduce(into: Set<Int>()) { $0.formUnion($1) }.sorted()
        let common = stepSets.first.map { stepSets.dropFirst().reduce($0) { $0.intersection($1) } }?.sorted() ?? []
        let pick = requested ?? common.last.map(SamplePick.step) ?? .latest

        var runs: [CompareRun] = []
        var base: [BaseColumn] = []
        var shown: [SampleImage] = []
        for run in locations {
            let rows = await reader.logRows(run)
            let bestStep = reader.best(run, rows: rows, state: reader.state(run))?.step
            let all = images[run.id] ?? []
            let samples: [SampleImage]
            switch pick {
            case .step(let step): samples = all.filter { $0.step == step }
            case .best: samples = bestStep.map { step in all.filter { $0.step == step } } ?? []
            case .latest:
                // The newest image of each prompt/seed pair: images are sorted by step.
                var newest: [[Int]: SampleImage] = [:]
                for image in all { newest[[image.prompt, image.seed]] = image }
                samples = newest.values.sorted { ($0.prompt, $0.seed) < ($1.prompt, $1.seed) }
            }
            // Step 0 is rendered with the adapters off (and B is zero then anyway): the base model. One column
            // per base model, from the first run of it that has them.
            let model = reader.trainingConfig(run)?.model.path ?? ""
            let zero = all.filter { $0.step == 0 }
            if !zero.isEmpty, !base.contains(where: { $0.model == model }) {
                base.append(BaseColumn(model: model, run: run.id, samples: zero))
                shown += zero
            }
            shown += samples
            runs.append(CompareRun(id: run.id, name: run.name, status: reader.status(run, rows: rows).status, bestStep: bestStep,
                                   valLoss: rows.compactMap { row in row.validationLoss.map { LossPoint(step: row.step, value: $0) } },
                                   sampleSteps: Set(all.map(\.step)).sorted(), samples: samples))
        }
        // Prompt texts from the runs' PNGs, for the prompts shown.
        var texts: [Int: String] = [:]
        for run in locations where shown.contains(where: { texts[$0.prompt] == nil }) {
            for prompt in await reader.samples(run).prompts where texts[prompt.index] == nil { texts[prompt.index] = prompt.text }
        }
        let keys = Set(shown.map { [$0.prompt, $0.seed] }).sorted { $0.lexicographicallyPrecedes($1) }
            .map { SampleKey(prompt: $0[0], seed: $0[1], text: texts[$0[0]] ?? "prompt \($0[0])") }
        let pipelines = Set(locations.compactMap(\.pipeline)).sorted()
        let grids = pipelines.compactMap { scan.pipeline($0).flatMap { grid(of: $0) } }
        return CompareResponse(runs: runs, keys: keys, grids: grids, pick: pick, steps: steps, commonSteps: common, base: base)
    }

    public func pipeline(_ id: String) async throws -> PipelineDetail {
        let scan = root.scan()
        guard let pipeline = scan.pipeline(id) else { throw DashboardError("no pipeline '\(id)' in \(root.path)") }
        let summary = pipelineSummary(pipeline, scan: scan)
        var runs: [RunSummary] = []
        for id in summary.runs { if let run = scan.run(id) { runs.append(await reader.summary(run)) } }
        let results = (PipelineSummaryFile.read(in: pipeline.url) ?? []).map { resultRow($0, pipeline: pipeline, scan: scan) }
        return PipelineDetail(summary: summary, results: results, runs: runs)
    }

    /// A summary row with its run and checkpoints as paths under runs/, wherever the summary's folder says
    /// (relative, or absolute from an older summary).
    func resultRow(_ result: PipelineRunResult, pipeline: PipelineLocation, scan: RunsScan) -> PipelineResultRow {
        let folder = result.runFolder(in: pipeline.url)
        // Resolved first, so a symlink out of runs/ gives no link.
        func underRoot(_ url: URL) -> String? { RunsRoot.realPath(url.path).flatMap { root.relative(URL(fileURLWithPath: $0)) } }
        return PipelineResultRow(result: result, run: underRoot(folder.root).flatMap { scan.run($0)?.id },
                                 best: underRoot(folder.best), final: underRoot(folder.final))
    }

    // MARK: Helpers

    func location(_ id: String, in scan: RunsScan) throws -> RunLocation {
        guard let run = scan.run(id) else { throw DashboardError("no run '\(id)' in \(root.path)") }
        return run
    }

    /// A pipeline's runs are those below its folder; when it has none (its runs sit beside it), the
    /// runs its summary names.
    func pipelineSummary(_ pipeline: PipelineLocation, scan: RunsScan) -> PipelineSummary {
        var runs = scan.runs.filter { $0.pipeline == pipeline.id }.map(\.id)
        if runs.isEmpty, let results = PipelineSummaryFile.read(in: pipeline.url) {
            // Where the summary's folders point, else runs named like its variants.
            let linked = results.compactMap { resultRow($0, pipeline: pipeline, scan: scan).run }
            let named = Set(results.map(\.variant))
            runs = linked.count == results.count ? linked : scan.runs.filter { named.contains($0.name) || named.contains($0.id) }.map(\.id)
        }
        let compare = pipeline.url.appendingPathComponent("compare")
        let html = compare.appendingPathComponent("index.html")
        let gridPath = grid(of: pipeline)
        let plotPaths = plots(of: pipeline)
        let shown = [pipeline.url.appendingPathComponent(PipelineSummaryFile.fileName), html]
            + (plotPaths + [gridPath].compactMap { $0 }).map { root.url.appendingPathComponent($0) }
        let updated = shown.compactMap { reader.modified($0) }.max()
        return PipelineSummary(id: pipeline.id, name: pipeline.name, runs: runs, grid: gridPath,
                               compareHTML: FileManager.default.fileExists(atPath: html.path) ? root.relative(html) : nil,
                               plots: plotPaths, updated: updated?.timeIntervalSince1970)
    }

    func grid(of pipeline: PipelineLocation) -> String? {
        let url = pipeline.url.appendingPathComponent("compare/grid.png")
        return FileManager.default.fileExists(atPath: url.path) ? root.relative(url) : nil
    }

    /// plots/*.svg and plots/*.png, SVG first when both exist for a name.
    func plots(of pipeline: PipelineLocation) -> [String] {
        let folder = pipeline.url.appendingPathComponent("plots")
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        var byStem: [String: String] = [:]
        for name in names.sorted() where !name.hasPrefix(".") {
            let ext = (name as NSString).pathExtension.lowercased()
            guard ext == "svg" || ext == "png" else { continue }
            let stem = (name as NSString).deletingPathExtension
            if byStem[stem] == nil || ext == "svg" { byStem[stem] = name }
        }
        return byStem.keys.sorted().compactMap { root.relative(folder.appendingPathComponent(byStem[$0] ?? $0)) }
    }
}
