import Foundation
import Imaging
import Testing
import TestSupport
import GenerationFixtures
import Torch
@testable import StableDiffusion

/// reference/fixtures/img2img.py's cases: diffusers' StableDiffusionImg2ImgPipeline on the pipeline fixture's model,
/// from its 50×35 init image (50×34 at the tiny VAE's scale factor 2).
private func img2imgCases() throws -> GenerationCases { try GenerationCases.load("img2img") }

private extension GenerationCases {
    func options(sampler: String, strength: Double) throws -> GenerationOptions {
        try options(sampler: sampler, strength: strength, scaleFactor: 2)
    }
}

@Suite struct ImageToImageTests {
    let pipe: StableDiffusionPipeline

    init() throws {
        pipe = try StableDiffusionPipeline.load(.diffusersFolder(try Fixtures.url("pipeline", "model")), device: .cpu,
                                                dtype: .float32)
    }

    /// The same uint8 images as diffusers' img2img, within one level, over four samplers (Heun of order 2) × two
    /// strengths, from an init image that the image processor resizes (50×35 → 50×34).
    @Test func imagesMatchDiffusers() throws {
        try img2imgCases().expectImagesMatchDiffusers(lora: false, count: 8, pipe: pipe)
    }

    /// Per-image seeds are diffusers with a list of generators (each image encoded and noised from its own), and
    /// image 1 of the batch is what seed 6 makes alone; another size resizes the init image to it (LANCZOS, as
    /// diffusers' image processor does when given a size).
    @Test func perImageSeedsAndExplicitSizeMatchDiffusers() throws {
        let cases = try img2imgCases()
        let expected = try Fixtures.tensors("img2img", "extra")
        var options = try cases.options(sampler: "euler-a", strength: 0.6)
        options.seed = 5
        options.perImageSeeds = true
        let batch = try uint8Pixels(pipe(options))
        #expect(try maxAbsDiff(batch, expected.get("list")) <= 1)
        options.seed = 6
        options.batch = 1
        let alone = try uint8Pixels(pipe(options))
        #expect(try maxAbsDiff(alone, expected.get("alone")) <= 1)
        #expect(try maxAbsDiff(batch.narrow(dim: 0, start: 1, length: 1), alone) <= 1)

        options = try cases.options(sampler: "dpm++2m-karras", strength: 0.6)
        options.batch = 1
        (options.width, options.height) = (32, 40)
        let sized = try uint8Pixels(pipe(options))
        #expect(sized.shape == [1, 40, 32, 3])
        #expect(try maxAbsDiff(sized, expected.get("sized")) <= 1)
    }

    /// get_timesteps: int(steps · strength) steps from the end of the schedule, cut at `t_start · order`, so the
    /// progress counts them: Heun's 2 steps of its 15 entries are the last 3, PNDM's 4 of 9 entries the last 5.
    @Test func strengthPicksTheLastStepsOfTheSchedule() throws {
        let cases = try img2imgCases()
        for (sampler, strength, calls) in [("ddim", 0.3, 2), ("ddim", 0.75, 6), ("heun", 0.3, 3), ("pndm", 0.5, 5),
                                           ("euler-a", 1.0, 8)] {
            var options = try cases.options(sampler: sampler, strength: strength)
            options.batch = 1
            var reports: [Int] = []
            _ = try pipe.latents(options) { step, total in
                reports.append(total)
                return true
            }
            #expect(reports == Array(repeating: calls, count: calls), "\(sampler) at \(strength)")
        }
    }

    @Test func badStrengthsAndCancellationAreErrors() throws {
        let cases = try img2imgCases()
        for strength in [0, -0.5, 1.01, 0.1] {  // 0.1 of 8 steps: int(0.8) = 0 steps
            let options = try cases.options(sampler: "ddim", strength: strength)
            #expect(throws: TorchError.self, "\(strength)") { try pipe(options) }
        }
        let options = try cases.options(sampler: "ddim", strength: 0.75)
        #expect(throws: StableDiffusionPipeline.Cancelled.self) { try pipe(options) { step, _ in step < 2 } }
    }

    /// The job writes img2img's images with A1111's `Denoising strength` and the size generated at.
    @Test func jobWritesDenoisingStrength() throws {
        var options = try img2imgCases().options(sampler: "ddim", strength: 0.75)
        options.batch = 1
        let dir = try temporaryDirectory()
        let urls = try TextToImageJob(options: options, sampler: Sampler(rawValue: "ddim"), outputDirectory: dir).run(pipe)
        let decoded = try ImageDecoder.read(try #require(urls.first))
        let text = try #require(decoded.text.first { $0.keyword == "parameters" }?.text)
        let info = try #require(GenerationInfo(text: text))
        #expect(info.denoisingStrength == 0.75 && info.width == 50 && info.height == 34 && info.sampler == "DDIM")
        #expect(text.contains("Denoising strength: 0.75"))
        let written = try decoded.image.tensor(range: .unit).unsqueeze(0)
        #expect(try maxAbsDiff(uint8Pixels(written), uint8Pixels(pipe(options))) == 0)
    }
}
