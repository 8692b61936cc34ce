import Foundation
import Imaging
import Testing
import TestSupport
import GenerationFixtures
import Torch
@testable import StableDiffusion

/// reference/fixtures/inpaint.py's cases: diffusers' StableDiffusionInpaintPipeline on a tiny 9-channel model.
private func inpaintCases() throws -> GenerationCases { try GenerationCases.load("inpaint") }

private extension GenerationCases {
    func options(sampler: String, strength: Double) throws -> GenerationOptions {
        try options(sampler: sampler, strength: strength, mask: true, scaleFactor: 2)
    }
}

@Suite struct InpaintingTests {
    let pipe: StableDiffusionPipeline

    init() throws {
        pipe = try StableDiffusionPipeline.load(.diffusersFolder(try Fixtures.url("inpaint", "model")), device: .cpu,
                                                dtype: .float32)
    }

    /// The same uint8 images as diffusers' inpainting, within one level, over three samplers × strengths 1 (pure
    /// noise) and 0.75 (the image noised), with a soft-edged mask that is resized and binarized.
    @Test func imagesMatchDiffusers() throws {
        try inpaintCases().expectImagesMatchDiffusers(lora: false, count: 6, mask: true, pipe: pipe)
    }

    /// Per-image seeds: diffusers with a generator list (the image encoded with the first generator, the noise row
    /// by row).
    @Test func perImageSeedsMatchDiffusersGeneratorLists() throws {
        var options = try inpaintCases().options(sampler: "euler-a", strength: 0.75)
        options.seed = 5
        options.perImageSeeds = true
        #expect(try maxAbsDiff(uint8Pixels(pipe(options)), Fixtures.tensors("inpaint", "images").get("list")) <= 1)
    }

    /// The mask processor: resized with the image, then binarized at half grey.
    @Test func maskIsBinarizedAtHalfGrey() throws {
        let mask = try Image(width: 4, height: 1, channels: 1, pixels: [0, 127, 128, 255])
        let values = try Inpainting.preprocessMask(mask, width: 4, height: 1).flatten().toArray(Float.self)
        #expect(values == [0, 0, 1, 1])
    }

    /// A mask with a model that is not an inpainting one, a mask without an image, and an inpainting model without
    /// a mask are refused before anything runs, saying what to give.
    @Test func mismatchedModelsAndMasksAreErrors() throws {
        let cases = try inpaintCases()
        let plain = try StableDiffusionPipeline.load(.diffusersFolder(try Fixtures.url("pipeline", "model")), device: .cpu,
                                                     dtype: .float32)
        func message(_ run: () throws -> Tensor) -> String {
            do { _ = try run() } catch { return "\(error)" }
            return "no error"
        }
        var options = try cases.options(sampler: "ddim", strength: 0.75)
        #expect(message { try plain(options) }.contains("needs an inpainting model"))
        options.initImage = nil
        #expect(message { try pipe(options) }.contains("--init-image"))
        options = try cases.options(sampler: "ddim", strength: 0.75)
        options.mask = nil
        #expect(message { try pipe(options) }.contains("--mask"))
        options.initImage = nil
        #expect(message { try pipe(options) }.contains("--mask"))
    }
}
