import Foundation
import Imaging
import Testing
import TestSupport
import Torch
@testable import Evaluation

/// Parity with transformers' CLIPImageProcessor, which without torchvision is CLIPImageProcessorPil (the
/// fixture script asserts that class). Pixel values must be identical: every step is integer arithmetic
/// (Pillow-exact decode, alpha composite and bicubic resize) or the same float64/float32 operations.
@Suite struct CLIPImageProcessorTests {
    private func check(config file: URL, images names: [String], expected key: String) throws {
        let processor = try CLIPImageProcessor.load(from: file)
        let images = try names.map(CLIPFixture.image)
        let pixels = try processor.pixelValues(images)
        let expected = try CLIPFixture.outputs().get(key)
        try expectEqual(pixels, expected, key)
        // Which image went wrong, if any.
        for (i, name) in names.enumerated() where pixels.shape == expected.shape {
            let diff = try maxAbsDiff(pixels.select(dim: 0, index: i), expected.select(dim: 0, index: i))
            #expect(diff == 0, "\(key) \(name): max abs diff \(diff)")
        }
    }

    /// The tiny model's processor (size/crop 32 in save_pretrained's dict format) on RGB images wider, taller,
    /// smaller and exactly the size of the crop, an RGBA image (composited on white) and a grey one. "small"
    /// and "gray" resize to an odd overhang (43 − 32 = 11 rows): transformers crops at ⌊5.5⌋ = 5 where
    /// torchvision's CenterCrop would take 6, so a rounding crop fails here.
    @Test func tinyConfigMatchesTransformers() throws {
        let inputs = try CLIPFixture.inputs()
        try check(config: try CLIPFixture.folder("tiny", probe: "preprocessor_config.json"),
                  images: inputs.tiny_images, expected: "pixel_values_tiny")
    }

    /// openai/clip-vit-base-patch32's preprocessor_config.json verbatim (ints for size and crop_size) on
    /// larger images (downscaled, upscaled, already 224) and the small ones.
    @Test func realConfigMatchesTransformers() throws {
        let inputs = try CLIPFixture.inputs()
        let file = try Fixtures.url(CLIPFixture.area, "vitb32/preprocessor_config.json")
        let config = try CLIPImageProcessor.load(from: file).config
        #expect(config.size == .shortestEdge(224) && config.cropHeight == 224 && config.cropWidth == 224)
        #expect(config.resample == 3 && config.doConvertRgb)
        try check(config: file, images: inputs.large_images + inputs.tiny_images, expected: "pixel_values_224")
    }

    /// A crop taller than the resized image: zero pixels (before normalising) above and below it.
    @Test func cropLargerThanImagePadsLikeTransformers() throws {
        let inputs = try CLIPFixture.inputs()
        let file = try Fixtures.url(CLIPFixture.area, "pad_preprocessor_config.json")
        #expect(try CLIPImageProcessor.load(from: file).config.cropWidth == 30)
        try check(config: file, images: inputs.tiny_images, expected: "pixel_values_pad")
    }

    @Test func configFormsAndErrors() throws {
        let defaults = try JSONDecoder().decode(CLIPImageProcessorConfig.self, from: Data("{}".utf8))
        #expect(defaults == CLIPImageProcessorConfig())
        #expect(defaults.size == .shortestEdge(224) && defaults.rescaleFactor == 1.0 / 255)
        let pair = try JSONDecoder().decode(CLIPImageProcessorConfig.self,
                                            from: Data(#"{"size": [20, 30], "crop_size": [10, 12], "image_mean": 0.5}"#.utf8))
        #expect(pair.size == .exact(height: 20, width: 30) && pair.cropHeight == 10 && pair.cropWidth == 12)
        #expect(pair.imageMean == [0.5, 0.5, 0.5])

        let dir = try temporaryDirectory()
        let file = dir.appendingPathComponent("preprocessor_config.json")
        #expect { try CLIPImageProcessor.load(from: dir) } throws: { "\($0)".contains(file.path) }
        try Data(#"{"size": {"longest_edge": 5}}"#.utf8).write(to: file)
        #expect { try CLIPImageProcessor.load(from: dir) } throws: { "\($0)".contains(file.path) }
        try Data(#"{"resample": 0}"#.utf8).write(to: file)
        #expect { try CLIPImageProcessor.load(from: file) } throws: { "\($0)".contains(file.path) && "\($0)".contains("resample") }
        try Data(#"{"image_std": [1, 0, 1]}"#.utf8).write(to: file)
        #expect { try CLIPImageProcessor.load(from: file) } throws: { "\($0)".contains(file.path) }
        #expect(throws: CLIPModelError.self) { try CLIPImageProcessor().pixelValues([]) }
    }
}
