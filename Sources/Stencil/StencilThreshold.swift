// How grey becomes ink or paper. A pixel is ink where its grey value is at or below the threshold.
//
// - `otsu`: one global threshold, Otsu's (1979) maximum between-class variance over the 256-bin histogram
//   (the lower of two tied levels). Right for clean digital line art.
// - `sauvola`: a threshold per pixel, Sauvola & Pietikäinen (2000): T = m · (1 + k · (s / R − 1)) with m
//   and s the mean and standard deviation of the grey values in a window × window square centred on the
//   pixel (edges mirrored, numpy's "reflect"), R = 128 (half the 8-bit range). Local means follow uneven
//   lighting, and the k · s term keeps faint strokes on quiet paper while paper grain (small s) stays white.
//   m and s come from integral images (summed-area tables) of the values and their squares in float64,
//   built per band of rows so that an A4 page at 300 dpi needs a few MB at a time.
// - `fixed(N)`: ink where grey ≤ N.
import Imaging
import Torch

public enum StencilThreshold: Equatable, Sendable {
    case otsu
    /// `window` nil picks one from the image size (see `sauvolaWindow(width:height:)`).
    case sauvola(window: Int?, k: Double)
    case fixed(Int)

    public static let defaultSauvolaK = 0.2

    /// Parses a `--threshold` value: "otsu", "sauvola" or an integer 0…255.
    public init(parsing text: String, window: Int?, k: Double) throws {
        switch text.lowercased() {
        case "otsu": self = .otsu
        case "sauvola": self = .sauvola(window: window, k: k)
        default:
            guard let level = Int(text), (0...255).contains(level) else {
                throw StencilError("--threshold must be otsu, sauvola or a grey level 0…255, got '\(text)'")
            }
            self = .fixed(level)
        }
        if let window, window < 3 || window % 2 == 0 {
            throw StencilError("--window must be an odd number of pixels, at least 3, got \(window)")
        }
        guard k.isFinite, k > 0, k < 1 else { throw StencilError("--sauvola-k must be between 0 and 1, got \(k)") }
    }

    /// The automatic Sauvola window: an eighth of the shorter side (odd, at least 15), wide enough that a
    /// stroke never fills it (a window inside a wide stroke sees no paper and would hollow the stroke out)
    /// and narrow enough to follow the light across a page.
    public static func sauvolaWindow(width: Int, height: Int) -> Int {
        max(15, min(width, height) / 8) | 1
    }

    /// The ink of a grey image (any mode is converted to Pillow's "L" first).
    public func apply(_ image: Image) throws -> Bitmap {
        let grey = try image.gray()
        switch self {
        case .otsu:
            let level = StencilThreshold.otsuLevel(grey.pixels)
            return try Bitmap(width: grey.width, height: grey.height, ink: grey.pixels.map { Int($0) <= level ? 1 : 0 })
        case .fixed(let level):
            return try Bitmap(width: grey.width, height: grey.height, ink: grey.pixels.map { Int($0) <= level ? 1 : 0 })
        case .sauvola(let window, let k):
            let w = window ?? StencilThreshold.sauvolaWindow(width: grey.width, height: grey.height)
            return try StencilThreshold.sauvola(grey, window: w, k: k)
        }
    }

    /// Otsu's level: the t maximising w₀ w₁ (μ₀ − μ₁)² with class 0 = {v ≤ t}.
    static func otsuLevel(_ values: [UInt8]) -> Int {
        var histogram = [Double](repeating: 0, count: 256)
        for v in values { histogram[Int(v)] += 1 }
        let total = Double(values.count)
        let totalSum = histogram.enumerated().reduce(0) { $0 + Double($1.offset) * $1.element }
        var count0 = 0.0, sum0 = 0.0, best = -1.0, level = 127
        for t in 0..<255 {
            count0 += histogram[t]
            sum0 += Double(t) * histogram[t]
            let count1 = total - count0
            guard count0 > 0, count1 > 0 else { continue }
            let difference = sum0 / count0 - (totalSum - sum0) / count1
            let between = count0 * count1 * difference * difference
            if between > best {
                best = between
                level = t
            }
        }
        return level
    }

    /// numpy's "reflect" index: …2 1 | 0 1 2 … n−1 | n−2 n−3…
    static func reflect(_ i: Int, _ n: Int) -> Int {
        guard n > 1 else { return 0 }
        let period = 2 * (n - 1)
        var j = i % period
        if j < 0 { j += period }
        return j < n ? j : period - j
    }

    static func sauvola(_ grey: Image, window: Int, k: Double) throws -> Bitmap {
        let h = grey.height, w = grey.width, r = window / 2
        let source = try grey.hwcTensor().view([h, w])
        let columns = try Tensor((-r..<(w + r)).map { Int64(reflect($0, w)) })
        let area = Double(window * window)
        let band = max(16, (1 << 18) / max(1, w + 2 * r))
        var ink: [UInt8] = []
        ink.reserveCapacity(h * w)
        for start in stride(from: 0, to: h, by: band) {
            let rowsHere = min(band, h - start)
            let rows = try Tensor(((start - r)..<(start + rowsHere + r)).map { Int64(reflect($0, h)) })
            let slab = try source.indexSelect(dim: 0, index: rows).indexSelect(dim: 1, index: columns).to(.float64)
            let sum = try boxSums(slab, window: window, rows: rowsHere, columns: w)
            let squares = try boxSums(slab * slab, window: window, rows: rowsHere, columns: w)
            let mean = try sum / area
            let deviation = try (squares / area - mean * mean).clamp(min: 0, max: 255 * 255).sqrt()
            let threshold = try mean * ((deviation / 128 - 1) * k + 1)
            let values = try source.narrow(dim: 0, start: start, length: rowsHere).to(.float64)
            let mask = try values.le(threshold).to(.uint8).contiguous()
            ink += try mask.bytes()
        }
        return try Bitmap(width: w, height: h, ink: ink)
    }

    /// Sums over every window × window square of `slab` (rows + window − 1 by columns + window − 1), from
    /// its summed-area table: S = I[y + n, x + n] − I[y, x + n] − I[y + n, x] + I[y, x].
    static func boxSums(_ slab: Tensor, window n: Int, rows: Int, columns: Int) throws -> Tensor {
        let table = try slab.cumsum(dim: 0).cumsum(dim: 1).pad([1, 0, 1, 0])
        func corner(_ y: Int, _ x: Int) throws -> Tensor {
            try table.narrow(dim: 0, start: y, length: rows).narrow(dim: 1, start: x, length: columns)
        }
        return try corner(n, n) - corner(0, n) - corner(n, 0) + corner(0, 0)
    }
}
