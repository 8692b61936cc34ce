// Optional clean-up for scanned or photographed stencils (`prepare --clean`): the paper becomes white,
// the ink black, and single-pixel specks disappear, so the LoRA learns the drawing rather than the paper
// texture or the scanner's noise. Runs after the resize (specks are judged at the training resolution)
// and before the crop or pad (so white padding does not count as paper).
//
// 1. Levels from the luminance (Pillow's "L") alone, so every colour channel gets the same stretch.
//    The ink/paper threshold t comes from iterative intermeans (Ridler–Calvard), kept in integers so that
//    any implementation gets the same t: t₀ = ⌊mean⌋; ink = {L ≤ t}, paper = {L > t};
//    t ← ⌊(mean(ink) + mean(paper)) / 2⌋ until it stops changing (at most 64 rounds).
//    The black point is the median of the ink, the white point the 25th percentile of the paper
//    (sorted values; index ⌊(n − 1) · p / 100⌋ within each class): so the core of every stroke becomes
//    black, three quarters of the paper — its grain included — pure white, and stroke edges stay grey
//    (anti-aliasing survives). Each channel c ↦ clamp(round((c − black) · 255 / (white − black)), 0, 255),
//    round half to even. An image with no ink or no paper, or with white − black < 32 (already flat), keeps
//    its levels.
// 2. Speck removal: each sample is clamped into [min, max] of its 8 neighbours (edges replicated). An
//    isolated dot is outside its neighbours' range and takes the nearest neighbour value; a pixel of a
//    1-pixel line has neighbours along the line and stays. (A 3×3 median would erase 1-pixel lines.)
//
// It lives in Imaging because two stages share it: `prepare --clean` (Training) and `inkwell stencil`
// (Stencil), which despeckles the grey image before its threshold.
import Torch

public struct LineArtCleanup: Sendable, Equatable {
    /// Percentile of the ink class that becomes black.
    public var inkPercentile = 50
    /// Percentile of the paper class that becomes white.
    public var paperPercentile = 25
    /// Below this spread between the black and white points the levels are left alone.
    public var minimumContrast = 32.0
    /// Whether to remove isolated specks.
    public var despeckle = true

    public init() {}

    /// The cleaned image (RGB in, RGB out).
    public func apply(_ image: Image) throws -> Image {
        var t = try image.rgb().hwcTensor().to(.float64)
        if let (black, white) = try levels(image) {
            t = try ((t - black) * 255 / (white - black)).round().clamp(min: 0, max: 255)
        }
        if despeckle { t = try LineArtCleanup.despeckle(t) }
        return try Image(hwc: try t.to(.uint8).contiguous())
    }

    /// The black and white points, or nil when the image should keep its levels.
    public func levels(_ image: Image) throws -> (black: Double, white: Double)? {
        let luma = try image.gray().hwcTensor().to(.float64).flatten()
        let n = luma.count
        guard n >= 2 else { return nil }
        let total = Int(try luma.sum().item())
        var threshold = total / n
        var inkCount = 0
        for _ in 0..<64 {
            let ink = try luma.le(threshold.asDouble)
            inkCount = Int(try ink.to(.float64).sum().item())
            let inkSum = Int(try luma.maskedFill(try ink.logicalNot(), 0).sum().item())
            let paperCount = n - inkCount, paperSum = total - inkSum
            guard inkCount > 0, paperCount > 0 else { return nil }
            // ⌊(inkSum/inkCount + paperSum/paperCount) / 2⌋ over a common denominator, exactly.
            let (a, o1) = inkSum.multipliedReportingOverflow(by: paperCount)
            let (b, o2) = paperSum.multipliedReportingOverflow(by: inkCount)
            let (d, o3) = (2 * inkCount).multipliedReportingOverflow(by: paperCount)
            guard !o1, !o2, !o3 else { return nil }
            let next = (a + b) / d
            if next == threshold { break }
            threshold = next
        }
        inkCount = Int(try luma.le(threshold.asDouble).to(.float64).sum().item())
        let paperCount = n - inkCount
        guard inkCount > 0, paperCount > 0 else { return nil }
        let sorted = try luma.sort().values
        let black = try sorted.select(dim: 0, index: (inkCount - 1) * inkPercentile / 100).item()
        let white = try sorted.select(dim: 0, index: inkCount + (paperCount - 1) * paperPercentile / 100).item()
        guard white - black >= minimumContrast else { return nil }
        return (black, white)
    }

    /// The image with single-pixel specks removed (step 2 alone, no levels), any mode in and the same mode out.
    /// Works in bands of rows (each with one row of context above and below), so an A4 page at 300 dpi
    /// needs tens of MB, not the half GB that eight neighbour planes of the whole page would take.
    public static func despeckled(_ image: Image) throws -> Image {
        let source = try image.hwcTensor()
        let h = image.height, rows = max(1, (1 << 18) / max(1, image.rowBytes))
        let bands = try stride(from: 0, to: h, by: rows).map { start in
            let end = min(h, start + rows)
            let top = max(0, start - 1), bottom = min(h, end + 1)
            let slab = try despeckle(try source.narrow(dim: 0, start: top, length: bottom - top).to(.float32))
            return try slab.narrow(dim: 0, start: start - top, length: end - start).to(.uint8)
        }
        return try Image(hwc: try (bands.count == 1 ? bands[0] : Tensor.cat(bands, dim: 0)).contiguous())
    }

    /// Clamps every sample of an (H, W, C) float tensor into the range of its 8 neighbours.
    static func despeckle(_ t: Tensor) throws -> Tensor {
        let h = t.size(0), w = t.size(1)
        let padded = try t.permute([2, 0, 1]).contiguous().pad([1, 1, 1, 1], mode: .replicate)
        var neighbours: [Tensor] = []
        for dy in 0..<3 {
            for dx in 0..<3 where !(dy == 1 && dx == 1) {
                neighbours.append(try padded.narrow(dim: 1, start: dy, length: h).narrow(dim: 2, start: dx, length: w))
            }
        }
        let stack = try Tensor.stack(neighbours, dim: 0)
        let low = try stack.min(dim: 0).values, high = try stack.max(dim: 0).values
        let centre = try t.permute([2, 0, 1])
        return try centre.maximum(low).minimum(high).permute([1, 2, 0])
    }
}

private extension Int {
    var asDouble: Double { Double(self) }
}
