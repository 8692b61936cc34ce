// Matches transformers models/blip/image_processing_pil_blip.py `BlipImageProcessorPil` (5.23.0; what
// `BlipImageProcessor` falls back to without torchvision): resize to exactly `size` with PIL's filter on
// uint8 pixels, ×`rescale_factor` (in float64, stored as float32), then `(x − mean) / std`, with tensor ops.
// PIL's fixed-point resampling is reproduced by libtorch's antialiased kernels (the same a = −0.5 cubic and
// support scaling) in Pillow 13's two uint8 passes and their order: results differ by at most one level in
// a few pixels (the tests state the bound).
import Foundation
import Torch

public struct BlipImageProcessor: Sendable, Equatable {
    public var doResize = true
    public var height = 384
    public var width = 384
    /// PIL's resampling filter code: 0 nearest, 2 bilinear, 3 bicubic (BLIP's); others are unsupported.
    public var resample = 3
    public var doRescale = true
    public var rescaleFactor = 1.0 / 255
    public var doNormalize = true
    /// OpenAI CLIP's mean and std, BLIP's defaults.
    public var imageMean = [0.48145466, 0.4578275, 0.40821073]
    public var imageStd = [0.26862954, 0.26130258, 0.27577711]

    public init() {}

    /// Reads `preprocessor_config.json`; absent keys take `BlipImageProcessor`'s defaults.
    public init(configFile url: URL) throws {
        try self.init(try decodeJSONFile(url, as: PreprocessorConfig.self), url: url)
    }

    /// Reads the `image_processor` object of a `processor_config.json` (transformers 5's layout).
    public init(processorConfigFile url: URL) throws {
        struct ProcessorConfig: Decodable { var image_processor: PreprocessorConfig? }
        try self.init(try decodeJSONFile(url, as: ProcessorConfig.self).image_processor ?? PreprocessorConfig(), url: url)
    }

    private init(_ file: PreprocessorConfig, url: URL) throws {
        var p = BlipImageProcessor()
        p.doResize = file.do_resize ?? p.doResize
        if let size = file.size {
            guard let h = size["height"], let w = size["width"], h > 0, w > 0 else {
                throw BlipConfigError(file: url.path, key: "size",
                                      "needs positive \"height\" and \"width\" (BLIP resizes to an exact size), got \(size)")
            }
            (p.height, p.width) = (h, w)
        }
        p.resample = file.resample ?? p.resample
        p.doRescale = file.do_rescale ?? p.doRescale
        p.rescaleFactor = file.rescale_factor ?? p.rescaleFactor
        p.doNormalize = file.do_normalize ?? p.doNormalize
        p.imageMean = try Self.perChannel(file.image_mean, p.imageMean, key: "image_mean", file: url.path)
        p.imageStd = try Self.perChannel(file.image_std, p.imageStd, key: "image_std", file: url.path)
        guard [0, 2, 3].contains(p.resample) else {
            throw BlipConfigError(file: url.path, key: "resample",
                                  "PIL filter \(p.resample) is not supported (0 nearest, 2 bilinear, 3 bicubic)")
        }
        self = p
    }

    /// One value for all channels or one per RGB channel.
    private static func perChannel(_ value: OneOrMany?, _ fallback: [Double], key: String, file: String) throws -> [Double] {
        guard let value else { return fallback }
        switch value {
        case .one(let v): return [v, v, v]
        case .many(let list):
            guard list.count == 3 else { throw BlipConfigError(file: file, key: key, "needs 3 values (RGB), got \(list.count)") }
            return list
        }
    }

    /// `pixel_values` [B, 3, height, width] float32 for RGB `images` [B, 3, H, W] with values in [0, 1]
    /// (8-bit images divided by 255), on the images' device.
    public func callAsFunction(_ images: Tensor) throws -> Tensor {
        guard images.rank == 4, images.size(1) == 3 else {
            throw TorchError.invalidArgument("BLIP image processor expects RGB images [B, 3, H, W], got \(images.shape)")
        }
        // PIL works on uint8: the levels of the input, and of the resized image.
        var x = try (images.to(.float32) * 255).round().clamp(min: 0, max: 255)
        if doResize && (images.size(2) != height || images.size(3) != width) {
            if resample == 0 {
                x = try x.interpolate(size: (height, width), mode: .nearestExact)
            } else {
                // PIL resizes in two passes, each rounded and clipped to uint8 (bicubic overshoot is clipped
                // in between); Pillow 13 runs the vertical pass first when the height shrinks by more than
                // twice as many pixels as the width. A pass along one axis leaves the other untouched.
                let mode: InterpolationMode = resample == 3 ? .bicubic : .bilinear
                let (inHeight, inWidth) = (images.size(2), images.size(3))
                let verticalFirst = inHeight - height > 0 && inHeight - height > 2 * (inWidth - width)
                func pass(_ t: Tensor, _ size: (Int, Int)) throws -> Tensor {
                    guard size != (t.size(2), t.size(3)) else { return t }
                    return try t.interpolate(size: size, mode: mode, antialias: true).round().clamp(min: 0, max: 255)
                }
                x = verticalFirst ? try pass(pass(x, (height, inWidth)), (height, width))
                                  : try pass(pass(x, (inHeight, width)), (height, width))
            }
        }
        if doRescale { x = try (x.to(.float64) * rescaleFactor).to(.float32) }
        if doNormalize {
            let mean = try Tensor(imageMean.map(Float.init), shape: [1, 3, 1, 1]).to(x.device)
            let std = try Tensor(imageStd.map(Float.init), shape: [1, 3, 1, 1]).to(x.device)
            x = try (x - mean) / std
        }
        return x
    }
}

/// `image_mean`/`image_std`: a number or a list.
private enum OneOrMany: Decodable {
    case one(Double)
    case many([Double])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Double.self) { self = .one(v) } else { self = .many(try c.decode([Double].self)) }
    }
}

/// The keys of preprocessor_config.json this processor reads, spelled as in the file.
private struct PreprocessorConfig: Decodable {
    var do_resize: Bool?
    var size: [String: Int]?
    var resample: Int?
    var do_rescale: Bool?
    var rescale_factor: Double?
    var do_normalize: Bool?
    var image_mean: OneOrMany?
    var image_std: OneOrMany?
}
