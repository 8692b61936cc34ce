// `prepare` reruns: nothing to do when nothing changed; exactly the changed, new or gone images otherwise;
// every image after a settings change or with --force; an interrupted run leaves a manifest that lists only
// finished, verifiable outputs, and the next run does the rest.
import Foundation
import Imaging
import Testing
import TestSupport
@testable import Training

@Suite struct PrepareIdempotenceTests {
    @Test func secondRunDoesNothing() throws {
        let (raw, dataset) = try DatasetTest.rawCopy()
        let first = try DatasetTest.run(DatasetTest.options(raw, dataset))
        #expect(first.processed.count == 10)
        let output = dataset.appendingPathComponent("images/lineart.png")
        let written = try DatasetTest.modificationDate(output)
        let manifestBytes = try Data(contentsOf: dataset.appendingPathComponent("manifest.json"))

        let second = try DatasetTest.run(DatasetTest.options(raw, dataset))
        #expect(second.processed.isEmpty)
        #expect(second.removed.isEmpty)
        #expect(second.upToDate == first.processed)
        #expect(try DatasetTest.modificationDate(output) == written, "an up-to-date output is not rewritten")
        #expect(try Data(contentsOf: dataset.appendingPathComponent("manifest.json")) == manifestBytes)
    }

    @Test func changedContentRedoesExactlyThatImage() throws {
        let (raw, dataset) = try DatasetTest.rawCopy()
        _ = try DatasetTest.run(DatasetTest.options(raw, dataset))
        let before = try #require(try DatasetManifest.load(datasetDirectory: dataset)?.images.first { $0.source == "tall.png" })
        try DatasetTest.writeImage(raw.appendingPathComponent("tall.png"), width: 90, height: 240, seed: 9)

        let rerun = try DatasetTest.run(DatasetTest.options(raw, dataset))
        #expect(rerun.processed == ["tall.png"])
        #expect(rerun.upToDate.count == 9)
        let after = try #require(rerun.manifest.images.first { $0.source == "tall.png" })
        #expect(after.sourceSHA256 != before.sourceSHA256)
        #expect(after.outputSHA256 != before.outputSHA256)
        #expect(after.output == before.output, "a changed source keeps its output name")
        #expect(after.split == before.split, "and its split")
    }

    @Test func removedSourceRemovesItsOutput() throws {
        let (raw, dataset) = try DatasetTest.rawCopy()
        _ = try DatasetTest.run(DatasetTest.options(raw, dataset))
        try FileManager.default.removeItem(at: raw.appendingPathComponent("sub/nested.png"))
        let rerun = try DatasetTest.run(DatasetTest.options(raw, dataset))
        #expect(rerun.removed == ["sub/nested.png"])
        #expect(rerun.processed.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dataset.appendingPathComponent("images/sub__nested.png").path))
        #expect(try DatasetManifest.load(datasetDirectory: dataset)?.images.contains { $0.source == "sub/nested.png" } == false)
    }

    @Test func changedSettingsOrForceRedoEverything() throws {
        let (raw, dataset) = try DatasetTest.rawCopy()
        _ = try DatasetTest.run(DatasetTest.options(raw, dataset))
        let bigger = try DatasetTest.run(DatasetTest.options(raw, dataset, resolution: 128))
        #expect(bigger.processed.count == 10 && bigger.upToDate.isEmpty)
        #expect(bigger.manifest.images.allSatisfy { $0.width == 128 && $0.settings.resolution == 128 })
        let padded = try DatasetTest.run(DatasetTest.options(raw, dataset, resolution: 128, fit: .pad))
        #expect(padded.processed.count == 10)
        let cleaned = try DatasetTest.run(DatasetTest.options(raw, dataset, resolution: 128, fit: .pad, clean: true))
        #expect(cleaned.processed.count == 10)
        let forced = try DatasetTest.run(DatasetTest.options(raw, dataset, resolution: 128, fit: .pad, clean: true, force: true))
        #expect(forced.processed.count == 10 && forced.upToDate.isEmpty)
        let again = try DatasetTest.run(DatasetTest.options(raw, dataset, resolution: 128, fit: .pad, clean: true))
        #expect(again.processed.isEmpty && again.upToDate.count == 10)
    }

    @Test func damagedOrDeletedOutputIsRedone() throws {
        let (raw, dataset) = try DatasetTest.rawCopy()
        _ = try DatasetTest.run(DatasetTest.options(raw, dataset))
        try Data([1, 2, 3]).write(to: dataset.appendingPathComponent("images/grey.png"))
        try FileManager.default.removeItem(at: dataset.appendingPathComponent("images/photo.png"))
        let rerun = try DatasetTest.run(DatasetTest.options(raw, dataset))
        #expect(rerun.processed == ["grey.png", "photo.jpg"])
        #expect(try Image.load(dataset.appendingPathComponent("images/grey.png")).width == 64)
    }

    @Test func interruptedRunLeavesAConsistentManifestAndTheNextRunFinishes() throws {
        let (raw, dataset) = try DatasetTest.rawCopy()
        var started = 0
        let partial = try Preparer(DatasetTest.options(raw, dataset)).run { progress in
            guard progress.phase == .processing, !progress.file.isEmpty else { return true }
            started += 1
            return started <= 4  // stop at the fifth file of the processing phase
        }
        #expect(partial.interrupted)
        let manifest = try #require(try DatasetManifest.load(datasetDirectory: dataset))
        #expect(manifest.images.count == partial.processed.count)
        #expect(partial.processed.count >= 1 && partial.processed.count < 10)
        for entry in manifest.images {
            let data = try Data(contentsOf: dataset.appendingPathComponent(entry.output))
            #expect(ContentHash.sha256(data) == entry.outputSHA256, "\(entry.output) is complete and recorded")
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dataset.appendingPathComponent("images").path)
        #expect(!leftovers.contains { $0.hasSuffix(".tmp") })

        let rest = try DatasetTest.run(DatasetTest.options(raw, dataset))
        #expect(Set(rest.processed).isDisjoint(with: partial.processed))
        #expect(rest.processed.count + partial.processed.count == 10)
        #expect(rest.upToDate.sorted() == partial.processed.sorted())
    }

    @Test func aCopyOfAPreparedImageNeverReplacesIt() throws {
        let (raw, dataset) = try DatasetTest.rawCopy()
        _ = try DatasetTest.run(DatasetTest.options(raw, dataset))
        // "a_copy.png" sorts before "wide.png"; the prepared one stays, the new copy is the duplicate.
        try FileManager.default.copyItem(at: raw.appendingPathComponent("wide.png"), to: raw.appendingPathComponent("a_copy.png"))
        let rerun = try DatasetTest.run(DatasetTest.options(raw, dataset))
        #expect(rerun.processed.isEmpty && rerun.removed.isEmpty)
        #expect(rerun.skipped.first { $0.source == "a_copy.png" }?.reason == "exact duplicate of wide.png (same SHA-256)")
    }

    /// Was: a named pipe was reported as an "empty file" and symbolic-link loops were skipped without a word.
    @Test func pipesAndBrokenLinksAreReportedByWhatTheyAre() throws {
        let (raw, dataset) = try DatasetTest.rawCopy()
        #expect(mkfifo(raw.appendingPathComponent("pipe.png").path, 0o600) == 0)
        try FileManager.default.createSymbolicLink(atPath: raw.appendingPathComponent("loop.png").path, withDestinationPath: "loop.png")
        try FileManager.default.createSymbolicLink(atPath: raw.appendingPathComponent("gone.png").path, withDestinationPath: "missing.png")
        let report = try DatasetTest.run(DatasetTest.options(raw, dataset))
        func reason(_ source: String) -> String? { report.skipped.first { $0.source == source }?.reason }
        #expect(reason("pipe.png") == "is a named pipe (FIFO), not a regular file")
        #expect(reason("loop.png") == "is a symbolic link loop")
        #expect(reason("gone.png") == "is a symbolic link to nothing")
        #expect(!report.processed.isEmpty)
    }

    @Test func badArgumentsAndADamagedManifestAreClearErrors() throws {
        let (raw, dataset) = try DatasetTest.rawCopy()
        #expect(throws: DatasetError.self) { try Preparer(DatasetTest.options(raw, dataset, resolution: 500)) }
        #expect(throws: DatasetError.self) { try Preparer(DatasetTest.options(raw, dataset, maxUpscale: 0.5)) }
        #expect(throws: DatasetError.self) { try ValidationSplit(fraction: 1.5) }
        let missing = DatasetTest.options(raw.appendingPathComponent("nope"), dataset)
        #expect(throws: DatasetError.self) { try DatasetTest.run(missing) }

        _ = try DatasetTest.run(DatasetTest.options(raw, dataset))
        try Data("{ not json".utf8).write(to: dataset.appendingPathComponent("manifest.json"))
        do {
            _ = try DatasetTest.run(DatasetTest.options(raw, dataset))
            Issue.record("a damaged manifest must stop the run")
        } catch let error as DatasetError {
            #expect(error.message.contains("manifest.json") && error.message.contains("--force"))
        }
        let forced = try DatasetTest.run(DatasetTest.options(raw, dataset, force: true))
        #expect(forced.processed.count == 10)
    }
}
