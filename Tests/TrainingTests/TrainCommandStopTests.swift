// `inkwell train` as a user runs it (the debug binary that `swift build` makes), stopped with SIGTERM during
// the step-0 sample pass, the stage whose Ctrl-C was once ignored for ten minutes: it exits 0 within seconds,
// says how to continue, and leaves a saved state whose evaluation --resume redoes.
import Foundation
import RunFiles
import Testing
import TestSupport
@testable import Training

@Suite struct TrainCommandStopTests {
    static let binary = Fixtures.packageRoot.appendingPathComponent(".build/debug/inkwell")

    /// Runs `inkwell arguments…` to the end (in `directory`, with `environment` instead of this process's, when
    /// given); its exit status and output.
    static func inkwell(_ arguments: [String], in directory: URL? = nil, environment: [String: String]? = nil) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test func sigtermDuringTheStepZeroSamplesSavesTheStateAndExitsZero() throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build first: swift build --build-tests")
        let dir = try temporaryDirectory()
        let raw = dir.appendingPathComponent("raw")
        _ = try SyntheticLineArt.write(try SyntheticLineArt.make(count: 8, size: 64, seed: 3), to: raw)
        let (prepared, prepareOutput) = try Self.inkwell(["prepare", "--input", raw.path, "--output", dir.appendingPathComponent("data").path,
                                                          "--name", "ds", "--resolution", "64"])
        try #require(prepared == 0, "\(prepareOutput)")
        let model = try Fixtures.url("pipeline", "model")
        let config = dir.appendingPathComponent("train.toml")
        // 32 samples of 1000 denoising steps: the step-0 sample pass takes minutes unless the stop is honoured in it.
        try """
            [model]
            path = "\(model.path)"
            device = "cpu"
            [data]
            dataset = "\(dir.appendingPathComponent("data/ds").path)"
            captions = "vanilla"
            resolution = 64
            [training]
            max_steps = 4
            batch_size = 1
            [samples]
            every = 2
            prompts = ["a ring", "a star", "a petal", "stripes"]
            seeds = [1, 2, 3, 4, 5, 6, 7, 8]
            steps = 1000
            size = 64
            [output]
            dir = "\(dir.appendingPathComponent("runs").path)"
            name = "stopped"
            """.write(to: config, atomically: true, encoding: .utf8)

        let process = shellProcess(Self.binary, ["train", "--config", config.path])
        let log = dir.appendingPathComponent("train.out")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        // The step-0 validation line is printed just before the samples start.
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning, Date() < deadline,
              !(String(data: (try? Data(contentsOf: log)) ?? Data(), encoding: .utf8) ?? "").contains("step 0: validation loss") {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let early = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        try #require(process.isRunning, "the run ended before the samples: \(early)")
        Thread.sleep(forTimeInterval: 0.5)
        let sent = Date()
        kill(process.processIdentifier, SIGTERM)
        let stopDeadline = Date().addingTimeInterval(30)
        while process.isRunning, Date() < stopDeadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        let output = try String(contentsOf: log, encoding: .utf8)
        let seconds = Date().timeIntervalSince(sent)

        #expect(process.terminationReason == .exit && process.terminationStatus == 0, "\(output)")
        #expect(seconds < 30, "stopped \(seconds) s after SIGTERM")
        #expect(output.contains("to continue: ") && output.contains("--resume"), "\(output)")
        #expect(output.contains("stopped during step 0's validation and samples"), "\(output)")
        let run = RunFolder(dir.appendingPathComponent("runs/stopped"))
        let state = try #require(TrainerState.read(run), "no saved state: \(output)")
        #expect(state.step == 0 && state.pendingEvaluation != nil)
        #expect(!FileManager.default.fileExists(atPath: run.samples(step: 0).path))
    }
}
