// log.csv both ways: what the trainer writes reads back equal (nan and inf kept, absent cells absent), and
// readers go by the header, so a log whose columns were reordered or extended still reads.
import Foundation
import Testing
import TestSupport
@testable import RunFiles

@Suite struct TrainingLogTests {
    @Test func rowsRoundTripThroughTheFile() throws {
        let dir = try temporaryDirectory()
        let log = try TrainingLog(url: dir.appendingPathComponent("log.csv"))
        let rows = [TrainingLogRow(step: 0, epoch: 0, validationLoss: 0.25, learningRate: 0),
                    TrainingLogRow(step: 1, epoch: 0, trainLoss: 0.3, smoothedLoss: 0.3, clipScore: 0.27, learningRate: 1e-4,
                                   gradNorm: 0.9),
                    TrainingLogRow(step: 2, epoch: 1, trainLoss: .infinity, smoothedLoss: 0.3, learningRate: 1e-4, nonFinite: 1)]
        for row in rows { try log.append(row) }
        let read = try TrainingLog.read(log.url)
        #expect(read == rows)
        #expect(try String(contentsOf: log.url, encoding: .utf8).hasPrefix(TrainingLogRow.header + "\n"))
        // NaN is not equal to itself: compared through its text.
        try log.append(TrainingLogRow(step: 3, epoch: 1, trainLoss: .nan, learningRate: 1e-4, nonFinite: 2))
        #expect(try TrainingLog.read(log.url).last?.trainLoss?.isNaN == true)
        #expect(try TrainingLog.read(log.url).last?.finite.trainLoss == nil)

        // A resumed run keeps the rows up to its step.
        let resumed = try TrainingLog(url: log.url, truncateAfter: 1)
        #expect(try TrainingLog.read(resumed.url) == Array(rows.prefix(2)))
    }

    /// A run killed while appending a row (or a power cut) can leave its first bytes: "2,1,0.3" of
    /// "2,1,0.31,…". Read whole, that was a row of wrong numbers, which a resumed run kept (KillSafetyTests).
    @Test func aRowCutShortIsNotRead() throws {
        let dir = try temporaryDirectory()
        let log = try TrainingLog(url: dir.appendingPathComponent("log.csv"))
        let rows = [TrainingLogRow(step: 1, epoch: 0, trainLoss: 0.3, learningRate: 1e-4),
                    TrainingLogRow(step: 2, epoch: 1, trainLoss: 0.3125, learningRate: 1e-4)]
        try log.append(rows[0])
        let cut = rows[1].csv.prefix(7)
        try (try String(contentsOf: log.url, encoding: .utf8) + cut).write(to: log.url, atomically: true, encoding: .utf8)
        #expect(try TrainingLog.read(log.url) == [rows[0]])
        // A resume at step 2 drops it from the file, and appends after whole rows only.
        let resumed = try TrainingLog(url: log.url, truncateAfter: 2)
        try resumed.append(rows[1])
        #expect(try TrainingLog.read(log.url) == rows)
        #expect(!(try String(contentsOf: log.url, encoding: .utf8)).contains(cut + "\n"))
    }

    @Test func columnsFollowTheHeader() throws {
        let columns = try #require(TrainingLogColumns(header: "epoch,step,val_loss,extra,lr"))
        let row = try #require(columns.row("3,120,0.11,whatever,1e-4"))
        #expect(row == TrainingLogRow(step: 120, epoch: 3, validationLoss: 0.11, learningRate: 1e-4, nonFinite: nil))
        #expect(columns.row("3,,0.11,x,1") == nil)
        #expect(TrainingLogColumns(header: "a,b,c") == nil)
    }

    @Test func theParserWaitsForAWholeLine() {
        var parser = TrainingLogParser()
        let line = TrainingLogRow(step: 7, epoch: 0, trainLoss: 0.2, learningRate: 1e-4).csv
        let first = parser.consume(Data((TrainingLogRow.header + "\n" + line.prefix(5)).utf8))
        #expect(first.rows.isEmpty && first.bytes == TrainingLogRow.header.utf8.count + 1)
        let second = parser.consume(Data((line + "\n").utf8))
        #expect(second.rows.map(\.step) == [7] && second.bytes == line.utf8.count + 1)
    }

    @Test func jsonKeysAreTheColumnNames() throws {
        let row = TrainingLogRow(step: 5, epoch: 1, validationLoss: 0.1, learningRate: 2e-5, gradNorm: 0.5)
        let object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(row)) as? [String: Any])
        #expect(Set(object.keys) == ["step", "epoch", "val_loss", "lr", "grad_norm", "non_finite"])
        #expect(Set(TrainingLogRow.header.split(separator: ",").map(String.init)).isSuperset(of: object.keys))
    }
}
