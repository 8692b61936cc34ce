import Foundation
import Imaging
import Testing
import TestSupport
import Torch
@testable import LoRA
@testable import StableDiffusion

/// img2img and inpainting with a LoRA (peft-trained on the model's UNet, saved by diffusers' save_lora_weights):
/// diffusers' images after load_lora_weights, within one level, over three samplers × two strengths.
@Suite struct LoRAImageToImageTests {
    private struct Cases: Decodable {
        struct Case: Decodable {
            let name: String, sampler: String, strength: Double, lora: Bool
        }
        let prompt: String, negative_prompt: String, steps: Int, guidance_scale: Double, batch: Int, seed: UInt64
        let width: Int?, height: Int?
        let cases: [Case]
    }

    /// The LoRA cases of a fixture area (reference/fixtures/img2img.py or inpaint.py), on `model`.
    private func checkLoRACases(area: String, model: String, mask: Bool) throws {
        let cases = try JSONDecoder().decode(Cases.self, from: Data(contentsOf: Fixtures.url(area, "cases.json")))
        let expected = try Fixtures.tensors(area, "images")
        let pipe = try StableDiffusionPipeline.load(.diffusersFolder(try Fixtures.url(model, "model")), device: .cpu,
                                                    dtype: .float32)
        let stack = try LoRAStack(loading: [LoRAReference(url: Fixtures.url(area, "lora/pytorch_lora_weights.safetensors"))],
                                  into: [.unet: pipe.unet.store, .textEncoder: pipe.textEncoder.store])
        #expect(stack.networks.first?.adapters.isEmpty == false)
        let image = try Image.load(Fixtures.url(area, "init.png"))
        let withLoRA = cases.cases.filter(\.lora)
        #expect(withLoRA.count == 6)
        for c in withLoRA {
            var options = GenerationOptions(prompt: cases.prompt)
            options.negativePrompt = cases.negative_prompt
            options.steps = cases.steps
            options.guidanceScale = cases.guidance_scale
            let own = ImageToImage.defaultSize(of: image, multiple: pipe.vaeScaleFactor)
            (options.width, options.height) = (cases.width ?? own.width, cases.height ?? own.height)
            options.batch = cases.batch
            options.seed = cases.seed
            options.initImage = image
            if mask { options.mask = try Image.load(Fixtures.url(area, "mask.png")) }
            options.strength = c.strength
            options.use(try #require(Sampler(rawValue: c.sampler)))
            let pixels = try (pipe(options) * 255).round().to(.uint8).permute([0, 2, 3, 1]).contiguous()
            let diff = try maxAbsDiff(pixels, expected.get(c.name))
            #expect(diff <= 1, "\(area) \(c.name): max difference \(diff) levels")
        }
    }

    @Test func imageToImageMatchesDiffusers() throws {
        try checkLoRACases(area: "img2img", model: "pipeline", mask: false)
    }

    @Test func inpaintingMatchesDiffusers() throws {
        try checkLoRACases(area: "inpaint", model: "inpaint", mask: true)
    }
}
