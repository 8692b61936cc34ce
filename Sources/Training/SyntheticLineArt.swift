// A small synthetic tattoo line-art dataset (black strokes on white: rings, petals, stars, stripes),
// for the demo and the tests, where no real images can be downloaded. Each image comes with a
// caption naming its motifs.
import AtomicFile
import Foundation
import Imaging
import Torch

public enum SyntheticLineArt {
    public struct Item {
        public let image: Image
        public let caption: String
    }

    /// `count` images of `size`² pixels, deterministic in `seed`.
    public static func make(count: Int, size: Int, seed: UInt64) throws -> [Item] {
        let g = try Generator(seed: seed)
        let coords = try Tensor.arange(0, Double(size), dtype: .float32)
        let xs = try coords.view([1, size]), ys = try coords.view([size, 1])
        let s = Double(size), width = max(0.6, s / 48)
        func uniform(_ lo: Double, _ hi: Double) throws -> Double { try Tensor.rand([1], generator: g).item() * (hi - lo) + lo }
        return try (0..<count).map { _ in
            let cx = try uniform(0.35 * s, 0.65 * s), cy = try uniform(0.35 * s, 0.65 * s)
            let radius = try uniform(0.18 * s, 0.32 * s)
            let dx = try xs - cx, dy = try ys - cy
            let distance = try (dx.square() + dy.square()).sqrt()
            let angle = try dy.atan2(dx)
            var ink = try (distance - radius).abs().lt(width)
            var motifs = ["circle"]
            let kind = Int(try uniform(0, 3))
            if kind == 0 {
                // Petals: a rose-curve r = R·|cos(kθ)| inside the ring.
                let k = Double(Int(try uniform(2, 5)))
                let petal = try (distance - (angle * k).cos().abs() * (radius * 0.8)).abs().lt(width)
                ink = try ink.logicalOr(petal)
                motifs.append("flower with \(Int(2 * k)) petals")
            } else if kind == 1 {
                // A star: spokes every 2π/n.
                let n = Double(Int(try uniform(5, 9)))
                let spoke = try ((angle * n / 2).sin().abs() * distance).lt(width).logicalAnd(distance.lt(radius))
                ink = try ink.logicalOr(spoke)
                motifs.append("star with \(Int(n)) points")
            } else {
                let rings = Int(try uniform(1, 3))
                for r in 1...rings {
                    ink = try ink.logicalOr((distance - radius * (1 - 0.3 * Double(r))).abs().lt(width))
                }
                motifs.append("\(rings + 1) concentric rings")
            }
            let stripe = try uniform(0.1 * s, 0.9 * s)
            ink = try ink.logicalOr((ys - stripe).abs().lt(width).logicalAnd(distance.gt(radius + 2 * width)))
            let gray = try Tensor.where(ink, Tensor.full([1], 0), Tensor.full([1], 1))
            let rgb = try gray.unsqueeze(0).expand([3, size, size])
            let caption = "minimal line-art tattoo, " + motifs.joined(separator: ", ") + ", horizontal line, stencil"
            return Item(image: try Image(tensor: rgb, range: .unit), caption: caption)
        }
    }

    /// Writes the images as PNGs (`<prefix>NNN.png`) with a `.txt` caption beside each.
    public static func write(_ items: [Item], to folder: URL, prefix: String = "art") throws -> [URL] {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return try items.enumerated().map { i, item in
            let url = folder.appendingPathComponent(String(format: "%@%03d.png", prefix, i))
            try item.image.writePNG(to: url)
            try writeAtomically(Data(item.caption.utf8), to: url.deletingPathExtension().appendingPathExtension("txt"))
            return url
        }
    }
}
