// AutoencoderKL against diffusers, live: a tiny VAE saved by reference/fixtures/unet_vae.py (also with
// diffusers 0.6's legacy attention keys) and the key/shape map of SD1.5's VAE config.
import Foundation
import Testing
import TestSupport
import Torch
@testable import StableDiffusion

@Suite struct VAETests {
    @Test func tinyVAEMatchesDiffusers() throws {
        let vae = try AutoencoderKL.load(folder: Fixtures.url(unetVAEArea, "vae_tiny"))
        let io = try Fixtures.tensors(unetVAEArea, "vae_tiny_io")
        #expect(vae.scalingFactor == 0.13025)  // the fixture's non-default value, read from config.json
        try noGrad {
            let posterior = try vae.encode(io.get("x"))
            try expectCloseReporting(posterior.parameters, io.get("moments"), atol: wholeModelTolerance, "VAE moments")
            try expectCloseReporting(posterior.mean, io.get("mean"), atol: wholeModelTolerance, "VAE mean")
            // The fixture pushes log-variances past both clamp bounds.
            try expectCloseReporting(posterior.logvar, io.get("logvar"), atol: wholeModelTolerance, "VAE logvar")
            #expect(try posterior.logvar.max().item() == 20 && posterior.logvar.min().item() == -30)
            try expectRelativeClose(posterior.std, io.get("std"), rtol: wholeModelTolerance, "VAE std")
            try expectEqual(posterior.mode(), posterior.mean, "mode is the mean")
            // The same seed gives the same latent sample as diffusers' latent_dist.sample(generator).
            try expectRelativeClose(posterior.sample(generator: Generator(seed: 42)), io.get("sample_seed42"),
                                    rtol: wholeModelTolerance, "VAE sample, seed 42")
            try expectRelativeClose(posterior.sample(generators: [Generator(seed: 7), Generator(seed: 8)]),
                                    io.get("sample_seeds7_8"), rtol: wholeModelTolerance, "VAE sample, seeds [7, 8]")
            try expectCloseReporting(vae.decode(io.get("z")), io.get("decoded"), atol: wholeModelTolerance, "VAE decode")
            try expectCloseReporting(vae.decode(posterior.mode()), io.get("decoded_mode"), atol: wholeModelTolerance,
                                     "VAE decode(encode(x).mode())")
        }
    }

    @Test func legacyAttentionKeysAreRenamed() throws {
        let t = try Tensor.zeros([1])
        let state: [String: Tensor] = [
            "encoder.mid_block.attentions.0.query.weight": t, "encoder.mid_block.attentions.0.key.bias": t,
            "decoder.mid_block.attentions.0.value.weight": t, "decoder.mid_block.attentions.0.proj_attn.bias": t,
            "decoder.mid_block.attentions.0.group_norm.weight": t,
            "encoder.down_blocks.0.resnets.0.conv1.weight": t,
            // Only the mid-block attention was renamed in diffusers; look-alikes elsewhere stay.
            "down_blocks.0.attentions.0.key.weight": t, "mid_block.attentions.0.transformer_blocks.0.attn1.to_q.weight": t,
        ]
        let renamed = AutoencoderKL.renamingLegacyAttentionKeys(state)
        #expect(Set(renamed.keys) == [
            "encoder.mid_block.attentions.0.to_q.weight", "encoder.mid_block.attentions.0.to_k.bias",
            "decoder.mid_block.attentions.0.to_v.weight", "decoder.mid_block.attentions.0.to_out.0.bias",
            "decoder.mid_block.attentions.0.group_norm.weight", "encoder.down_blocks.0.resnets.0.conv1.weight",
            "down_blocks.0.attentions.0.key.weight", "mid_block.attentions.0.transformer_blocks.0.attn1.to_q.weight",
        ])
    }

    @Test func legacyKeyFileLoadsToTheSameModel() throws {
        let folder = try Fixtures.url(unetVAEArea, "vae_legacy")
        let file = try SafetensorsFile(url: folder.appendingPathComponent("diffusion_pytorch_model.safetensors"))
        #expect(file.keys.contains("decoder.mid_block.attentions.0.proj_attn.weight"))
        #expect(!file.keys.contains { $0.contains(".to_q.") })
        let vae = try AutoencoderKL.load(folder: folder)
        let io = try Fixtures.tensors(unetVAEArea, "vae_tiny_io")
        try noGrad {
            try expectCloseReporting(vae.decode(io.get("z")), io.get("decoded"), atol: wholeModelTolerance, "legacy VAE decode")
            try expectCloseReporting(vae.encode(io.get("x")).mean, io.get("mean"), atol: wholeModelTolerance, "legacy VAE mean")
        }
    }

    @Test func sd15ConfigTakesDiffusersDefaults() throws {
        let config = try fixtureJSON(AutoencoderKLConfig.self, "sd15_vae_config.json")
        #expect(config.scalingFactor == 0.18215)  // absent from SD1.5's hub file (formats.md §1.4)
        #expect(config.blockOutChannels == [128, 256, 512, 512] && config.layersPerBlock == 2)
        #expect(config.useQuantConv && config.usePostQuantConv && config.midBlockAddAttention && config.forceUpcast)
        #expect(config.shiftFactor == nil && config.sampleSize == .square(512))
    }

    @Test func sd15KeysAndShapesEqualDiffusers() throws {
        let config = try fixtureJSON(AutoencoderKLConfig.self, "sd15_vae_config.json")
        let expected = try fixtureJSON([String: [Int]].self, "sd15_vae_shapes.json")
        let store = VarStore(initialize: false)
        _ = try AutoencoderKL(store.root, config: config)
        #expect(store.count == expected.count)
        expectSameKeyShapes(keyShapes(store), expected, "SD1.5 VAE")
    }

    @Test func unsupportedConfigIsRejected() throws {
        let dir = try temporaryDirectory()
        let json = #"{"_class_name": "AutoencoderKL", "down_block_types": ["DownEncoderBlock2D", "AttnDownEncoderBlock2D"], "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"], "block_out_channels": [32, 64]}"#
        try Data(json.utf8).write(to: dir.appendingPathComponent("config.json"))
        let error = #expect(throws: DiffusersConfigError.self) { _ = try AutoencoderKL.load(folder: dir) }
        #expect(error?.key == "down_block_types")
        #expect(error?.description.contains(dir.path) == true)
    }
}
