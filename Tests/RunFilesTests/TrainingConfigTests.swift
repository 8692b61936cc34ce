import Foundation
import Testing
@testable import RunFiles

/// The error of parsing `text` (as the file train.toml) with `overrides`, or "no error".
func message(_ text: String, _ overrides: [String] = []) -> String {
    do {
        _ = try TrainingConfig.parse(text, overrides: overrides, source: "train.toml")
        return "no error"
    } catch {
        return "\(error)"
    }
}

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

    /// Was: all accepted, to fail (or fill the disk with every checkpoint) far into the run.
    @Test func absurdSizesAndCountsAreRefusedNamingTheKey() {
        let all = message(minimal, ["training.batch_size=100000000", "training.max_steps=\(Int.max)", "output.keep=-1",
                                    "samples.size=100000"])
        #expect(all.contains("training.batch_size = 100000000 at data.resolution = 512 needs at least"))
        #expect(all.contains("training.max_steps must be in 1...100000000"))
        #expect(all.contains("output.keep must be 0 (keep every checkpoint) or more, got -1"))
        #expect(all.contains("samples.size = 100000 needs at least"))
        // 0 keeps every checkpoint; validation.every = 0 turns periodic validation off; samples.every = 0 turns
        // samples off, and then their size is not checked.
        #expect(message(minimal, ["output.keep=0", "validation.every=0", "samples.every=0", "samples.size=100000"]) == "no error")
    }

    @Test func closedSetsAreCheckedAtLoadWithEveryOtherProblem() throws {
        let all = message(minimal + "\n[schedule]\nname = \"cosine_annealing\"\n[samples]\nsampler = \"warp\"\n[lora]\nrank = 0\n",
                          ["data.captions=blip+", "training.mixed_precision=fp8"])
        #expect(all.hasPrefix("train.toml: "))
        #expect(all.contains("schedule.name must be constant, constant_with_warmup, linear, cosine, cosine_with_restarts, "
            + "polynomial or piecewise_constant, got 'cosine_annealing'"))
        #expect(all.contains("samples.sampler must be pndm, ddim, ddpm, euler, euler-a, dpm++2m, dpm++2m-karras, euler-karras, "
            + "heun, lms, lms-karras, unipc, dpm++2m-sde, dpm++2m-sde-karras, dpm2, dpm2-karras, dpm2-a or dpm2-a-karras, "
            + "got 'warp'"))
        #expect(all.contains("data.captions must be vanilla, blip or blip_plus, got 'blip+'"))
        #expect(all.contains("training.mixed_precision must be no, fp16 or bf16, got 'fp8'"))
        #expect(all.contains("lora.rank must be in 1...128"))
        // A sampler by its A1111 name is saved by ours.
        let a1111 = try TrainingConfig.parse(minimal + "\n[samples]\nsampler = \"DPM++ 2M Karras\"\n")
        #expect(a1111.samples.sampler == .dpmpp2mKarras)
        #expect(ConfigSections(toml: try a1111.toml())?["samples", "sampler"] == .string("dpm++2m-karras"))
        let config = try? TrainingConfig.parse(minimal + "\n[samples]\nsampler = \"euler-a\"\n[schedule]\nname = \"linear\"\n",
                                              overrides: ["training.mixed_precision=bf16"])
        #expect(config?.samples.sampler == .eulerA && config?.schedule.name == .linear && config?.training.mixedPrecision == .bf16)
    }

    @Test func resolvedConfigRoundTripsThroughTOML() throws {
        let config = try TrainingConfig.parse(minimal, overrides: ["samples.seeds=[7, 8, 9]", "optimizer.learning_rate=3e-4"])
        let again = try TrainingConfig.parse(try config.toml())
        #expect(again == config)
    }

    @Test func aBadOverrideIsNamedAsTheSetArgument() {
        let text = message(minimal, ["lora.rank=1000", "training.max_steps=\"many\"", "optimizer.learning_rate=nan"])
        #expect(text.contains("lora.rank must be in 1...128, got 1000 (from --set lora.rank=1000)"), "\(text)")
        #expect(text.contains("(from --set training.max_steps=\"many\")"), "\(text)")
        #expect(text.contains("optimizer.learning_rate must be a finite number, got nan (from --set optimizer.learning_rate=nan)"), "\(text)")
        // The same problem in the file is the file's.
        let inFile = message(minimal + "\n[lora]\nrank = 1000\n")
        #expect(inFile.hasPrefix("train.toml: ") && !inFile.contains("--set"), "\(inFile)")
    }

    /// The README's complete example config, as a user copies it.
    @Test func theReadmeExampleParses() throws {
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../README.md").standardizedFileURL, encoding: .utf8)
        let after = try #require(readme.range(of: "A complete example:"))
        let block = try #require(readme[after.upperBound...].range(of: "```toml\n"))
        let end = try #require(readme[block.upperBound...].range(of: "```"))
        let config = try TrainingConfig.parse(String(readme[block.upperBound..<end.lowerBound]), source: "README.md")
        #expect(config.samples.negativePrompt == TrainingConfig.Samples().negativePrompt)
        #expect(config.output.name == "tattoo-blip-plus" && config.samples.sampler == .dpmpp2mKarras)
    }
}
