// The LoRA file names a run writes (kohya's output_name habit) and reads back, including runs written before.
import Foundation
import Testing
import RunFiles

@Suite struct RunFolderTests {
    @Test func loraFilesCarryTheRunsName() {
        let run = RunFolder(URL(fileURLWithPath: "/runs/inkstyle"))
        #expect(run.loraName == "inkstyle")
        #expect(run.final.lastPathComponent == "inkstyle.safetensors")
        #expect(run.best.lastPathComponent == "inkstyle-best.safetensors")
        #expect(run.checkpoint(step: 200).lastPathComponent == "inkstyle-step000200.safetensors")
        for name in [CheckpointName.final, .best, .step(200), .step(1_234_567)] {
            #expect(run.checkpointName(fileName: run.fileName(name)) == name)
        }
        // A PEFT copy, another run's file and a user's file are not this run's checkpoints.
        for other in ["inkstyle-best.peft.safetensors", "other-best.safetensors", "inkstyle-step12a.safetensors",
                      "inkstyle.ckpt", "notes.txt"] {
            #expect(run.checkpointName(fileName: other) == nil)
        }
    }

    @Test func olderRunsKeepTheirNames() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("runfolder-\(UUID().uuidString)/old")
        defer { try? FileManager.default.removeItem(at: root.deletingLastPathComponent()) }
        let run = RunFolder(root)
        try FileManager.default.createDirectory(at: run.lora, withIntermediateDirectories: true)
        for file in ["best.safetensors", "final.safetensors", "step_000100.safetensors", "final.peft.safetensors"] {
            try Data().write(to: run.lora.appendingPathComponent(file))
        }
        #expect(run.best.lastPathComponent == "best.safetensors" && run.final.lastPathComponent == "final.safetensors")
        #expect(run.isFinished)
        #expect(run.checkpoints().map(\.name) == [.best, .final, .step(100)])
        // A checkpoint the old run never wrote takes the new name.
        #expect(run.checkpoint(step: 300).lastPathComponent == "old-step000300.safetensors")
    }

    @Test func theNameComesFromTheSavedConfig() throws {
        var config = TrainingConfig()
        config.model.path = "model"
        config.data.dataset = "data"
        config.output.dir = FileManager.default.temporaryDirectory.appendingPathComponent("runfolder-\(UUID().uuidString)").path
        config.output.name = "vanilla"
        config.output.loraName = "dragons-vanilla"
        defer { try? FileManager.default.removeItem(atPath: config.output.dir) }
        #expect(config.runFolder.final.lastPathComponent == "dragons-vanilla.safetensors")
        try FileManager.default.createDirectory(at: config.runDirectory, withIntermediateDirectories: true)
        try config.toml().write(to: config.runFolder.config, atomically: true, encoding: .utf8)
        // What a reader that knows only the folder finds: the trainer's names.
        #expect(RunFolder(config.runDirectory) == config.runFolder)
        config.output.loraName = "a/b"
        #expect(throws: ConfigError.self) { try config.validate() }
    }
}
