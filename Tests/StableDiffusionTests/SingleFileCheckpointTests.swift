import Foundation
import Testing
import TestSupport
import Torch
@testable import StableDiffusion

@Suite struct SingleFileCheckpointTests {
    private func expectSameStateDict(_ actual: [String: Tensor], _ expected: [String: Tensor], _ what: String) throws {
        #expect(Set(actual.keys) == Set(expected.keys), "\(what): key sets differ: \(Set(actual.keys).symmetricDifference(expected.keys).sorted().prefix(8))")
        for (key, value) in expected {
            guard let got = actual[key] else { continue }
            try expectEqual(got, value, "\(what) \(key)")
        }
    }

    @Test func ldmCheckpointConvertsToTheDiffusersStateDicts() throws {
        let url = try Fixtures.url("single_file", "ldm.safetensors")
        let checkpoint = try SingleFileCheckpoint(url: url, unetLayersPerBlock: 2, vaeBlockCount: 2)
        #expect(checkpoint.unknown.isEmpty, "unknown keys: \(checkpoint.unknown)")
        #expect(checkpoint.ignored == ["alphas_cumprod", "cond_stage_model.transformer.text_model.embeddings.position_ids",
                                       "model_ema.decay"])
        try expectSameStateDict(checkpoint.unet, try Fixtures.tensors("single_file", "unet"), "unet")
        try expectSameStateDict(checkpoint.vae, try Fixtures.tensors("single_file", "vae"), "vae")
        try expectSameStateDict(checkpoint.textEncoder, try Fixtures.tensors("single_file", "text_encoder"), "text encoder")
    }

    /// An inpainting checkpoint is SD1.5 with a 9-channel conv_in; the UNet config follows that weight.
    @Test func inpaintingCheckpointsGetANineChannelUNet() throws {
        let url = try Fixtures.url("single_file", "ldm.safetensors")
        let checkpoint = try SingleFileCheckpoint(url: url, unetLayersPerBlock: 2, vaeBlockCount: 2)
        #expect(StableDiffusion15.unetConfig(for: checkpoint.unet).inChannels == 4)
        var unet = checkpoint.unet
        unet["conv_in.weight"] = try Tensor.zeros([32, 9, 3, 3])
        let config = StableDiffusion15.unetConfig(for: unet)
        #expect(config.inChannels == 9 && config.crossAttentionDim == 768)
    }

    @Test func unknownKeysAreReportedNotDropped() throws {
        let state: [String: Tensor] = [
            "model.diffusion_model.input_blocks.1.7.weight": try Tensor.zeros([1]),
            "lora_unet_down_blocks_0.alpha": try Tensor.zeros([]),
            "model.diffusion_model.out.2.weight": try Tensor.zeros([1]),
        ]
        let checkpoint = try SingleFileCheckpoint(ldm: state)
        #expect(checkpoint.unknown == ["lora_unet_down_blocks_0.alpha", "model.diffusion_model.input_blocks.1.7.weight"])
        #expect(Array(checkpoint.unet.keys) == ["conv_out.weight"])
    }

    /// A pickled .ckpt loads through the restricted reader: the same state dicts as the .safetensors file.
    @Test func pickledCheckpointsLoadWithoutUnpickling() throws {
        let ckpt = try SingleFileCheckpoint(url: try Fixtures.url("single_file", "ldm.ckpt"), unetLayersPerBlock: 2, vaeBlockCount: 2)
        try expectSameStateDict(ckpt.unet, try Fixtures.tensors("single_file", "unet"), "unet")
        try expectSameStateDict(ckpt.vae, try Fixtures.tensors("single_file", "vae"), "vae")
        try expectSameStateDict(ckpt.textEncoder, try Fixtures.tensors("single_file", "text_encoder"), "text encoder")
        // Not a torch checkpoint at all, or a bare pickle: refused, naming the file.
        let dir = try temporaryDirectory()
        let junk = dir.appendingPathComponent("v1-5-pruned.ckpt")
        try Data([0x50, 0x4B, 0x03, 0x04]).write(to: junk)
        let disguised = dir.appendingPathComponent("model.safetensors")
        try Data([0x80, 0x02, 0x7D, 0x71]).write(to: disguised)
        for url in [junk, disguised] {
            #expect { try SingleFileCheckpoint(url: url) } throws: { "\($0)".contains(url.path) }
        }
    }
}
