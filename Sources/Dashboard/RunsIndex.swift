// Finding runs and pipelines under runs/, re-scanned on every request so a run started after the
// dashboard shows up on the next poll. A run is a folder with log.csv, or with config.toml and no
// runs below it; a pipeline is a folder with summary.json, and the runs below it are its runs. The
// scan stops at run folders (their lora/, samples/, state/ hold no runs), skips hidden names and
// follows a symlink only when its target stays inside runs/.
import Foundation
import RunFiles

struct RunLocation: Equatable, Sendable {
    /// Path relative to runs/ ("run" or "pipeline/run").
    var id: String
    var url: URL
    /// The parent folder's id, nil directly under runs/.
    var group: String?
    /// The nearest enclosing pipeline's id.
    var pipeline: String?
    /// Its files' names, read once from its config.toml when the index finds it.
    var folder: RunFolder
    var name: String { url.lastPathComponent }
}

struct PipelineLocation: Equatable, Sendable {
    var id: String
    var url: URL
    var name: String { url.lastPathComponent }
}

struct RunsScan: Equatable, Sendable {
    var runs: [RunLocation] = []
    var pipelines: [PipelineLocation] = []

    func run(_ id: String) -> RunLocation? { runs.first { $0.id == id } }
    func pipeline(_ id: String) -> PipelineLocation? { pipelines.first { $0.id == id } }
}

extension RunsRoot {
    /// Deep enough for runs/<pipeline>/<run> and one more level of grouping.
    static let maxScanDepth = 3

    func scan() -> RunsScan {
        var result = RunsScan()
        visit(url, id: nil, pipeline: nil, depth: 0, into: &result)
        result.runs.sort { $0.id.localizedStandardCompare($1.id) == .orderedAscending }
        result.pipelines.sort { $0.id.localizedStandardCompare($1.id) == .orderedAscending }
        return result
    }

    /// Visits the sub-folders of `folder` (whose id is `id`, nil for the root).
    private func visit(_ folder: URL, id: String?, pipeline: String?, depth: Int, into result: inout RunsScan) {
        guard depth < Self.maxScanDepth else { return }
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: folder.path) else { return }
        for name in names where !name.hasPrefix(".") {
            let child = folder.appendingPathComponent(name)
            guard let real = Self.realPath(child.path), contains(real) else { continue }
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: real, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            let childID = id.map { "\($0)/\(name)" } ?? name
            let run = RunFolder(child)
            let isPipeline = PipelineSummaryFile.exists(in: child)
            if run.hasLog {
                result.runs.append(RunLocation(id: childID, url: child, group: id, pipeline: pipeline, folder: run))
                if isPipeline { result.pipelines.append(PipelineLocation(id: childID, url: child)) }
                continue
            }
            if isPipeline { result.pipelines.append(PipelineLocation(id: childID, url: child)) }
            let before = result.runs.count
            visit(child, id: childID, pipeline: isPipeline ? childID : pipeline, depth: depth + 1, into: &result)
            // A config.toml alone marks a run that has not logged yet, unless runs live below it.
            if result.runs.count == before, !isPipeline, fm.fileExists(atPath: run.config.path) {
                result.runs.append(RunLocation(id: childID, url: child, group: id, pipeline: pipeline, folder: run))
            }
        }
    }
}
