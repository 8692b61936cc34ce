// Aspect-ratio buckets and the resize/crop/pad plan of one image.
//
// Why buckets: a square crop cuts the ends off a long dagger or a tall koi, and the model then learns
// cut-off designs. With buckets, each image trains at a size of roughly its own shape, and a training
// batch takes images of one bucket only.
//
// The bucket set for a resolution R (the same idea as kohya's, built independently):
//   * sides are multiples of 64 (the VAE downsamples by 8, the UNet by 8 more);
//   * sides lie in [minSide, maxSide], by default [max(64, R/2 rounded down to 64), 2R];
//   * for each width w in that range, the tallest height h (a multiple of 64, ≤ maxSide, ≥ minSide) with
//     w·h ≤ R², and its transpose h×w. So every bucket's area is at most R² (never more pixels than the
//     square R×R that the model is trained at), and the set is symmetric.
//   * R×R itself is always in the set.
// An image goes to the bucket whose aspect ratio is closest on a log scale (|ln(w/h) − ln(bw/bh)|), so
// that 2:1 and 1:2 are equally far from 1:1 (kohya compares plain ratios, which favours wide buckets);
// ties go to the larger area, then the smaller width.
//
// Upscaling: `maxUpscale` is the largest factor an image may be enlarged by (1 = never enlarge; 2 = at
// most twice its size). Enlarged line art turns into soft, blurry strokes that a LoRA faithfully learns.
// An image too small for its bucket gets a bucket of its own: its size times min(maxUpscale, √(R²/area)),
// each side rounded down to a multiple of 64 (and the long side shortened to keep the aspect within the
// set's range), so that it is never enlarged past the limit; an image that yields less than 64 pixels on
// a side that way is skipped as too small. Without buckets (one R×R square), an image that would need more
// than `maxUpscale` is skipped with that reason.
import Foundation

public struct BucketSize: Codable, Hashable, Sendable, CustomStringConvertible {
    public var width: Int
    public var height: Int
    public init(width: Int, height: Int) { (self.width, self.height) = (width, height) }
    public var area: Int { width * height }
    public var description: String { "\(width)x\(height)" }
}

public struct BucketSet: Sendable, Equatable {
    public static let step = 64
    public let resolution: Int
    public let minSide: Int
    public let maxSide: Int
    /// Every bucket, sorted by width then height.
    public let sizes: [BucketSize]

    public init(resolution: Int, minSide: Int? = nil, maxSide: Int? = nil) throws {
        let step = BucketSet.step
        guard resolution >= step, resolution % step == 0 else {
            throw DatasetError("--resolution must be a positive multiple of \(step), got \(resolution)")
        }
        let low = minSide ?? max(step, resolution / 2 / step * step)
        let high = maxSide ?? 2 * resolution
        guard low >= step, low % step == 0, high % step == 0, low <= resolution, high >= resolution else {
            throw DatasetError("bucket sides must be multiples of \(step) with \(step) ≤ min ≤ \(resolution) ≤ max, got \(low)…\(high)")
        }
        let area = resolution * resolution
        var set: Set<BucketSize> = [BucketSize(width: resolution, height: resolution)]
        for width in stride(from: low, through: high, by: step) {
            let height = min(high, area / width / step * step)
            if height >= low {
                set.insert(BucketSize(width: width, height: height))
                set.insert(BucketSize(width: height, height: width))
            }
        }
        self.resolution = resolution
        self.minSide = low
        self.maxSide = high
        self.sizes = set.sorted { ($0.width, $0.height) < ($1.width, $1.height) }
    }

    /// The bucket of closest aspect ratio for a `width`×`height` image (before the upscale limit).
    public func nearest(width: Int, height: Int) -> BucketSize {
        let aspect = log(Double(width) / Double(height))
        var best = BucketSize(width: resolution, height: resolution)
        var bestKey = (Double.infinity, 0, 0)
        for size in sizes {
            let distance = abs(log(Double(size.width) / Double(size.height)) - aspect)
            // Larger area first, then smaller width: compare (distance, −area, width).
            let key = (distance, -size.area, size.width)
            if key < bestKey { (best, bestKey) = (size, key) }
        }
        return best
    }

    /// The bucket for a `width`×`height` image that needs no enlargement past `maxUpscale` when `fit`
    /// places it (cover for crop, contain for pad), or nil when the image is too small for any bucket.
    public func bucket(width: Int, height: Int, fit: Fit, maxUpscale: Double) -> BucketSize? {
        let standard = nearest(width: width, height: height)
        if FramePlan.scale(width: width, height: height, into: standard, fit: fit) <= maxUpscale + 1e-9 {
            return standard
        }
        let step = BucketSet.step
        let area = Double(resolution * resolution)
        let factor = min(maxUpscale, (area / (Double(width) * Double(height))).squareRoot())
        var w = Int((Double(width) * factor).rounded(.down)) / step * step
        var h = Int((Double(height) * factor).rounded(.down)) / step * step
        guard w >= step, h >= step else { return nil }
        let maxAspect = maxSide / minSide
        if w > h * maxAspect { w = h * maxAspect }
        if h > w * maxAspect { h = w * maxAspect }
        return BucketSize(width: w, height: h)
    }
}

/// How an image is framed: crop keeps the canvas covered (cutting what overhangs, centred), pad keeps
/// the whole image (filling the rest with white, centred).
public enum Fit: String, Codable, Sendable, CaseIterable {
    case crop
    case pad
}

/// The resize and the crop or pad that turn one source image into its output.
public struct FramePlan: Equatable, Sendable {
    /// The size the source is resized to.
    public var resized: BucketSize
    /// The output size (the bucket, or R×R).
    public var canvas: BucketSize
    public var fit: Fit

    /// The factor by which `fit` scales a `width`×`height` image to frame it in `canvas`.
    public static func scale(width: Int, height: Int, into canvas: BucketSize, fit: Fit) -> Double {
        let sx = Double(canvas.width) / Double(width), sy = Double(canvas.height) / Double(height)
        return fit == .crop ? max(sx, sy) : min(sx, sy)
    }

    /// The plan that frames a `width`×`height` image in `canvas`. The side that decides the scale lands
    /// exactly on the canvas; the other is rounded half up: round(other · canvas side / deciding side),
    /// computed in integers so that the reference implementation agrees to the pixel.
    public init(width: Int, height: Int, canvas: BucketSize, fit: Fit) {
        // Is the image wider than the canvas (w/h ≥ cw/ch)? Cross-multiplied to stay in integers.
        let wider = width * canvas.height >= height * canvas.width
        let matchHeight = (fit == .crop) == wider
        func scaled(_ side: Int, _ target: Int, _ deciding: Int) -> Int {
            max(1, (2 * side * target + deciding) / (2 * deciding))
        }
        if matchHeight {
            resized = BucketSize(width: scaled(width, canvas.height, height), height: canvas.height)
        } else {
            resized = BucketSize(width: canvas.width, height: scaled(height, canvas.width, width))
        }
        self.canvas = canvas
        self.fit = fit
    }
}
