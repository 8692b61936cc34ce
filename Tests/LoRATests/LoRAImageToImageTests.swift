import Foundation
import Imaging
import Testing
import TestSupport
import GenerationFixtures
import Torch
@testable import LoRA
@testable import StableDiffusion

/// img2img and inpainting with a LoRA (peft-trained on the model's UNet, saved by diffusers' save_lora_weights):
/// diffusers' images after load_lora_weights, within one level, over three samplers × two strengths.
@Suite struct LoRAImageToImageTests {
    /// The LoRA cases of a fixture area (reference/fixtures/img2img.py or inpaint.py), on `model`.
    private func checkLoRACases(area: String, model: String, mask: Bool) throws {
        let pipe = try StableDiffusionPipeline.load(.diffusersFolder(try Fixtures.url(model, "model")), device: .cpu,
                                                    dtype: .float32)
        let stack = try LoRAStack(loading: [LoRAReference(url: Fixtures.url(area, "lora/pytorch_lora_weights.safetensors"))],
                                  into: [.unet: pipe.unet.store, .textEncoder: pipe.textEncoder.store])
        #expect(stack.networks.first?.adapters.isEmpty == false)
        try GenerationCases.load(area).expectImagesMatchDiffusers(lora: true, count: 6, mask: mask, pipe: pipe)
    }

    @Test func imageToImageMatchesDiffusers() throws {
        try checkLoRACases(area: "img2img", model: "pipeline", mask: false)
    }

    @Test func inpaintingMatchesDiffusers() throws {
        try checkLoRACases(area: "inpaint", model: "inpaint", mask: true)
    }
}
