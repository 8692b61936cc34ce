// The readers on their own: the live log reader (incremental, half-written lines, rewrites), the runs
// scan, and the path gate. The files are written by the trainer's writers (RunFiles).
import Foundation
import RunFiles
import Testing
@testable import Dashboard

@Suite struct ReadersTests {
    @Test func logStoreReadsOnlyCompleteAppendedLines() async throws {
        let fixture = try RunsFixture()
        defer { fixture.remove() }
        let store = LogStore()
        let url = fixture.folder("r").log
        let rows = [RunsFixture.row(step: 0, train: nil, smoothed: nil, val: 0.2, lr: 0),
                    RunsFixture.row(step: 1, train: 0.3, smoothed: 0.3, lr: 1e-5)]
        try fixture.writeLog(rows, to: "r")
        #expect(await store.rows(url).map(\.step) == [0, 1])

        // Half a row (the trainer is mid-write): not read yet, then read once complete.
        let third = RunsFixture.row(step: 2, train: 0.28, smoothed: 0.298, val: nil, lr: 2e-5).csv + "\n"
        let fourth = TrainingLogRow(step: 3, epoch: 0, trainLoss: .nan, smoothedLoss: 0.29, learningRate: 2e-5, gradNorm: .infinity,
                                    nonFinite: 1).csv + "\n"
        let cut = third.index(third.startIndex, offsetBy: 12)
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(third[..<cut].utf8))
        #expect(await store.rows(url).map(\.step) == [0, 1])
        try handle.write(contentsOf: Data((third[cut...] + fourth).utf8))
        try handle.close()
        let read = await store.rows(url)
        #expect(read.map(\.step) == [0, 1, 2, 3])
        #expect(read[2].smoothedLoss == 0.298 && read[2].learningRate == 2e-5)
        #expect(read[3].trainLoss == nil && read[3].gradNorm == nil && read[3].nonFinite == 1)

        // Rewritten (a resumed run): read again from the start.
        try fixture.writeLog([RunsFixture.row(step: 0, train: nil, smoothed: nil, val: 0.25, lr: 0)], to: "r")
        #expect(await store.rows(url).map(\.validationLoss) == [0.25])
        try FileManager.default.removeItem(at: url)
        #expect(await store.rows(url).isEmpty)
    }

    @Test func scanFindsRunsPipelinesAndSkipsTheRest() throws {
        let fixture = try RunsFixture()
        defer { fixture.remove() }
        for run in ["solo", "pipe/a", "pipe/group/b", ".trash/old", "solo/samples/inner", "../outside"] {
            try fixture.writeLog([], to: run)
        }
        try fixture.writeConfig(RunsFixture.config(maxSteps: 5, samplesEvery: 0, captions: .vanilla), to: "fresh")
        try PipelineSummaryFile.write([], name: "p", to: fixture.url("pipe"))
        try fixture.write("[pipeline]\n", to: "pipe/config.toml")
        try PipelineSummaryFile.write([], name: "side by side", to: fixture.url("side"))
        try FileManager.default.createSymbolicLink(at: fixture.url("linked-out"), withDestinationURL: fixture.base.appendingPathComponent("outside"))

        let scan = try RunsRoot(fixture.root).scan()
        #expect(scan.runs.map(\.id) == ["fresh", "pipe/a", "pipe/group/b", "solo"])
        #expect(scan.pipelines.map(\.id) == ["pipe", "side"])
        #expect(scan.run("pipe/group/b")?.pipeline == "pipe")
        #expect(scan.run("pipe/group/b")?.group == "pipe/group")
        #expect(scan.run("solo")?.pipeline == nil)
    }

    @Test func pathGate() throws {
        let fixture = try RunsFixture.standard()
        defer { fixture.remove() }
        let root = try RunsRoot(fixture.root)
        #expect(try root.file("alpha/log.csv").lastPathComponent == "log.csv")
        #expect(throws: PathRejection.forbiddenComponent("..")) { try root.file("alpha/../beta/log.csv") }
        #expect(throws: PathRejection.forbiddenComponent("")) { try root.file("alpha//log.csv") }
        #expect(throws: PathRejection.forbiddenComponent("/")) { try root.file("/etc/passwd") }
        #expect(throws: PathRejection.empty) { try root.file("") }
        #expect(throws: PathRejection.notFound("alpha")) { try root.file("alpha") }
        #expect(throws: PathRejection.badEncoding("%e0%80")) { try root.file(encoded: "%e0%80") }
        #expect(throws: PathRejection.forbiddenComponent("%2e%2e")) { try root.file(encoded: "%252e%252e") }
        #expect(throws: (any Error).self) { try RunsRoot(fixture.base.appendingPathComponent("missing")) }
        #expect(throws: (any Error).self) { try RunsRoot(fixture.base.appendingPathComponent("secret.txt")) }
    }
}
