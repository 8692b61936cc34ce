import Foundation
import Testing
import TestSupport
import Torch
@testable import StableDiffusion

private struct Cases: Decodable {
    struct Case: Decodable {
        let name: String
        let scheduler: String
        let seed: UInt64
        let negative_prompt: String
        let karras: Bool
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
        #expect(cases.cases.count == 12)
        for c in cases.cases {
            var options = GenerationOptions(prompt: cases.prompt)
            options.negativePrompt = c.negative_prompt
            options.steps = cases.steps
            options.guidanceScale = cases.guidance_scale
            options.width = cases.width
            options.height = cases.height
            options.batch = cases.batch
            options.seed = c.seed
            options.scheduler = SchedulerKind(rawValue: c.scheduler)
            options.karrasSigmas = c.karras
            let images = try pipe(options)
            // diffusers' numpy_to_pil: (x * 255).round() as uint8, channels last.
            let pixels = try (images * 255).round().to(.uint8).permute([0, 2, 3, 1]).contiguous()
            let reference = try expected.get(c.name)
            #expect(pixels.shape == reference.shape, "\(c.name)")
            let diff = try maxAbsDiff(pixels, reference)
            #expect(diff <= 1, "\(c.name): max difference \(diff) levels")
        }
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
