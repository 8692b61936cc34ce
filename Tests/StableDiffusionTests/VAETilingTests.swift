// Tiled VAE decode and encode against diffusers' `enable_tiling()`, live: reference/fixtures/vae_tiling.py saves a
// tiny VAE (16 px / 8-latent tiles) with inputs that need several overlapping tiles and short edge tiles, and
// whole images from the tiny pipeline with tiling on.
import Foundation
import Testing
import TestSupport
import Torch
@testable import StableDiffusion

private let area = "vae_tiling"

@Suite struct VAETilingTests {
    func tinyVAE() throws -> AutoencoderKL {
        let vae = try AutoencoderKL.load(folder: Fixtures.url(area, "vae"))
        #expect(vae.tileSampleMinSize == 16 && vae.tileLatentMinSize == 8 && vae.tileOverlapFactor == 0.25)
        #expect(!vae.useTiling)
        return vae
    }

    /// fp32 on the CPU, whole model: the same 1e-4 as the untiled VAE parity. A wrong stride changes the output
    /// size or where every tile starts; a wrong blend changes the seams by far more than that (the tiled output is
    /// over 1 away from the untiled one, checked below, so the seams carry weight).
    @Test func tiledDecodeMatchesDiffusers() throws {
        let vae = try tinyVAE()
        let io = try Fixtures.tensors(area, "vae_io")
        try noGrad {
            let z = try io.get("z")
            try expectCloseReporting(vae.decode(z), io.get("decoded_plain"), atol: wholeModelTolerance, "untiled decode")
            vae.useTiling = true
            let tiled = try vae.decode(z)
            try expectCloseReporting(tiled, io.get("decoded"), atol: wholeModelTolerance, "tiled decode, 20×27 latents")
            #expect(try maxAbsDiff(io.get("decoded"), io.get("decoded_plain")) > 0.5, "the fixture's tiles must differ from one decode")
            // Up to one tile decodes whole; one latent more switches to tiles, as diffusers' `_decode` does.
            try expectCloseReporting(vae.decode(io.get("z_one_tile")), io.get("decoded_one_tile"), atol: wholeModelTolerance,
                                     "8×8 latents (one tile)")
            try expectEqual(vae.decode(io.get("z_one_tile")), vae.decodeTile(io.get("z_one_tile")), "one tile is not tiled")
            try expectCloseReporting(vae.decode(io.get("z_wide")), io.get("decoded_wide"), atol: wholeModelTolerance,
                                     "8×9 latents (two tiles)")
        }
    }

    @Test func tiledEncodeMatchesDiffusers() throws {
        let vae = try tinyVAE()
        let io = try Fixtures.tensors(area, "vae_io")
        try noGrad {
            let x = try io.get("x")
            try expectCloseReporting(vae.encode(x).parameters, io.get("moments_plain"), atol: wholeModelTolerance, "untiled encode")
            vae.useTiling = true
            let posterior = try vae.encode(x)
            try expectCloseReporting(posterior.parameters, io.get("moments"), atol: wholeModelTolerance, "tiled encode, 40×54 px")
            try expectCloseReporting(posterior.mean, io.get("mean"), atol: wholeModelTolerance, "tiled encode mean")
            #expect(try maxAbsDiff(io.get("moments"), io.get("moments_plain")) > 0.1, "the fixture's tiles must differ from one encode")
        }
    }

    /// The parity above fails when the seams are not blended: joining the same tiles without blending is far off.
    @Test func unblendedTilesAreCaught() throws {
        let vae = try tinyVAE()
        let io = try Fixtures.tensors(area, "vae_io")
        try noGrad {
            let unblended = try AutoencoderKL.tiled(io.get("z"), tile: 8, stride: 6, blendExtent: 0, rowLimit: 12) {
                try vae.decodeTile($0)
            }
            #expect(unblended.shape == [2, 3, 40, 54])
            #expect(try maxAbsDiff(unblended, io.get("decoded")) > 100 * wholeModelTolerance)
        }
    }

    /// `vae.useTiling` in a whole generation: the same uint8 images as diffusers with `vae.enable_tiling()`
    /// (64 × 80 px is 32 × 40 latents, 3 × 4 tiles of 16), within one level.
    @Test func pipelineWithVAETilingMatchesDiffusers() throws {
        struct Case: Decodable { let prompt: String, steps: Int, guidance_scale: Double, height: Int, width: Int, batch: Int, seed: UInt64 }
        let c = try JSONDecoder().decode(Case.self, from: Data(contentsOf: Fixtures.url(area, "pipeline_case.json")))
        let pipe = try StableDiffusionPipeline.load(.diffusersFolder(try Fixtures.url("pipeline", "model")),
                                                    device: .cpu, dtype: .float32)
        pipe.vae.useTiling = true
        var options = GenerationOptions(prompt: c.prompt)
        options.steps = c.steps
        options.guidanceScale = c.guidance_scale
        options.width = c.width
        options.height = c.height
        options.batch = c.batch
        options.seed = c.seed
        let latents = try pipe.latents(options)
        let pixels = try (pipe.decode(latents) * 255).round().to(.uint8).permute([0, 2, 3, 1]).contiguous()
        let reference = try Fixtures.tensors(area, "pipeline_images").get("images")
        #expect(pixels.shape == reference.shape)
        let diff = try maxAbsDiff(pixels, reference)
        #expect(diff <= 1, "max difference \(diff) levels")
        // Without tiling the same latents decode to visibly different pixels, so the flag is what matched.
        pipe.vae.useTiling = false
        let untiled = try (pipe.decode(latents) * 255).round().to(.uint8).permute([0, 2, 3, 1]).contiguous()
        #expect(try maxAbsDiff(untiled, reference) > 1)
    }
}
