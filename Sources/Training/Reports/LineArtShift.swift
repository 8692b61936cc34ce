// The number that shows a style LoRA learned: the ink coverage (LineArtMetrics) of the comparison grid's
// cells, per column, beside the training images'. A LoRA that learned the dataset's line weight moves its
// samples' coverage from the base model's value toward the dataset's; one that learned nothing leaves it.
import Evaluation
import Foundation
import Imaging

public struct LineArtShift: Equatable, Sendable {
    /// Mean ink coverage of the prepared training images.
    public var dataset: Double
    /// Mean ink coverage of the base model's cells.
    public var base: Double
    /// Mean ink coverage of each run's cells at its largest LoRA scale, by run folder path.
    public var runs: [String: Double]

    /// How far a run's samples moved from the base model toward the dataset: 0 not at all, 1 all the way.
    public func progress(_ coverage: Double) -> Double {
        abs(dataset - base) < 1e-9 ? 0 : (coverage - base) / (dataset - base)
    }

    /// Measures the cells `comparison` has on disk (nil when its base cells are missing) and `datasetImages`.
    public static func measure(_ comparison: Comparison, datasetImages: [URL]) throws -> LineArtShift? {
        func mean(_ urls: [URL]) throws -> Double? {
            let files = urls.filter { FileManager.default.fileExists(atPath: $0.path) }
            guard !files.isEmpty, files.count == urls.count else { return nil }
            return try files.map { try LineArtMetrics.inkCoverage(try ImageDecoder.read($0).image) }.reduce(0, +) / Double(files.count)
        }
        func cells(_ column: CompareColumn) -> [URL] {
            comparison.rows.map { comparison.outputDirectory.appendingPathComponent(comparison.cellPath(row: $0, column: column)) }
        }
        guard let baseColumn = comparison.columns.first(where: \.isBase), let base = try mean(cells(baseColumn)),
              let dataset = try mean(datasetImages) else { return nil }
        var runs: [String: Double] = [:]
        for run in Set(comparison.columns.compactMap(\.run)) {
            let strongest = comparison.columns.filter { $0.run == run }.max { ($0.scale ?? 1) < ($1.scale ?? 1) }
            if let strongest, let coverage = try mean(cells(strongest)) { runs[run] = coverage }
        }
        return LineArtShift(dataset: dataset, base: base, runs: runs)
    }
}
