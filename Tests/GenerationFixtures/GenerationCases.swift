// The cases files reference/fixtures/img2img.py and inpaint.py write (diffusers' settings, then one case per
// sampler × strength, with and without a LoRA), read once for every test target that checks them.
import Foundation
import Imaging
import StableDiffusion
import Testing
import TestSupport
import Torch

public struct GenerationCases: Decodable {
    public struct Case: Decodable {
        public let name: String
        public let sampler: String
        public let strength: Double
        public let lora: Bool
    }
    public let prompt: String
    public let negative_prompt: String
    public let steps: Int
    public let guidance_scale: Double
    public let batch: Int
    public let seed: UInt64
    /// The size diffusers was given; absent: the init image's own, rounded down to the VAE's scale factor.
    public let width: Int?
    public let height: Int?
    public let cases: [Case]
    /// The fixture folder the file came from (its init.png, mask.png and images).
    public private(set) var area = ""

    private enum CodingKeys: String, CodingKey {
        case prompt, negative_prompt, steps, guidance_scale, batch, seed, width, height, cases
    }

    public static func load(_ area: String) throws -> GenerationCases {
        var cases = try JSONDecoder().decode(Self.self, from: Data(contentsOf: Fixtures.url(area, "cases.json")))
        cases.area = area
        return cases
    }

    /// A case's options: diffusers' settings, the area's init.png (and mask.png with `mask`) at the fixture's size.
    /// `scaleFactor`: the VAE's, which rounds an init image's own size down.
    public func options(sampler: String, strength: Double, mask: Bool = false, scaleFactor: Int) throws -> GenerationOptions {
        let image = try Image.load(Fixtures.url(area, "init.png"))
        var options = GenerationOptions(prompt: prompt)
        options.negativePrompt = negative_prompt
        options.steps = steps
        options.guidanceScale = guidance_scale
        let own = ImageToImage.defaultSize(of: image, multiple: scaleFactor)
        (options.width, options.height) = (width ?? own.width, height ?? own.height)
        options.batch = batch
        options.seed = seed
        options.initImage = image
        if mask { options.mask = try Image.load(Fixtures.url(area, "mask.png")) }
        options.strength = strength
        options.use(try #require(Sampler(rawValue: sampler), "\(sampler)"))
        return options
    }

    /// Each case with (or without) a LoRA rendered by `pipe` equals diffusers' uint8 images within one level.
    public func expectImagesMatchDiffusers(lora: Bool, count: Int, mask: Bool = false,
                                           pipe: StableDiffusionPipeline) throws {
        let expected = try Fixtures.tensors(area, "images")
        let selected = cases.filter { $0.lora == lora }
        #expect(selected.count == count)
        for c in selected {
            let options = try self.options(sampler: c.sampler, strength: c.strength, mask: mask, scaleFactor: pipe.vaeScaleFactor)
            let pixels = try uint8Pixels(pipe(options))
            let reference = try expected.get(c.name)
            #expect(pixels.shape == reference.shape, "\(area) \(c.name)")
            let diff = try maxAbsDiff(pixels, reference)
            #expect(diff <= 1, "\(area) \(c.name): max difference \(diff) levels")
        }
    }
}

/// diffusers' numpy_to_pil: (x * 255).round() as uint8, channels last.
public func uint8Pixels(_ images: Tensor) throws -> Tensor {
    try (images * 255).round().to(.uint8).permute([0, 2, 3, 1]).contiguous()
}
