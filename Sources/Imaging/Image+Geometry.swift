// Resize, crop and pad. Resizing reproduces Pillow's `Image.resize` exactly (libImaging/Resample.c): separable
// convolution, horizontal pass first, each pass in 22-bit fixed point rounded and clipped to uint8;
// RGBA and LA are resized premultiplied, as Pillow does. The weights are computed here (a few numbers
// per output column); the pixel work is banded matrix products, exact in float64.
import Foundation
import Torch

public enum ResampleFilter: String, Sendable, CaseIterable {
    case box, bilinear, hamming, bicubic, lanczos

    /// Half-width of the kernel at scale 1.
    var support: Double {
        switch self {
        case .box: return 0.5
        case .bilinear, .hamming: return 1
        case .bicubic: return 2
        case .lanczos: return 3
        }
    }

    func weight(_ x: Double) -> Double {
        switch self {
        case .box:
            return x > -0.5 && x <= 0.5 ? 1 : 0
        case .bilinear:
            let a = abs(x)
            return a < 1 ? 1 - a : 0
        case .hamming:
            let a = abs(x)
            if a == 0 { return 1 }
            if a >= 1 { return 0 }
            let px = a * Double.pi
            return sin(px) / px * (0.54 + 0.46 * cos(px))
        case .bicubic:
            // Keys' cubic with a = −0.5, as Pillow.
            let a = -0.5, t = abs(x)
            if t < 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
            if t < 2 { return (((t - 5) * t + 8) * t - 4) * a }
            return 0
        case .lanczos:
            return x >= -3 && x < 3 ? ResampleFilter.sinc(x) * ResampleFilter.sinc(x / 3) : 0
        }
    }

    static func sinc(_ x: Double) -> Double {
        if x == 0 { return 1 }
        let px = x * Double.pi
        return sin(px) / px
    }
}

/// One pass's kernel, Pillow's precompute_coeffs + normalize_coeffs_8bpc: for every output position
/// the first input index it reads, how many it reads, and their weights in 22-bit fixed point.
struct ResampleKernel {
    static let precisionBits = 22  // 32 − 8 − 2, Pillow's PRECISION_BITS for 8-bit images
    /// Output positions per matrix product: a block reads a window of about `block · scale + taps` inputs.
    static let block = 32
    let inSize: Int
    let outSize: Int
    var first: [Int]
    var counts: [Int]
    var weights: [[Double]]
    /// For each block of `block` outputs (from output 0): its input window and its banded weight matrix,
    /// (outputs, window) row-major, built once rather than on every band of a large image.
    var blockWindows: [Range<Int>] = []
    var blockMatrices: [[Double]] = []

    /// `box`: the part of the input, in input pixels, that the outputs span (Pillow's resize `box`, one axis);
    /// nil: all of it.
    init(inSize: Int, outSize: Int, filter: ResampleFilter, box: (Double, Double)? = nil) {
        self.inSize = inSize
        self.outSize = outSize
        let (in0, in1) = box ?? (0, Double(inSize))
        let scale = (in1 - in0) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        let inverse = 1 / filterScale
        first = []
        counts = []
        weights = []
        for xx in 0..<outSize {
            let center = in0 + (Double(xx) + 0.5) * scale
            let xmin = max(Int(center - support + 0.5), 0)  // Int() truncates toward zero, as C's cast
            let count = max(min(Int(center + support + 0.5), inSize) - xmin, 0)
            var k = (0..<count).map { filter.weight((Double($0 + xmin) - center + 0.5) * inverse) }
            let total = k.reduce(0, +)
            if total != 0 { k = k.map { $0 / total } }
            // Round half away from zero into fixed point, then truncate, as Pillow's (int) cast.
            let one = Double(1 << ResampleKernel.precisionBits)
            first.append(xmin)
            counts.append(count)
            weights.append(k.map { w in Double(Int(w < 0 ? w * one - 0.5 : w * one + 0.5)) })
        }
        makeBlocks()
    }

    /// The same kernel with both axes running backwards: output j is output `outSize − 1 − j` of this one,
    /// reading the mirrored inputs with the same weights. Resizing a flipped image with this kernel gives,
    /// bit for bit, the flip of resizing the image with this one (the weights are not recomputed, so no
    /// rounding can differ).
    func mirrored() -> ResampleKernel {
        var m = self
        m.first = (0..<outSize).map { j in inSize - first[outSize - 1 - j] - counts[outSize - 1 - j] }
        m.counts = counts.reversed()
        m.weights = weights.reversed().map { $0.reversed() }
        m.makeBlocks()
        return m
    }

    private mutating func makeBlocks() {
        blockWindows = []
        blockMatrices = []
        for start in stride(from: 0, to: outSize, by: Self.block) {
            let outputs = start..<min(start + Self.block, outSize)
            blockWindows.append(window(outputs))
            blockMatrices.append(matrix(outputs))
        }
    }

    /// The weights of `outputs` over their window, (outputs, window) row-major.
    func matrix(_ outputs: Range<Int>) -> [Double] {
        let window = self.window(outputs)
        var band = [Double](repeating: 0, count: outputs.count * window.count)
        for j in outputs {
            for (t, w) in weights[j].enumerated() { band[(j - outputs.lowerBound) * window.count + first[j] - window.lowerBound + t] = w }
        }
        return band
    }

    /// Resamples the last dimension of an (N, inSize) float64 tensor of integer samples to
    /// (N, outSize), rounding and clipping to 0…255 like Pillow. Each block of outputs is one matrix
    /// product with the banded weights of its input window; every product and sum is an integer below
    /// 2^53, so float64 is exact whatever order BLAS adds in (and however the work is split).
    func apply(_ x: Tensor) throws -> Tensor { try apply(x, outputs: 0..<outSize, inputOffset: 0) }

    /// Outputs `outputs` only, from an (N, k) tensor holding inputs `inputOffset ..< inputOffset + k`, which
    /// must cover `window(outputs)`.
    func apply(_ x: Tensor, outputs: Range<Int>, inputOffset: Int) throws -> Tensor {
        var pieces: [Tensor] = []
        for start in stride(from: outputs.lowerBound, to: outputs.upperBound, by: ResampleKernel.block) {
            let end = min(start + ResampleKernel.block, outputs.upperBound)
            // Blocks aligned to the precomputed ones (all of them, for whole passes and the row stream) reuse them.
            let index = start / ResampleKernel.block
            let cached = start % ResampleKernel.block == 0 && end == min(start + ResampleKernel.block, outSize)
            let window = cached ? blockWindows[index] : self.window(start..<end)
            let (lo, hi) = (window.lowerBound, window.upperBound)
            let matrix = try Tensor(cached ? blockMatrices[index] : self.matrix(start..<end), shape: [end - start, hi - lo])
            pieces.append(try x.narrow(dim: 1, start: lo - inputOffset, length: hi - lo).matmul(matrix.transpose(0, 1)))
        }
        let sum = pieces.count == 1 ? pieces[0] : try Tensor.cat(pieces, dim: 1)
        let half = Double(1 << (ResampleKernel.precisionBits - 1)), one = Double(1 << ResampleKernel.precisionBits)
        return try (sum + half).floorDivide(one).clamp(min: 0, max: 255)
    }

    /// The inputs that `outputs` read (never empty, as the matrix products need a column).
    func window(_ outputs: Range<Int>) -> Range<Int> {
        let lo = first[outputs].min() ?? 0
        let hi = max(lo + 1, outputs.map { first[$0] + counts[$0] }.max() ?? lo + 1)
        return lo..<hi
    }
}

extension Image {
    /// Pillow's `Image.resize((width, height), filter)`, pixel for pixel.
    public func resized(width: Int, height: Int, filter: ResampleFilter = .bicubic) throws -> Image {
        try resized(width: width, height: height, filter: filter, bandValues: 1 << 21)
    }

    /// `bandValues`: how many float64 values one band holds (16 MB by default).
    func resized(width: Int, height: Int, filter: ResampleFilter, bandValues: Int) throws -> Image {
        guard width > 0, height > 0 else { throw ImageError.invalid("cannot resize to \(width)×\(height)") }
        if width == self.width && height == self.height { return self }
        let resizer = try RowResizer(sourceWidth: self.width, sourceHeight: self.height, channels: channels,
                                     width: width, height: height, filter: filter, bandValues: bandValues)
        let rows = max(1, bandValues / (self.width * channels)), rowBytes = self.rowBytes
        try pixels.withUnsafeBytes { raw in
            for start in stride(from: 0, to: self.height, by: rows) {
                let n = min(rows, self.height - start)
                let band = UnsafeRawBufferPointer(rebasing: raw[(start * rowBytes)..<((start + n) * rowBytes)])
                try resizer.append(try Tensor(bytes: band, shape: [n, self.width, channels], dtype: .uint8))
            }
        }
        return try resizer.finish()
    }

    /// torchvision's `Resize(size)` for one int: the short side becomes `shortSide`, the long side
    /// int(shortSide · long / short) (truncated), as diffusers' training scripts resize.
    public func resized(shortSide: Int, filter: ResampleFilter = .bilinear) throws -> Image {
        guard shortSide > 0 else { throw ImageError.invalid("cannot resize the short side to \(shortSide)") }
        let short = min(width, height), long = max(width, height)
        let newLong = Int(Double(shortSide) * Double(long) / Double(short))
        return width <= height
            ? try resized(width: shortSide, height: newLong, filter: filter)
            : try resized(width: newLong, height: shortSide, filter: filter)
    }

    /// RGBA → "RGBa": colour · alpha / 255 with Pillow's rounding.
    static func premultiply(_ t: Tensor) throws -> Tensor {
        let c = t.size(2)
        let colour = try t.narrow(dim: 2, start: 0, length: c - 1), alpha = try t.narrow(dim: 2, start: c - 1, length: 1)
        return try Tensor.cat([try divide255(colour * alpha), alpha], dim: 2)
    }

    /// "RGBa" → RGBA: min(255, ⌊255 · colour / alpha⌋), and colour unchanged where alpha is 0 (Pillow).
    static func unpremultiply(_ t: Tensor) throws -> Tensor {
        let c = t.size(2)
        let colour = try t.narrow(dim: 2, start: 0, length: c - 1), alpha = try t.narrow(dim: 2, start: c - 1, length: 1)
        let safeAlpha = try alpha.clamp(min: 1)
        let restored = try (colour * 255 / safeAlpha).floor().clamp(max: 255)
        let result = try Tensor.where(try alpha.eq(0).expand(colour.shape), colour, restored)
        return try Tensor.cat([result, alpha], dim: 2)
    }
}

// MARK: - Crop and pad, with the placements of the Python tools they stand in for

extension Image {
    /// The `width`×`height` region whose top-left corner is (`x`, `y`).
    public func cropped(x: Int, y: Int, width: Int, height: Int) throws -> Image {
        guard width > 0, height > 0, x >= 0, y >= 0, x + width <= self.width, y + height <= self.height else {
            throw ImageError.invalid("crop \(width)×\(height) at (\(x), \(y)) is outside the \(self.width)×\(self.height) image")
        }
        let t = try hwcTensor().narrow(dim: 0, start: y, length: height).narrow(dim: 1, start: x, length: width)
        return try Image(hwc: try t.contiguous())
    }

    /// The centred `width`×`height` region, placed as torchvision's `CenterCrop` (which diffusers'
    /// training scripts use): left = round((W − w) / 2), top = round((H − h) / 2), halves to even.
    public func centerCropped(width: Int, height: Int) throws -> Image {
        guard width <= self.width, height <= self.height else {
            throw ImageError.invalid("centre crop \(width)×\(height) is larger than the \(self.width)×\(self.height) image")
        }
        let left = Int((Double(self.width - width) / 2).rounded(.toNearestOrEven))
        let top = Int((Double(self.height - height) / 2).rounded(.toNearestOrEven))
        return try cropped(x: left, y: top, width: width, height: height)
    }

    /// The image centred on a square canvas of its longer side, filled with `fill` in every channel
    /// (255: white, opaque). Placed as `ImageOps.pad` places it: round((S − w) · 0.5), halves to even.
    public func paddedToSquare(fill: UInt8 = 255) throws -> Image {
        let side = max(width, height)
        if width == height { return self }
        let left = Int((Double(side - width) * 0.5).rounded(.toNearestOrEven))
        let top = Int((Double(side - height) * 0.5).rounded(.toNearestOrEven))
        // F.pad lists (before, after) from the last dimension: channels, then width, then height.
        let padded = try hwcTensor()
            .pad([0, 0, left, side - width - left, top, side - height - top], mode: .constant, value: Double(fill))
        return try Image(hwc: padded)
    }
}
