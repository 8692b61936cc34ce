import Foundation
import Imaging
import Testing
import TestSupport
import Torch
@testable import StableDiffusion

/// reference/fixtures/inpaint.py's cases: diffusers' StableDiffusionInpaintPipeline on a tiny 9-channel model.
struct InpaintingCases: Decodable {
    struct Case: Decodable {
        let name: String
        let sampler: String
        let strength: Double
        let lora: Bool
    }
    let prompt: String
    let negative_prompt: String
    let steps: Int
    let guidance_scale: Double
    let batch: Int
    let seed: UInt64
    let width: Int
    let height: Int
    let cases: [Case]

    static func load() throws -> InpaintingCases {
        try JSONDecoder().decode(Self.self, from: Data(contentsOf: Fixtures.url("inpaint", "cases.json")))
    }

    func options(sampler: String, strength: Double) throws -> GenerationOptions {
        var options = GenerationOptions(prompt: prompt)
        options.negativePrompt = negative_prompt
        options.steps = steps
        options.guidanceScale = guidance_scale
        (options.width, options.height) = (width, height)
        options.batch = batch
        options.seed = seed
        options.initImage = try Image.load(Fixtures.url("inpaint", "init.png"))
        options.mask = try Image.load(Fixtures.url("inpaint", "mask.png"))
        options.strength = strength
        options.use(try #require(Sampler(rawValue: sampler), "\(sampler)"))
        return options
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
        let cases = try InpaintingCases.load()
        let expected = try Fixtures.tensors("inpaint", "images")
        let plain = cases.cases.filter { !$0.lora }
        #expect(plain.count == 6)
        for c in plain {
            let pixels = try uint8Pixels(pipe(cases.options(sampler: c.sampler, strength: c.strength)))
            let reference = try expected.get(c.name)
            #expect(pixels.shape == reference.shape, "\(c.name)")
            let diff = try maxAbsDiff(pixels, reference)
            #expect(diff <= 1, "\(c.name): max difference \(diff) levels")
        }
    }

    /// Per-image seeds: diffusers with a generator list (the image encoded with the first generator, the noise row
    /// by row).
    @Test func perImageSeedsMatchDiffusersGeneratorLists() throws {
        var options = try InpaintingCases.load().options(sampler: "euler-a", strength: 0.75)
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
        let cases = try InpaintingCases.load()
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
