// BlipImageProcessor against transformers' BlipImageProcessor (5.23.0, the PIL backend it uses without
// torchvision), live: raw uint8 images of several sizes (downscaled, upscaled, unchanged) processed by
// reference/fixtures/blip.py. PIL resamples in fixed point on uint8; Inkwell uses libtorch's antialiased
// kernels on the same uint8 levels, so a resized pixel may land one level off: the bound is one level after
// normalisation, 1/255/min(std) ≈ 0.0150, and at most 2% of the values may differ at all. An image that
// needs no resize must match to float precision.
import Foundation
import Testing
import TestSupport
import Torch
@testable import Captioning

@Suite struct BlipImageProcessorTests {
    static let images = [
        "image_smooth_45x61", "image_noise_70x50", "image_noise_20x27", "image_noise_32x32", "image_noise_40x16",
    ]

    @Test(arguments: images) func matchesTransformers(name: String) throws {
        let processor = try BlipImageProcessor(configFile: tinyFolder().appendingPathComponent("preprocessor_config.json"))
        #expect(processor.height == 32 && processor.width == 32 && processor.resample == 3)
        let f = try Fixtures.tensors(blipArea, "image_processor")
        // HWC uint8 → [1, 3, H, W] in [0, 1], the form the captioner takes.
        let image = try f.get(name).permute([2, 0, 1]).unsqueeze(0).to(.float32) / 255
        let actual = try processor(image)
        let expected = try f.get(name + "_pixel_values")
        let oneLevel = 1 / 255 / processor.imageStd.min()!
        let resized = image.size(2) != 32 || image.size(3) != 32
        try expectCloseReporting(actual, expected, atol: resized ? oneLevel + 1e-6 : 1e-6, "pixel values of \(name)")
        let differing = try (actual - expected).abs().gt(1e-6).to(.float32).mean().item()
        print("[parity] pixel values of \(name): \(differing * 100)% differ")
        #expect(differing <= (resized ? 0.02 : 0), "\(differing * 100)% of the pixel values of \(name) differ")
    }

    @Test func defaultsAndConfigErrors() throws {
        let defaults = BlipImageProcessor()
        #expect(defaults.height == 384 && defaults.width == 384 && defaults.resample == 3 && defaults.doNormalize)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("preprocessor_config.json")
        try "{\"size\": {\"shortest_edge\": 384}}".write(to: file, atomically: true, encoding: .utf8)
        do {
            _ = try BlipImageProcessor(configFile: file)
            Issue.record("a shortest_edge size was accepted")
        } catch let error as BlipConfigError {
            #expect(error.key == "size" && error.file == file.path)
        }
        try "{\"resample\": 1}".write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: BlipConfigError.self) { try BlipImageProcessor(configFile: file) }
    }
}
