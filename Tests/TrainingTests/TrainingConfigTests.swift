import Foundation
import Testing
@testable import Training

@Suite struct TrainingConfigTests {
    let minimal = """
        [model]
        path = "models/sd15"
        [data]
        dataset = "data/processed/tattoo"
        """

    @Test func absentKeysTakeDefaultsAndOverridesApply() throws {
        let config = try TrainingConfig.parse(minimal + "\n[lora]\nrank = 8\n",
                                              overrides: ["training.max_steps=25", "model.device=cpu",
                                                          "lora.targets=[\"to_q\", \"to_v\"]", "output.name=run-a"])
        #expect(config.model.path == "models/sd15")
        #expect(config.lora.rank == 8)
        #expect(config.lora.alpha == TrainingConfig.LoRA().alpha)
        #expect(config.training.maxSteps == 25)
        #expect(config.model.device == "cpu")
        #expect(config.lora.targets == ["to_q", "to_v"])
        #expect(config.output.name == "run-a")
        #expect(config.runDirectory.path.hasSuffix("runs/run-a"))
    }

    @Test func unknownKeysAndWrongTypesNameTheKey() {
        func message(_ text: String, _ overrides: [String] = []) -> String {
            do {
                _ = try TrainingConfig.parse(text, overrides: overrides, source: "train.toml")
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        #expect(message(minimal + "\n[training]\nmax_step = 3\n").contains("unknown key 'training.max_step'"))
        #expect(message(minimal + "\n[trainin]\n").contains("unknown section [trainin]"))
        #expect(message(minimal + "\n[training]\nmax_steps = \"many\"\n").contains("'training.max_steps' must be an integer"))
        #expect(message(minimal + "\n[lora]\ntargets = 3\n").contains("'lora.targets' must be a list"))
        #expect(message(minimal, ["training.nope=1"]).contains("unknown key 'training.nope'"))
        #expect(message(minimal + "\n[training]\nmixed_precision = \"fp8\"\n").contains("mixed_precision must be no, fp16 or bf16"))
        #expect(message("[model]\npath = 3").contains("'model.path' must be a string"))
        #expect(message("[data\n").contains("train.toml: line 1"))
        let both = message("[lora]\nrank = 500\n")
        #expect(both.contains("model.path is required") && both.contains("lora.rank must be in 1...128"))
    }

    @Test func resolvedConfigRoundTripsThroughTOML() throws {
        let config = try TrainingConfig.parse(minimal, overrides: ["samples.seeds=[7, 8, 9]", "optimizer.learning_rate=3e-4"])
        let again = try TrainingConfig.parse(try config.toml())
        #expect(again == config)
    }
}
