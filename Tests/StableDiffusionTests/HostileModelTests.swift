// Models and settings that used to grow to all RAM or end in a quiet black image (issue 17): each is refused
// before the work, naming the file, flag or key.
import Foundation
import Testing
import TestSupport
import Torch
@testable import StableDiffusion

/// A writable copy of the tiny pipeline model (the fixture folder is never written).
private func modelCopy() throws -> URL {
    let copy = FileManager.default.temporaryDirectory.appendingPathComponent("inkwell-hostile-\(UUID().uuidString)")
    try FileManager.default.copyItem(at: try Fixtures.url("pipeline", "model"), to: copy)
    return copy
}

/// Sets `key` of `folder/config.json` to `value`.
private func patchConfig(_ folder: URL, _ key: String, _ value: Any) throws {
    let url = folder.appendingPathComponent("config.json")
    var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    object[key] = value
    try JSONSerialization.data(withJSONObject: object).write(to: url)
}

private func errorText(_ body: () throws -> Void) -> String {
    do { try body(); return "" } catch { return "\(error)" }
}

@Suite struct HostileModelTests {
    /// Was: the UNet grew to all RAM building a billion layers before the weights were looked at.
    @Test func configLargerThanItsWeightsIsRefusedAtItsFirstExtraParameter() throws {
        let model = try modelCopy()
        defer { try? FileManager.default.removeItem(at: model) }
        let unet = model.appendingPathComponent("unet")
        try patchConfig(unet, "layers_per_block", 1_000_000_000)
        let text = errorText { _ = try UNet2DConditionModel.load(folder: unet) }
        #expect(text.contains(unet.appendingPathComponent("config.json").path))
        #expect(text.contains("diffusion_pytorch_model.safetensors") && text.contains("larger than"))
        // Channels whose single parameter would take terabytes: refused before that allocation.
        try patchConfig(unet, "layers_per_block", 1)
        try patchConfig(unet, "block_out_channels", [32, 1 << 40])
        #expect(errorText { _ = try UNet2DConditionModel.load(folder: unet) }.contains("larger than"))
        let text2 = model.appendingPathComponent("text_encoder")
        try patchConfig(text2, "num_hidden_layers", 1_000_000_000)
        #expect(errorText { _ = try CLIPTextModel.load(directory: text2) }.contains("text_encoder/config.json"))
        let vae = model.appendingPathComponent("vae")
        try patchConfig(vae, "layers_per_block", 1_000_000_000)
        #expect(errorText { _ = try AutoencoderKL.load(folder: vae) }.contains("vae/config.json"))
    }

    @Test func nonFiniteWeightsAreReportedAtLoadWithTheirNames() throws {
        let model = try modelCopy()
        defer { try? FileManager.default.removeItem(at: model) }
        let file = model.appendingPathComponent("unet/diffusion_pytorch_model.safetensors")
        let tensors = try SafetensorsFile(url: file).tensors().mapValues { try $0.clone() }
        try tensors["conv_in.bias"]!.fill_(.nan)
        try Safetensors.save(tensors, to: file)
        let text = errorText { _ = try UNet2DConditionModel.load(folder: model.appendingPathComponent("unet")) }
        #expect(text.contains(file.path) && text.contains("conv_in.bias") && text.contains("NaN"))
    }

    /// Was: a NaN result was clamped to an all-black PNG and the command exited 0.
    @Test func nonFiniteGenerationIsAnError() throws {
        let pipe = try StableDiffusionPipeline.load(.diffusersFolder(try Fixtures.url("pipeline", "model")),
                                                    device: .cpu, dtype: .float32)
        var options = GenerationOptions(prompt: "a rose")
        (options.width, options.height, options.steps) = (32, 32, 2)
        options.guidanceScale = 1e308
        let text = errorText { _ = try pipe(options) }
        #expect(text.contains("NaN or infinite") && text.contains("no image was written"))
    }

    @Test func memoryNeedRefusesAbsurdSizesAndBatchesWithTheEstimate() throws {
        let sd15 = try #require(MemoryNeed.generation(width: 512, height: 512, batch: 1))
        #expect(sd15 > 100_000_000 && sd15 < 2_000_000_000)
        try MemoryNeed.check(sd15, settings: "--size 512", remedy: "", available: 4_000_000_000)
        let huge = MemoryNeed.generation(width: 100_000, height: 100_000, batch: 1)
        let text = errorText { try MemoryNeed.check(huge, settings: "--size 100000x100000", remedy: "lower --size",
                                                    available: 32_000_000_000) }
        #expect(text.contains("--size 100000x100000") && text.contains("TB") && text.contains("32.0 GB"))
        #expect(MemoryNeed.generation(width: Int.max / 2, height: 8, batch: 1) == nil)
        #expect(errorText { try MemoryNeed.check(nil, settings: "--batch 9", remedy: "") }.contains("overflows"))
        #expect(MemoryNeed.training(resolution: 512, batch: 100_000_000)! > 1 << 50)
    }

    /// Was: a named pipe given as --model blocked the process forever.
    @Test func modelPathThatIsAPipeIsRefusedByType() throws {
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("inkwell-fifo-\(UUID().uuidString).safetensors")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        defer { try? FileManager.default.removeItem(at: fifo) }
        #expect(errorText { _ = try ModelSource(path: fifo.path) }.contains("named pipe"))
    }

    /// Was: --out naming a file failed only after the images were generated, with a raw Foundation message.
    @Test func outputFolderThatIsAFileIsRefusedNamingTheFlag() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("inkwell-out-\(UUID().uuidString)")
        try Data("x".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(errorText { try TextToImageJob.checkOutputDirectory(file, setting: "--out") }.contains("--out \(file.path)"))
        try TextToImageJob.checkOutputDirectory(file.appendingPathExtension("new"), setting: "--out")
    }
}
