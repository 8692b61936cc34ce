// <run>/log.csv: one row per logged step, appended live by the trainer while the dashboard and
// `inkwell plot` read it. The header names the columns, and readers go by the header, so a log with
// columns added later (or reordered) still reads. On resume the trainer drops the rows past the resumed
// step (an atomic rewrite), so the log of a resumed run equals an uninterrupted one.
import AtomicFile
import Foundation

public struct TrainingLogRow: Codable, Equatable, Sendable {
    public var step: Int
    public var epoch: Int?
    public var trainLoss: Double?
    public var smoothedLoss: Double?
    public var validationLoss: Double?
    public var clipScore: Double?
    public var learningRate: Double?
    public var gradNorm: Double?
    /// Steps skipped for a non-finite loss so far.
    public var nonFinite: Int?

    public init(step: Int, epoch: Int?, trainLoss: Double? = nil, smoothedLoss: Double? = nil, validationLoss: Double? = nil,
                clipScore: Double? = nil, learningRate: Double?, gradNorm: Double? = nil, nonFinite: Int? = 0) {
        self.step = step
        self.epoch = epoch
        self.trainLoss = trainLoss
        self.smoothedLoss = smoothedLoss
        self.validationLoss = validationLoss
        self.clipScore = clipScore
        self.learningRate = learningRate
        self.gradNorm = gradNorm
        self.nonFinite = nonFinite
    }

    /// The CSV columns, in the order the trainer writes them; also the row's JSON keys.
    public enum Column: String, CodingKey, CaseIterable, Sendable {
        case step, epoch
        case trainLoss = "train_loss", smoothedLoss = "smoothed_loss", validationLoss = "val_loss"
        case clipScore = "clip_score", learningRate = "lr", gradNorm = "grad_norm", nonFinite = "non_finite"
    }
    typealias CodingKeys = Column

    public static let header = Column.allCases.map(\.rawValue).joined(separator: ",")

    /// The row as the trainer writes it: empty cells for absent values, `nan`/`inf` kept.
    public var csv: String {
        func f(_ x: Double?) -> String { x.map { String(format: "%.8g", $0) } ?? "" }
        func i(_ x: Int?) -> String { x.map(String.init) ?? "" }
        return [String(step), i(epoch), f(trainLoss), f(smoothedLoss), f(validationLoss), f(clipScore), f(learningRate),
                f(gradNorm), i(nonFinite)].joined(separator: ",")
    }

    /// The same row with its non-finite numbers absent: what a chart (and JSON, which has no NaN) can show.
    public var finite: TrainingLogRow {
        func f(_ x: Double?) -> Double? { x.flatMap { $0.isFinite ? $0 : nil } }
        return TrainingLogRow(step: step, epoch: epoch, trainLoss: f(trainLoss), smoothedLoss: f(smoothedLoss),
                              validationLoss: f(validationLoss), clipScore: f(clipScore), learningRate: f(learningRate),
                              gradNorm: f(gradNorm), nonFinite: nonFinite)
    }
}

/// Maps a log's header to cell positions and turns lines into rows.
public struct TrainingLogColumns: Sendable, Equatable {
    private var index: [TrainingLogRow.Column: Int] = [:]

    /// nil when the header has no `step` column (not a training log).
    public init?(header: Substring) {
        for (i, name) in header.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            if let column = TrainingLogRow.Column(rawValue: name.trimmingCharacters(in: .whitespacesAndNewlines)) {
                index[column] = i
            }
        }
        guard index[.step] != nil else { return nil }
    }

    /// A row; nil when its step is missing or not an integer. Other unreadable cells are absent.
    public func row(_ line: Substring) -> TrainingLogRow? {
        let cells = line.split(separator: ",", omittingEmptySubsequences: false)
        func cell(_ column: TrainingLogRow.Column) -> String? {
            guard let i = index[column], i < cells.count else { return nil }
            let c = cells[i].trimmingCharacters(in: .whitespaces)
            return c.isEmpty ? nil : c
        }
        func number(_ column: TrainingLogRow.Column) -> Double? { cell(column).flatMap(Double.init) }
        func integer(_ column: TrainingLogRow.Column) -> Int? { cell(column).flatMap { Int($0) } }
        guard let step = integer(.step) else { return nil }
        return TrainingLogRow(step: step, epoch: integer(.epoch), trainLoss: number(.trainLoss),
                              smoothedLoss: number(.smoothedLoss), validationLoss: number(.validationLoss),
                              clipScore: number(.clipScore), learningRate: number(.learningRate),
                              gradNorm: number(.gradNorm), nonFinite: integer(.nonFinite))
    }
}

/// Reads a log that may still be growing: each call parses only the complete lines it is given and
/// keeps what it learnt (the header); a trailing line without its newline waits for the next call.
public struct TrainingLogParser: Sendable {
    public private(set) var columns: TrainingLogColumns?

    public init() {}

    /// The rows in the complete lines of `data`, and how many bytes those lines took.
    public mutating func consume(_ data: Data) -> (rows: [TrainingLogRow], bytes: Int) {
        guard let lastNewline = data.lastIndex(of: UInt8(ascii: "\n")) else { return ([], 0) }
        let complete = data[data.startIndex...lastNewline]
        var rows: [TrainingLogRow] = []
        for line in String(decoding: complete, as: UTF8.self).split(separator: "\n") {
            let line = line.hasSuffix("\r") ? line.dropLast() : line
            guard let columns else {
                columns = TrainingLogColumns(header: line)
                continue
            }
            if let row = columns.row(line) { rows.append(row) }
        }
        return (rows, complete.count)
    }
}

/// The trainer's side: creates the log, appends rows, drops rows past a resumed step.
public final class TrainingLog {
    public let url: URL

    /// Opens (or creates) the log; with `truncateAfter`, drops rows of later steps (a resumed run).
    public init(url: URL, truncateAfter step: Int? = nil) throws {
        self.url = url
        let exists = FileManager.default.fileExists(atPath: url.path)
        if let step, exists {
            try writeAll(try Self.read(url).filter { $0.step <= step })
        } else if !exists || step == nil {
            try writeAll([])
        }
    }

    /// Opens an existing log to append to, as it is.
    public init(appendingTo url: URL) { self.url = url }

    func writeAll(_ rows: [TrainingLogRow]) throws {
        let text = ([TrainingLogRow.header] + rows.map(\.csv)).joined(separator: "\n") + "\n"
        try writeAtomically(Data(text.utf8), to: url)
    }

    /// Appends one row and flushes it, so readers see it at once.
    public func append(_ row: TrainingLogRow) throws {
        try AtomicFile.append(Data((row.csv + "\n").utf8), to: url)
    }

    /// Every complete row of a log, `nan`/`inf` kept; an error when the file cannot be read. A last line without
    /// its newline is a row cut short (a run killed while appending it, or still writing it) and is left out:
    /// read whole, "12,0,0.1" of "12,0,0.1534,…" would be a row of wrong numbers, which a resumed run would keep.
    public static func read(_ url: URL) throws -> [TrainingLogRow] {
        var parser = TrainingLogParser()
        return parser.consume(try Data(contentsOf: url)).rows
    }
}
