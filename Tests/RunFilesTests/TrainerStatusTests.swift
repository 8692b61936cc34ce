// status.json both ways: every state reads back as written (a stop's signal, a failure's error), the state
// is flat in the file for other readers, and an unknown state is refused rather than guessed.
import Foundation
import Testing
import TestSupport
@testable import RunFiles

@Suite struct TrainerStatusTests {
    @Test func everyStateRoundTripsThroughTheFile() throws {
        let folder = RunFolder(try temporaryDirectory())
        #expect(TrainerStatus.read(folder) == nil)
        let started = Date(timeIntervalSince1970: 1_800_000_000)
        for state: TrainerStatus.State in [.running, .stopped(signal: "SIGTERM"), .stopped(signal: nil), .finished,
                                           .failed(error: "out of memory: CUDA")] {
            let status = TrainerStatus(state: state, step: 120, totalSteps: 1000, stepsPerSecond: 2.5, etaSeconds: 352,
                                       elapsedSeconds: 48.25, pid: 4242, host: "gpu-7", startedAt: started,
                                       heartbeat: started.addingTimeInterval(48))
            try status.write(folder)
            #expect(TrainerStatus.read(folder) == status)
        }
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.status)) as? [String: Any])
        #expect(json["state"] as? String == "failed" && json["error"] as? String == "out of memory: CUDA")
        #expect(json["heartbeat"] as? String == "2027-01-15T08:00:48Z")
        #expect(folder.status.path == folder.root.appendingPathComponent("status.json").path)
    }

    @Test func anUnknownStateIsRefused() throws {
        let status = TrainerStatus(state: .running, step: 0, totalSteps: 1, elapsedSeconds: 0, startedAt: Date())
        let text = String(decoding: try status.encoded(), as: UTF8.self).replacingOccurrences(of: "\"running\"", with: "\"paused\"")
        #expect(throws: DecodingError.self) { try TrainerStatus(decoding: Data(text.utf8)) }
        #expect(status.pid == ProcessInfo.processInfo.processIdentifier && status.host == TrainerStatus.currentHost)
        #expect(!TrainerStatus.currentHost.isEmpty)
    }
}

/// summary.json's run folders: written relative to the pipeline's folder, resolved back; absolute ones
/// from older summaries still resolve, also after the runs moved.
@Suite struct PipelineSummaryFolderTests {
    func row(_ variant: String, folder: String) -> PipelineRunResult {
        PipelineRunResult(variant: variant, bestStep: 10, bestValidationLoss: 0.1, finalValidationLoss: 0.12, clipScore: nil,
                          steps: 20, seconds: 4, stepsPerSecond: 5, folder: folder)
    }

    @Test func foldersAreWrittenRelativeAndResolveBack() throws {
        let dir = try temporaryDirectory()
        let pipeline = dir.appendingPathComponent("runs/pipe")
        let rows = [row("blip", folder: pipeline.appendingPathComponent("blip").path),
                    row("other", folder: dir.appendingPathComponent("runs/elsewhere/other").path)]
        try PipelineSummaryFile.write(rows, name: "pipe", to: pipeline)
        let read = try #require(PipelineSummaryFile.read(in: pipeline))
        #expect(read.map(\.folder) == ["blip", "../elsewhere/other"])
        #expect(read.map { $0.runFolder(in: pipeline).root.standardizedFileURL.path }
                == rows.map { URL(fileURLWithPath: $0.folder).standardizedFileURL.path })
        let markdown = try String(contentsOf: pipeline.appendingPathComponent(PipelineSummaryFile.markdownName), encoding: .utf8)
        #expect(markdown.contains("`blip/lora/") && !markdown.contains(dir.path))
        #expect(relativePath(pipeline, from: pipeline) == ".")
    }

    @Test func anOldAbsoluteFolderStillResolves() throws {
        let dir = try temporaryDirectory()
        let pipeline = dir.appendingPathComponent("runs/pipe")
        let existing = pipeline.appendingPathComponent("blip")
        try FileManager.default.createDirectory(at: existing, withIntermediateDirectories: true)
        // Absolute as the writer used to store them: one that exists, one from where runs/ used to be.
        try PipelineSummaryFile.encoded([row("blip", folder: existing.path), row("vanilla", folder: "/old/runs/pipe/vanilla")]).write(
                to: pipeline.appendingPathComponent(PipelineSummaryFile.fileName))
        let read = try #require(PipelineSummaryFile.read(in: pipeline))
        #expect(read.map { $0.runFolder(in: pipeline).root.path } == [existing.path, pipeline.appendingPathComponent("vanilla").path])
    }
}
