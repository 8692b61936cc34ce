import Foundation
import Imaging
import Testing
import TestSupport
import Torch
@testable import LoRA
@testable import StableDiffusion

@Suite struct LoRAImageToImageTests {
    private struct Cases: Decodable {
        struct Case: Decodable {
            let name: String, sampler: String, strength: Double, lora: Bool
        }
        let prompt: String, negative_prompt: String, steps: Int, guidance_scale: Double, batch: Int, seed: UInt64
        let cases: [Case]
    }

    /// img2img with a LoRA (peft-trained on the pipeline model's UNet, saved by diffusers' save_lora_weights) gives
    /// diffusers' images after load_lora_weights, within one level, over three samplers × two strengths.
    @Test func imagesWithALoRAMatchDiffusers() throws {
        let cases = try JSONDecoder().decode(Cases.self, from: Data(contentsOf: Fixtures.url("img2img", "cases.json")))
        let expected = try Fixtures.tensors("img2img", "images")
        let pipe = try StableDiffusionPipeline.load(.diffusersFolder(try Fixtures.url("pipeline", "model")), device: .cpu,
                                                    dtype: .float32)
        let stack = try LoRAStack(loading: [LoRAReference(url: Fixtures.url("img2img", "lora/pytorch_lora_weights.safetensors"))],
                                  into: [.unet: pipe.unet.store, .textEncoder: pipe.textEncoder.store])
        #expect(stack.networks.first?.adapters.isEmpty == false)
        let image = try Image.load(Fixtures.url("img2img", "init.png"))
        let withLoRA = cases.cases.filter(\.lora)
        #expect(withLoRA.count == 6)
        for c in withLoRA {
            var options = GenerationOptions(prompt: cases.prompt)
            options.negativePrompt = cases.negative_prompt
            options.steps = cases.steps
            options.guidanceScale = cases.guidance_scale
            (options.width, options.height) = ImageToImage.defaultSize(of: image, multiple: pipe.vaeScaleFactor)
            options.batch = cases.batch
            options.seed = cases.seed
            options.initImage = image
            options.strength = c.strength
            options.use(try #require(Sampler(rawValue: c.sampler)))
            let pixels = try (pipe(options) * 255).round().to(.uint8).permute([0, 2, 3, 1]).contiguous()
            let diff = try maxAbsDiff(pixels, expected.get(c.name))
            #expect(diff <= 1, "\(c.name): max difference \(diff) levels")
        }
    }
}
