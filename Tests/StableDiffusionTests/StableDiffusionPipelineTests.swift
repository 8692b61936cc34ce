import Foundation
import Testing
import TestSupport
import Torch
@testable import StableDiffusion

private struct Cases: Decodable {
    struct Case: Decodable {
        let name: String
        let sampler: String
        let seed: UInt64
        let negative_prompt: String
    }
    let prompt: String
    let steps: Int
    let guidance_scale: Double
    let height: Int
    let width: Int
    let batch: Int
    let cases: [Case]
}

@Suite struct StableDiffusionPipelineTests {
    /// Same weights, prompt, seed and scheduler as diffusers' StableDiffusionPipeline: the same uint8
    /// image, within one level (fp32 on CPU).
    @Test func imagesMatchDiffusers() throws {
        let cases = try JSONDecoder().decode(Cases.self, from: Data(contentsOf: Fixtures.url("pipeline", "cases.json")))
        let expected = try Fixtures.tensors("pipeline", "images")
        let pipe = try StableDiffusionPipeline.load(.diffusersFolder(try Fixtures.url("pipeline", "model")),
                                                    device: .cpu, dtype: .float32)
        #expect(cases.cases.count == 20)
        for c in cases.cases {
            var options = GenerationOptions(prompt: cases.prompt)
            options.negativePrompt = c.negative_prompt
            options.steps = cases.steps
            options.guidanceScale = cases.guidance_scale
            options.width = cases.width
            options.height = cases.height
            options.batch = cases.batch
            options.seed = c.seed
            options.use(try #require(Sampler(rawValue: c.sampler), "\(c.sampler)"))
            let images = try pipe(options)
            // diffusers' numpy_to_pil: (x * 255).round() as uint8, channels last.
            let pixels = try (images * 255).round().to(.uint8).permute([0, 2, 3, 1]).contiguous()
            let reference = try expected.get(c.name)
            #expect(pixels.shape == reference.shape, "\(c.name)")
            let diff = try maxAbsDiff(pixels, reference)
            #expect(diff <= 1, "\(c.name): max difference \(diff) levels")
        }
    }

    /// Per-image seeds are diffusers with a list of generators (image i from seed + i, step noise too), and
    /// image 1 of such a batch is the image seed + 1 makes alone.
    @Test func perImageSeedsMatchDiffusersGeneratorLists() throws {
        let expected = try Fixtures.tensors("pipeline", "per_image_seeds")
        let pipe = try StableDiffusionPipeline.load(.diffusersFolder(try Fixtures.url("pipeline", "model")),
                                                    device: .cpu, dtype: .float32)
        var options = GenerationOptions(prompt: "minimal line-art tattoo of a rose, stencil")
        options.negativePrompt = "blurry"
        options.steps = 6
        options.width = 48
        options.height = 32
        options.scheduler = .eulerAncestralDiscrete
        options.seed = 5
        options.batch = 2
        options.perImageSeeds = true
        func pixels(_ options: GenerationOptions) throws -> Tensor {
            try (pipe(options) * 255).round().to(.uint8).permute([0, 2, 3, 1]).contiguous()
        }
        let batch = try pixels(options)
        #expect(try maxAbsDiff(batch, expected.get("list")) <= 1)
        options.seed = 6
        options.batch = 1
        let alone = try pixels(options)
        #expect(try maxAbsDiff(alone, expected.get("alone")) <= 1)
        #expect(try maxAbsDiff(batch.narrow(dim: 0, start: 1, length: 1), alone) <= 1)
        // One generator for the batch (the default) draws other noise: the option is what makes the difference.
        options.seed = 5
        options.batch = 2
        options.perImageSeeds = false
        #expect(try maxAbsDiff(pixels(options), batch) > 1)
    }

    @Test func cancellationAndBadSizesAreErrors() throws {
        let pipe = try StableDiffusionPipeline.load(.diffusersFolder(try Fixtures.url("pipeline", "model")),
                                                    device: .cpu, dtype: .float32)
        var options = GenerationOptions(prompt: "a rose")
        options.width = 31
        options.height = 32
        options.steps = 2
        #expect(throws: TorchError.self) { try pipe(options) }
        options.width = 32
        #expect(throws: StableDiffusionPipeline.Cancelled.self) { try pipe(options) { step, _ in step < 1 } }
    }

    /// Progress counts UNet calls against their real total, whatever the sampler: Heun and DPM2 visit every
    /// timestep after the first twice (2n − 1 calls), PNDM adds one, the others make one per step.
    @Test func progressCountsModelEvaluations() throws {
        let pipe = try StableDiffusionPipeline.load(.diffusersFolder(try Fixtures.url("pipeline", "model")),
                                                    device: .cpu, dtype: .float32)
        let expected: [Sampler: Int] = [.heun: 7, .dpm2A: 7, .pndm: 5, .unipc: 4, .lms: 4]
        for (sampler, calls) in expected {
            var options = GenerationOptions(prompt: "a rose")
            options.steps = 4
            options.width = 16
            options.height = 16
            options.use(sampler)
            var reports: [[Int]] = []
            _ = try pipe.latents(options) { step, total in
                reports.append([step, total])
                return true
            }
            #expect(reports == (1...calls).map { [$0, calls] }, "\(sampler)")
        }
    }

    @Test func singleFileWithoutTokenizerExplainsWhatIsMissing() throws {
        let dir = try temporaryDirectory()
        let file = dir.appendingPathComponent("model.safetensors")
        try Safetensors.save(["model.diffusion_model.out.2.bias": try Tensor.zeros([4])], to: file)
        do {
            _ = try StableDiffusionPipeline.load(.singleFile(file), device: .cpu)
            Issue.record("loaded without a tokenizer")
        } catch let error as DiffusersFolderError {
            #expect(error.description.contains("--tokenizer"))
        }
    }
}

@Suite struct TextToImageJobTests {
    /// The written PNGs hold the pipeline's pixels, and Pillow reads the A1111 parameters back.
    @Test func writesPNGsWithA1111ParametersThatPillowReads() throws {
        let pipe = try StableDiffusionPipeline.load(.diffusersFolder(try Fixtures.url("pipeline", "model")),
                                                    device: .cpu, dtype: .float32)
        var options = GenerationOptions(prompt: "tattoo stencil, koi: ink, \"bold\"")
        options.negativePrompt = "color"
        options.steps = 3
        options.width = 32
        options.height = 32
        options.batch = 2
        options.seed = 11
        let dir = try temporaryDirectory()
        var job = TextToImageJob(options: options, sampler: .dpmpp2mKarras, outputDirectory: dir)
        job.modelName = "tiny"
        job.modelHash = "0123456789"
        let urls = try job.run(pipe)
        #expect(urls.map(\.lastPathComponent) == ["11-0.png", "11-1.png"])
        // A second run never overwrites the first one's files.
        #expect(try job.run(pipe).map(\.lastPathComponent) == ["11-0_2.png", "11-1_2.png"])

        options.scheduler = .dpmSolverMultistep
        options.karrasSigmas = true
        let pixels = try (pipe(options) * 255).round().to(.uint8).permute([0, 2, 3, 1]).contiguous()
        for (index, url) in urls.enumerated() {
            let json = try runReference("fixtures/images.py", ["--png-info", url.path])
            let info = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
            let text = (info?["text"] as? [String: String])?["parameters"]
            #expect(text == job.info(index: index, defaultSampler: nil).text)
            #expect(text?.contains("Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 11, Size: 32x32, Model hash: 0123456789, Model: tiny") == true)
            #expect(info?["mode"] as? String == "RGB")
            // Pillow's RGBA bytes of the file equal the pipeline's pixels (alpha 255).
            let rgba = try #require(info?["rgba"] as? String)
            let rgb = try pixels.select(dim: 0, index: index).toArray(UInt8.self)
            var expected = ""
            for i in stride(from: 0, to: rgb.count, by: 3) {
                expected += String(format: "%02x%02x%02xff", rgb[i], rgb[i + 1], rgb[i + 2])
            }
            #expect(rgba == expected)
        }
    }

    @Test func samplerNamesMapToSchedulersAndA1111Names() {
        #expect(Sampler.dpmpp2mKarras.schedulerKind == .dpmSolverMultistep && Sampler.dpmpp2mKarras.karras)
        #expect(Sampler.eulerA.a1111.sampler == "Euler a")
        #expect(Sampler.pndm.a1111.sampler == "PLMS")
        #expect(Sampler(kind: .pndm) == .pndm)
    }
}
