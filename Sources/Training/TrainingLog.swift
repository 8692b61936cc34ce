// runs/<run>/log.csv: one row per logged step, appended live (the dashboard and `inkwell plot` read
// it while training runs). On resume, rows past the resumed step are dropped so the log of a resumed
// run equals an uninterrupted one.
import AtomicFile
import Foundation
import Torch

public struct TrainingLogRow: Equatable, Sendable {
    public var step: Int
    public var epoch: Int
    public var trainLoss: Double?
    public var smoothedLoss: Double?
    public var validationLoss: Double?
    public var clipScore: Double?
    public var learningRate: Double
    public var gradNorm: Double?
    public var nonFinite: Int

    public init(step: Int, epoch: Int, trainLoss: Double? = nil, smoothedLoss: Double? = nil, validationLoss: Double? = nil,
                clipScore: Double? = nil, learningRate: Double, gradNorm: Double? = nil, nonFinite: Int = 0) {
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

    public static let header = "step,epoch,train_loss,smoothed_loss,val_loss,clip_score,lr,grad_norm,non_finite"

    public var csv: String {
        func f(_ x: Double?) -> String { x.map { String(format: "%.8g", $0) } ?? "" }
        return "\(step),\(epoch),\(f(trainLoss)),\(f(smoothedLoss)),\(f(validationLoss)),\(f(clipScore)),\(f(learningRate)),\(f(gradNorm)),\(nonFinite)"
    }

    public init?(csv line: String) {
        let cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard cells.count == 9, let step = Int(cells[0]), let epoch = Int(cells[1]), let lr = Double(cells[6]),
              let nonFinite = Int(cells[8]) else { return nil }
        self.init(step: step, epoch: epoch, trainLoss: Double(cells[2]), smoothedLoss: Double(cells[3]),
                  validationLoss: Double(cells[4]), clipScore: Double(cells[5]), learningRate: lr,
                  gradNorm: Double(cells[7]), nonFinite: nonFinite)
    }
}

public final class TrainingLog {
    public let url: URL

    /// Opens (or creates) the log; with `truncateAfter`, drops rows of later steps (a resumed run).
    public init(url: URL, truncateAfter step: Int? = nil) throws {
        self.url = url
        let fm = FileManager.default
        if let step, fm.fileExists(atPath: url.path) {
            let kept = try Self.read(url).filter { $0.step <= step }
            try writeAll(kept)
        } else if !fm.fileExists(atPath: url.path) || step == nil {
            try writeAll([])
        }
    }

    func writeAll(_ rows: [TrainingLogRow]) throws {
        let text = ([TrainingLogRow.header] + rows.map(\.csv)).joined(separator: "\n") + "\n"
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try writeAtomically(Data(text.utf8), to: url)
    }

    /// Appends one row and flushes it, so readers see it at once.
    public func append(_ row: TrainingLogRow) throws {
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data((row.csv + "\n").utf8))
    }

    public static func read(_ url: URL) throws -> [TrainingLogRow] {
        let text = try String(contentsOf: url, encoding: .utf8)
        return text.split(separator: "\n").dropFirst().compactMap { TrainingLogRow(csv: String($0)) }
    }
}
