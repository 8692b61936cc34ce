// transformers models/clip/image_processing_pil_clip.py: CLIPImageProcessorPil (image_processing_backends.py
// PilBackend: convert_to_rgb, resize, center_crop, rescale, normalize), the class `CLIPImageProcessor` falls back
// to without torchvision. Every step is the same integer or float32 arithmetic, so pixel values are identical.
import Foundation
import Imaging
import Torch

/// A `preprocessor_config.json`, decoded unchanged; absent keys take CLIPImageProcessor's defaults.
public struct CLIPImageProcessorConfig: Decodable, Equatable, Sendable {
    /// Where `size` sends the image before cropping.
    public enum Size: Equatable, Sendable {
        /// The short side becomes this; the long side int(short · long / short_in) (truncated).
        case shortestEdge(Int)
        case exact(height: Int, width: Int)
    }

    public var doResize = true
    public var size = Size.shortestEdge(224)
    /// PIL's resampling filter number (3 = BICUBIC).
    public var resample = 3
    public var doCenterCrop = true
    public var cropHeight = 224
    public var cropWidth = 224
    public var doRescale = true
    /// 1/255 as Python writes it; applied in float64 then cast to float32, as transformers' `rescale`.
    public var rescaleFactor = 0.00392156862745098
    public var doNormalize = true
    public var imageMean: [Double] = [0.48145466, 0.4578275, 0.40821073]
    public var imageStd: [Double] = [0.26862954, 0.26130258, 0.27577711]
    public var doConvertRgb = true

    enum CodingKeys: String, CodingKey {
        case doResize = "do_resize", size, resample, doCenterCrop = "do_center_crop", cropSize = "crop_size"
        case doRescale = "do_rescale", rescaleFactor = "rescale_factor", doNormalize = "do_normalize"
        case imageMean = "image_mean", imageStd = "image_std", doConvertRgb = "do_convert_rgb"
    }

    private struct SizeDict: Decodable {
        var shortest_edge: Int?
        var longest_edge: Int?
        var height: Int?
        var width: Int?
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CLIPImageProcessorConfig()
        doResize = try c.decodeIfPresent(Bool.self, forKey: .doResize) ?? d.doResize
        resample = try c.decodeIfPresent(Int.self, forKey: .resample) ?? d.resample
        doCenterCrop = try c.decodeIfPresent(Bool.self, forKey: .doCenterCrop) ?? d.doCenterCrop
        doRescale = try c.decodeIfPresent(Bool.self, forKey: .doRescale) ?? d.doRescale
        rescaleFactor = try c.decodeIfPresent(Double.self, forKey: .rescaleFactor) ?? d.rescaleFactor
        doNormalize = try c.decodeIfPresent(Bool.self, forKey: .doNormalize) ?? d.doNormalize
        imageMean = try Self.perChannel(c, .imageMean) ?? d.imageMean
        imageStd = try Self.perChannel(c, .imageStd) ?? d.imageStd
        doConvertRgb = try c.decodeIfPresent(Bool.self, forKey: .doConvertRgb) ?? d.doConvertRgb
        // get_size_dict: an int `size` is the shortest edge (CLIP's default_to_square=False), an int
        // `crop_size` a square; a pair is (height, width); a dict names its keys.
        if let edge = try? c.decodeIfPresent(Int.self, forKey: .size) {
            size = .shortestEdge(edge)
        } else if let pair = try? c.decodeIfPresent([Int].self, forKey: .size), pair.count == 2 {
            size = .exact(height: pair[0], width: pair[1])
        } else if let dict = try c.decodeIfPresent(SizeDict.self, forKey: .size) {
            if let edge = dict.shortest_edge, dict.longest_edge == nil, dict.height == nil, dict.width == nil {
                size = .shortestEdge(edge)
            } else if let h = dict.height, let w = dict.width, dict.shortest_edge == nil, dict.longest_edge == nil {
                size = .exact(height: h, width: w)
            } else {
                throw DecodingError.dataCorruptedError(
                    forKey: .size, in: c, debugDescription: "size must be {shortest_edge} or {height, width}")
            }
        }
        if let side = try? c.decodeIfPresent(Int.self, forKey: .cropSize) {
            (cropHeight, cropWidth) = (side, side)
        } else if let pair = try? c.decodeIfPresent([Int].self, forKey: .cropSize), pair.count == 2 {
            (cropHeight, cropWidth) = (pair[0], pair[1])
        } else if let dict = try c.decodeIfPresent(SizeDict.self, forKey: .cropSize) {
            guard let h = dict.height, let w = dict.width else {
                throw DecodingError.dataCorruptedError(forKey: .cropSize, in: c,
                                                       debugDescription: "crop_size must have height and width")
            }
            (cropHeight, cropWidth) = (h, w)
        }
    }

    /// A number for all channels or one per channel.
    private static func perChannel(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> [Double]? {
        if let one = try? c.decodeIfPresent(Double.self, forKey: key) { return [one, one, one] }
        return try c.decodeIfPresent([Double].self, forKey: key)
    }

    /// The Imaging filter for PIL's number; NEAREST (0) is not available there.
    func filter(source: String) throws -> ResampleFilter {
        switch resample {
        case 1: return .lanczos
        case 2: return .bilinear
        case 3: return .bicubic
        case 4: return .box
        case 5: return .hamming
        default: throw CLIPModelError.invalidConfig(source, "resample \(resample) is not supported (1...5)")
        }
    }

    public func validate(source: String = "CLIPImageProcessorConfig") throws {
        _ = try filter(source: source)
        let sides: [Int]
        switch size {
        case .shortestEdge(let edge): sides = [edge]
        case .exact(let h, let w): sides = [h, w]
        }
        guard sides.allSatisfy({ $0 > 0 }) else { throw CLIPModelError.invalidConfig(source, "size must be positive") }
        guard cropHeight > 0, cropWidth > 0 else { throw CLIPModelError.invalidConfig(source, "crop_size must be positive") }
        guard imageMean.count == 3, imageStd.count == 3, !imageStd.contains(0) else {
            throw CLIPModelError.invalidConfig(source, "image_mean and image_std need 3 values, std non-zero")
        }
    }
}

/// CLIP's image preprocessing: RGB on white, resize (shortest edge, PIL filter), centre crop, rescale, normalise.
public struct CLIPImageProcessor: Sendable {
    public let config: CLIPImageProcessorConfig
    private let filter: ResampleFilter

    public init(config: CLIPImageProcessorConfig = CLIPImageProcessorConfig()) throws {
        try config.validate()
        self.config = config
        filter = try config.filter(source: "CLIPImageProcessorConfig")
    }

    /// Reads `preprocessor_config.json` (a file, or the folder holding one); in a folder without one, the
    /// `image_processor` object of `processor_config.json` (what transformers 5 saves). Errors name the file.
    public static func load(from url: URL) throws -> CLIPImageProcessor {
        var isDirectory: ObjCBool = false
        let isFolder = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
        let file = isFolder ? url.appendingPathComponent("preprocessor_config.json") : url
        let nested = url.appendingPathComponent("processor_config.json")
        let config: CLIPImageProcessorConfig
        if isFolder && !FileManager.default.fileExists(atPath: file.path) && FileManager.default.fileExists(atPath: nested.path) {
            struct ProcessorConfig: Decodable { var image_processor: CLIPImageProcessorConfig? }
            config = try CLIPModelError.decode(ProcessorConfig.self, from: nested).image_processor ?? CLIPImageProcessorConfig()
            try config.validate(source: nested.path)
            return try CLIPImageProcessor(config: config)
        }
        config = try CLIPModelError.decode(CLIPImageProcessorConfig.self, from: file)
        try config.validate(source: file.path)
        return try CLIPImageProcessor(config: config)
    }

    /// `pixel_values` of the images: [N, 3, H, W] float32 on `device` (the crop size when cropping).
    public func pixelValues(_ images: [Image], device: Device = .cpu) throws -> Tensor {
        guard !images.isEmpty else { throw CLIPModelError.invalidInput("no images to preprocess") }
        let batch = try Tensor.stack(try images.map { try self($0) })
        return device == .cpu ? batch : try batch.to(device)
    }

    /// One image as a [3, H, W] float32 tensor, the processor's steps in its order.
    public func callAsFunction(_ image: Image) throws -> Tensor {
        var image = image
        // convert_to_rgb: a PIL image with alpha is alpha-composited on opaque white (Imaging's flatten is
        // the same integer formula), grey is replicated.
        if config.doConvertRgb { image = try image.flattened(background: 255).rgb() }
        guard image.channels == 3 else {
            throw CLIPModelError.invalidInput("image has \(image.channels) channels; do_convert_rgb is off and CLIP needs RGB")
        }
        if config.doResize {
            switch config.size {
            case .shortestEdge(let edge):
                // get_resize_output_image_size(default_to_square=False): the long side is truncated.
                let short = min(image.width, image.height), long = max(image.width, image.height)
                let newLong = Int(Double(edge * long) / Double(short))
                image = image.width <= image.height
                    ? try Self.pillowResize(image, width: edge, height: newLong, filter: filter)
                    : try Self.pillowResize(image, width: newLong, height: edge, filter: filter)
            case .exact(let h, let w):
                image = try Self.pillowResize(image, width: w, height: h, filter: filter)
            }
        }
        var t = try image.hwcTensor().permute([2, 0, 1])  // uint8 [3, H, W]
        if config.doCenterCrop { t = try centerCrop(t) }
        if config.doRescale {
            t = try (t.to(.float64) * config.rescaleFactor).to(.float32)
        } else {
            t = try t.to(.float32)
        }
        if config.doNormalize {
            // float32 constants and float32 arithmetic, as numpy's ((x.T - mean) / std).T.
            let mean = try Tensor(config.imageMean.map(Float.init), shape: [3, 1, 1])
            let std = try Tensor(config.imageStd.map(Float.init), shape: [3, 1, 1])
            t = try (t - mean) / std
        }
        return try t.contiguous()
    }

    /// Pillow's `Image.resize` (Imaging's `resized` follows Pillow 13's pass order).
    static func pillowResize(_ image: Image, width: Int, height: Int, filter: ResampleFilter) throws -> Image {
        try image.resized(width: width, height: height, filter: filter)
    }

    /// transformers' `center_crop`: offsets ⌊(size − crop) / 2⌋; along an axis shorter than the crop the
    /// image is zero-padded, ⌈(crop − size) / 2⌉ before it.
    private func centerCrop(_ t: Tensor) throws -> Tensor {
        var t = t
        for (dim, crop) in [(1, config.cropHeight), (2, config.cropWidth)] {
            let size = t.size(dim)
            if size >= crop {
                t = try t.narrow(dim: dim, start: (size - crop) / 2, length: crop)
            } else {
                let before = (crop - size + 1) / 2
                // F.pad lists (before, after) from the last dimension.
                let pads = dim == 2 ? [before, crop - size - before, 0, 0] : [0, 0, before, crop - size - before]
                t = try t.pad(pads, mode: .constant, value: 0)
            }
        }
        return t
    }
}
