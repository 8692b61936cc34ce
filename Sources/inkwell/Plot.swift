// `inkwell plot`: loss, validation-loss, CLIP-score and learning-rate curves of runs, as SVG and PNG.
import ArgumentParser
import Foundation
import RunFiles
import Training

struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Plot training curves (train loss raw and smoothed, validation loss, CLIP score, lr) of one or more runs.",
        discussion: """
        Writes run_<name>.svg/.png per run (four panels) and overlay_<metric>.svg/.png with a line per run. A folder \
        without a log.csv stands for the runs inside it (--runs runs/). Missing metrics show "no data"; NaN losses \
        break the line. The same logs give the same files.
        """)

    @Option(parsing: .upToNextOption, help: "Run folders (runs/<name>, each with a log.csv), or folders of runs.")
    var runs: [String]
    @Option(help: "Output folder (default: <first run's parent>/plots).") var out: String?
    @Flag(name: .customLong("no-png"), help: "Write only the SVG files.") var noPNG = false
    @Option(name: .customLong("png-scale"), help: "PNG pixels per SVG unit (1 to 4).") var pngScale = 2

    func run() throws {
        guard !runs.isEmpty else { throw ValidationError("--runs: name at least one run folder") }
        guard (1...4).contains(pngScale) else { throw ValidationError("--png-scale must be 1 to 4, got \(pngScale)") }
        let logs: [RunLog]
        do {
            logs = try RunLog.load(runs.map { URL(fileURLWithPath: $0) })
        } catch let error as ReportError {
            throw CommandError(error.description)
        }
        let first = URL(fileURLWithPath: runs[0]).standardizedFileURL
        // A folder of runs puts the plots inside it; a run folder puts them beside it.
        let parent = FileManager.default.fileExists(atPath: first.appendingPathComponent("log.csv").path)
            ? first.deletingLastPathComponent() : first
        let directory = out.map { URL(fileURLWithPath: $0) } ?? parent.appendingPathComponent("plots")
        for log in logs {
            let rows = log.rows
            let last = rows.last.map { "last step \($0.step)" } ?? "empty log"
            print("\(log.name): \(rows.count) rows, \(last)")
        }
        let files: [URL]
        do {
            files = try TrainingPlots.write(logs, to: directory, pngScale: noPNG ? nil : pngScale)
        } catch let error as ReportError {
            throw CommandError(error.description)
        }
        print("wrote \(files.count) files to \(directory.path)")
    }
}
