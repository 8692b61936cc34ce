// `inkwell plot`: the curves of one or more runs' log.csv. Per run, one figure of four panels (train
// loss raw and smoothed, validation loss, CLIP score, learning rate); across runs, one chart per
// metric with a line per run. Each is written as SVG and PNG; the same logs give the same bytes.
import AtomicFile
import Foundation
import Imaging
import RunFiles
import Torch

/// One run's log, read for plotting.
public struct RunLog: Sendable {
    /// The name in legends and file names: the run folder's name (made unique across the runs plotted).
    public var name: String
    public var directory: URL
    /// Rows in step order.
    public var rows: [TrainingLogRow]

    public init(name: String, directory: URL, rows: [TrainingLogRow]) {
        self.name = name
        self.directory = directory
        self.rows = rows
    }

    /// Reads `<directory>/log.csv`; the error names the file.
    public init(directory: URL, name: String? = nil) throws {
        let run = RunFolder(directory)
        guard FileManager.default.fileExists(atPath: run.log.path) else {
            throw ReportError("\(run.log.path): no training log (is \(directory.path) a run folder made by `inkwell train`?)")
        }
        let rows: [TrainingLogRow]
        do {
            rows = try TrainingLog.read(run.log)
        } catch {
            throw ReportError("\(run.log.path): cannot read the training log (\(error.localizedDescription))")
        }
        // A stable sort: rows of one step keep their file order.
        let ordered = rows.enumerated().sorted { ($0.element.step, $0.offset) < ($1.element.step, $1.offset) }.map(\.element)
        self.init(name: name ?? directory.standardizedFileURL.lastPathComponent, directory: directory, rows: ordered)
    }

    /// The run folders named by `paths`: a folder with a log.csv is a run; a folder without one
    /// stands for the runs directly inside it (`inkwell plot --runs runs/`). Names are made unique.
    public static func load(_ paths: [URL]) throws -> [RunLog] {
        let fm = FileManager.default
        var folders: [URL] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ReportError("\(path.path): no such run folder")
            }
            if RunFolder(path).hasLog {
                folders.append(path)
                continue
            }
            let children = (try? fm.contentsOfDirectory(at: path, includingPropertiesForKeys: nil)) ?? []
            let runs = children.filter { RunFolder($0).hasLog }
                .sorted { $0.lastPathComponent < $1.lastPathComponent }
            guard !runs.isEmpty else {
                throw ReportError("\(path.path): no log.csv in it or in the folders directly inside it")
            }
            folders += runs
        }
        let names = uniqueNames(folders)
        return try zip(folders, names).map { try RunLog(directory: $0, name: $1) }
    }

    /// Folder names, prefixed with their parent's name where two runs share one ("a/lora", "b/lora").
    static func uniqueNames(_ folders: [URL]) -> [String] {
        let plain = folders.map { $0.standardizedFileURL.lastPathComponent }
        var seen: [String: Int] = [:]
        for name in plain { seen[name, default: 0] += 1 }
        var used = Set<String>()
        return zip(folders, plain).map { folder, name in
            var unique = seen[name, default: 0] > 1
                ? folder.standardizedFileURL.deletingLastPathComponent().lastPathComponent + "/" + name : name
            var n = 2
            let base = unique
            while used.contains(unique) {
                unique = "\(base) (\(n))"
                n += 1
            }
            used.insert(unique)
            return unique
        }
    }

    /// Points of one metric: rows without the value are left out, a NaN or infinite value is kept
    /// (it breaks the line).
    public func points(_ metric: PlotMetric) -> [PlotPoint] {
        rows.compactMap { row in metric.value(row).map { PlotPoint(Double(row.step), $0) } }
    }
}

/// The columns of log.csv that are plotted.
public enum PlotMetric: String, CaseIterable, Sendable {
    case trainLoss = "train_loss"
    case smoothedLoss = "smoothed_loss"
    case validationLoss = "val_loss"
    case clipScore = "clip_score"
    case learningRate = "lr"

    func value(_ row: TrainingLogRow) -> Double? {
        switch self {
        case .trainLoss: return row.trainLoss
        case .smoothedLoss: return row.smoothedLoss
        case .validationLoss: return row.validationLoss
        case .clipScore: return row.clipScore
        case .learningRate: return row.learningRate
        }
    }

    /// The y-axis label, with the unit.
    public var axisLabel: String {
        switch self {
        case .trainLoss, .smoothedLoss, .validationLoss: return "MSE loss"
        case .clipScore: return "CLIP score (100·cos)"
        case .learningRate: return "learning rate"
        }
    }
}

public struct ReportError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public enum TrainingPlots {
    /// Distinct colours for runs, in order; a run past the end reuses them.
    public static let palette: [Color] = ([0x2f6fb0, 0xd9622b, 0x3a9a4a, 0xb8323a, 0x7d5bb5, 0x8c6447, 0xcf5c9f, 0x5f6b73,
                                          0xa5a22a, 0x2aa1b3] as [UInt32]).map { Color(hex: $0) }

    /// The overlay charts, in file order: (file stem, title, metric).
    static let overlays: [(String, String, PlotMetric)] = [
        ("overlay_train_loss", "Training loss (smoothed)", .smoothedLoss),
        ("overlay_val_loss", "Validation loss", .validationLoss),
        ("overlay_clip_score", "CLIP score of the samples", .clipScore),
        ("overlay_lr", "Learning rate", .learningRate),
    ]

    /// One run's four panels in a 2×2 figure.
    public static func runFigure(_ run: RunLog, color: Color = palette[0]) -> PlotFigure {
        let raw = PlotSeries(name: "train loss (raw)", points: run.points(.trainLoss),
                             color: color.mixed(with: .white, amount: 0.6), lineWidth: 1)
        let smoothed = PlotSeries(name: "smoothed (EMA)", points: run.points(.smoothedLoss), color: color, lineWidth: 2)
        let panels = [
            PlotPanel(title: "Training loss", yLabel: PlotMetric.trainLoss.axisLabel, series: [raw, smoothed]),
            PlotPanel(title: "Validation loss", yLabel: PlotMetric.validationLoss.axisLabel,
                      series: [PlotSeries(name: "validation loss", points: run.points(.validationLoss), color: color,
                                          lineWidth: 1.5, markers: true)], showsLegend: false),
            PlotPanel(title: "CLIP score", yLabel: PlotMetric.clipScore.axisLabel,
                      series: [PlotSeries(name: "CLIP score", points: run.points(.clipScore), color: color,
                                          lineWidth: 1.5, markers: true)], showsLegend: false),
            PlotPanel(title: "Learning rate", yLabel: PlotMetric.learningRate.axisLabel,
                      series: [PlotSeries(name: "learning rate", points: run.points(.learningRate), color: color)],
                      showsLegend: false),
        ]
        return PlotFigure(title: run.name, panels: panels, columns: 2)
    }

    /// One metric across runs, a line per run (named in the legend).
    public static func overlayFigure(_ runs: [RunLog], metric: PlotMetric, title: String) -> PlotFigure {
        let series = runs.enumerated().map { i, run -> PlotSeries in
            var points = run.points(metric)
            // Training loss: a run logged without smoothing still shows its raw curve.
            if metric == .smoothedLoss && points.isEmpty { points = run.points(.trainLoss) }
            let sparse = metric == .validationLoss || metric == .clipScore
            return PlotSeries(name: run.name, points: points, color: palette[i % palette.count], lineWidth: 1.8, markers: sparse)
        }
        var figure = PlotFigure(panels: [PlotPanel(title: title, yLabel: metric.axisLabel, series: series)])
        figure.panelWidth = 640
        figure.panelHeight = 400
        return figure
    }

    /// Every figure with its file stem: per run `<run>`, then the overlays.
    public static func figures(_ runs: [RunLog]) -> [(String, PlotFigure)] {
        var used = Set(overlays.map(\.0))
        var result: [(String, PlotFigure)] = []
        for (i, run) in runs.enumerated() {
            var stem = "run_" + fileStem(run.name)
            var n = 2
            while used.contains(stem) {
                stem = "run_\(fileStem(run.name))_\(n)"
                n += 1
            }
            used.insert(stem)
            result.append((stem, runFigure(run, color: palette[i % palette.count])))
        }
        for (stem, title, metric) in overlays {
            result.append((stem, overlayFigure(runs, metric: metric, title: title)))
        }
        return result
    }

    /// Letters, digits, '-', '_' and '.'; everything else becomes '_'.
    static func fileStem(_ name: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
        let stem = String(name.map { allowed.contains($0) ? $0 : "_" })
        return stem.isEmpty || stem.allSatisfy({ $0 == "." }) ? "run" : stem
    }

    /// Writes `<stem>.svg` (and `<stem>.png` at `pngScale` pixels per unit, unless nil) for every figure
    /// into `directory`; returns the files. A file whose bytes would not change is left untouched (its
    /// modification time too, for tools that watch the folder); others are replaced through a temporary name.
    @discardableResult
    public static func write(_ runs: [RunLog], to directory: URL, pngScale: Int? = 2) throws -> [URL] {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw ReportError("\(directory.path): cannot create the plot folder (\(error.localizedDescription))")
        }
        AtomicWrite.removeTemporaries(in: directory)  // what a killed plot's writes left half done
        var written: [URL] = []
        for (stem, figure) in figures(runs) {
            let svg = directory.appendingPathComponent(stem + ".svg")
            try writeIfChanged(Data(figure.svg().utf8), to: svg)
            written.append(svg)
            if let pngScale {
                let png = directory.appendingPathComponent(stem + ".png")
                try writeIfChanged(Data(try figure.image(scale: pngScale).pngData()), to: png)
                written.append(png)
            }
        }
        return written
    }

    static func writeIfChanged(_ data: Data, to url: URL) throws {
        if let old = try? Data(contentsOf: url), old == data { return }
        do {
            try writeAtomically(data, to: url)
        } catch {
            throw ReportError("\(url.path): cannot write (\(error.localizedDescription))")
        }
    }
}
