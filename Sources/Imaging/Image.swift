// The decoded image: 8-bit samples, interleaved, rows packed without padding. Its channel count says
// its mode in Pillow's terms: 1 = "L", 2 = "LA", 3 = "RGB", 4 = "RGBA".
import Torch

public struct Image: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA.
    public let channels: Int
    /// `height` rows of `width * channels` bytes.
    public let pixels: [UInt8]

    /// Checks that both sides are positive and that `pixels` holds exactly width × height × channels bytes.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) throws {
        guard width > 0, height > 0 else { throw ImageError.invalid("image size \(width)×\(height) is not positive") }
        guard (1...4).contains(channels) else { throw ImageError.invalid("\(channels) channels (1 to 4 are allowed)") }
        let (n, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, n.multipliedReportingOverflow(by: channels).overflow == false,
              n * channels == pixels.count else {
            throw ImageError.invalid("\(pixels.count) bytes do not hold \(width)×\(height)×\(channels) samples")
        }
        self.init(unchecked: width, height, channels, pixels)
    }

    /// For decoders and operations that computed the sizes themselves.
    init(unchecked width: Int, _ height: Int, _ channels: Int, _ pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// An image of one value in every sample (255: white, and opaque where there is alpha).
    public static func filled(width: Int, height: Int, channels: Int, value: UInt8 = 255) throws -> Image {
        guard width > 0, height > 0, (1...4).contains(channels),
              !width.multipliedReportingOverflow(by: height).overflow else {
            throw ImageError.invalid("cannot make a \(width)×\(height)×\(channels) image")
        }
        return try Image(width: width, height: height, channels: channels,
                         pixels: [UInt8](repeating: value, count: width * height * channels))
    }

    public var hasAlpha: Bool { channels == 2 || channels == 4 }
    public var isGray: Bool { channels <= 2 }
    public var rowBytes: Int { width * channels }

    /// One sample; `nil` outside the image.
    public func sample(x: Int, y: Int, channel: Int) -> UInt8? {
        guard (0..<width).contains(x), (0..<height).contains(y), (0..<channels).contains(channel) else { return nil }
        return pixels[(y * width + x) * channels + channel]
    }
}

// MARK: - Pixels as a uint8 (H, W, C) tensor

extension Image {
    /// The pixels as a uint8 tensor of shape (H, W, C), the layout of `np.asarray(pil_image)` (with C kept
    /// for grey images).
    public func hwcTensor() throws -> Tensor {
        try pixels.withUnsafeBytes { try Tensor(bytes: $0, shape: [height, width, channels], dtype: .uint8) }
    }

    /// An image from a uint8 (H, W, C) or (H, W) tensor on any device.
    public init(hwc tensor: Tensor) throws {
        let shape = tensor.shape
        guard tensor.dtype == .uint8, shape.count == 2 || shape.count == 3 else {
            throw ImageError.invalid("expected a uint8 (H, W, C) tensor, got \(shape) \(tensor.dtype)")
        }
        let c = shape.count == 3 ? shape[2] : 1
        let cpu = tensor.device == .cpu ? tensor : try tensor.to(.cpu)
        try self.init(width: shape[1], height: shape[0], channels: c, pixels: try cpu.contiguous().bytes())
    }
}

// MARK: - Mode conversions, as Pillow's Image.convert
// Integer pixel arithmetic runs on float64 tensors: every intermediate here is an integer below 2^53,
// so it is exact, and Double scalars keep float64 (an integer tensor with a Double scalar would
// become float32 under PyTorch's promotion rules and lose exactness).

extension Image {
    /// RGB: grey replicated, alpha dropped without compositing (Pillow's `convert("RGB")`).
    public func rgb() throws -> Image {
        switch channels {
        case 3: return self
        case 4: return try Image(hwc: try hwcTensor().narrow(dim: 2, start: 0, length: 3))
        default: return try Image(hwc: try hwcTensor().narrow(dim: 2, start: 0, length: 1).expand([height, width, 3]))
        }
    }

    /// RGBA: alpha kept, or 255 where there was none (Pillow's `convert("RGBA")`).
    public func rgba() throws -> Image {
        switch channels {
        case 4: return self
        case 3:
            let opaque = try Tensor.full([height, width, 1], 255, dtype: .uint8)
            return try Image(hwc: try Tensor.cat([try hwcTensor(), opaque], dim: 2))
        case 2:
            let t = try hwcTensor()
            let grey = try t.narrow(dim: 2, start: 0, length: 1).expand([height, width, 3])
            return try Image(hwc: try Tensor.cat([grey, try t.narrow(dim: 2, start: 1, length: 1)], dim: 2))
        default:
            return try rgb().rgba()
        }
    }

    /// Grey ("L"): Pillow's ITU-R 601-2 luma in 16-bit fixed point,
    /// (R·19595 + G·38470 + B·7471 + 0x8000) >> 16; alpha is dropped.
    public func gray() throws -> Image {
        switch channels {
        case 1: return self
        case 2: return try Image(hwc: try hwcTensor().narrow(dim: 2, start: 0, length: 1))
        default:
            let weights = try Tensor([19595.0, 38470, 7471])
            return try Image(hwc: try mapRowBands { band in
                let rgb = try band.narrow(dim: 2, start: 0, length: 3).to(.float64)
                return try ((rgb * weights).sum(dims: [2], keepDim: true) + 32768).floorDivide(65536).to(.uint8)
            })
        }
    }

    /// `transform` (per pixel, uint8 in and out) applied to bands of rows: its float64 intermediates then take
    /// a few MB, not gigabytes, for a large image.
    func mapRowBands(_ transform: (Tensor) throws -> Tensor) throws -> Tensor {
        let source = try hwcTensor()
        let rows = max(1, (1 << 20) / max(1, width * channels))
        let bands = try stride(from: 0, to: height, by: rows).map { start in
            try transform(source.narrow(dim: 0, start: start, length: min(rows, height - start)))
        }
        return bands.count == 1 ? bands[0] : try Tensor.cat(bands, dim: 0)
    }

    /// The image composited over an opaque background level (255: white), as Pillow's
    /// `Image.new(mode, size, background).paste(im, mask=alpha)`: round((bg·(255 − a) + v·a) / 255).
    /// Grey + alpha becomes grey, RGBA becomes RGB; images without alpha are returned unchanged.
    public func flattened(background: UInt8 = 255) throws -> Image {
        guard hasAlpha else { return self }
        let c = channels
        return try Image(hwc: try mapRowBands { band in
            let t = try band.to(.float64)
            let colour = try t.narrow(dim: 2, start: 0, length: c - 1)
            let alpha = try t.narrow(dim: 2, start: c - 1, length: 1)
            return try Image.divide255(try colour * alpha + (255 - alpha) * Double(background)).to(.uint8)
        })
    }

    /// round(x / 255) for integer-valued 0 ≤ x ≤ 255·255, exactly as Pillow's DIV255/MULDIV255 macros:
    /// t = x + 128; ((t >> 8) + t) >> 8.
    static func divide255(_ x: Tensor) throws -> Tensor {
        let t = try x + 128
        return try (t.floorDivide(256) + t).floorDivide(256)
    }
}

// MARK: - Errors

/// The one error type of the Imaging layer: every failure names the file (or "<memory>") and the reason.
public struct ImageError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Reason: Equatable, Sendable {
        /// The file has zero bytes.
        case empty
        /// The magic bytes are not PNG, JPEG or WebP; the payload says what they look like.
        case unsupportedFormat(String)
        /// The data stops before the image is complete.
        case truncated(String)
        /// The data is malformed (bad checksum, bad compressed stream, invalid header, codec error).
        case corrupt(String)
        /// The header claims more pixels than the limit: refused before anything is allocated.
        case tooLarge(width: Int, height: Int, limit: Int)
        /// The file could not be read or written.
        case io(String)
        /// A caller's mistake: a size, channel count or tensor shape that makes no sense.
        case invalidArgument(String)
    }

    public let file: String
    public let reason: Reason

    public init(file: String, reason: Reason) {
        self.file = file
        self.reason = reason
    }

    public var description: String {
        switch reason {
        case .empty: return "\(file): empty file (0 bytes)"
        case .unsupportedFormat(let what): return "\(file): unsupported image format (\(what)); PNG, JPEG and WebP are read"
        case .truncated(let why): return "\(file): truncated image data (\(why))"
        case .corrupt(let why): return "\(file): corrupt image (\(why))"
        case .tooLarge(let w, let h, let limit):
            let (pixels, overflow) = w.multipliedReportingOverflow(by: h)
            let count = overflow ? "more than \(Int.max)" : "\(pixels)"
            return "\(file): image is \(w)×\(h) = \(count) pixels, over the limit of \(limit) (possible decompression bomb)"
        case .io(let why): return "\(file): \(why)"
        case .invalidArgument(let why): return "\(file): \(why)"
        }
    }

    /// For operations on images in memory, which have no file name.
    static let memory = "<memory>"
    static func invalid(_ why: String) -> ImageError { ImageError(file: memory, reason: .invalidArgument(why)) }
}
