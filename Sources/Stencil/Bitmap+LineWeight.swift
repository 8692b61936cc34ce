// Line-weight normalisation: every stroke is thinned to its one-pixel centre line, then redrawn with a
// round pen of the chosen width, so a stencil has one even line weight whatever the drawing's pressure.
//
// Thinning is Zhang & Suen (1984), "A fast parallel algorithm for thinning digital patterns": two
// sub-iterations per pass, each deleting (all at once) the ink pixels with 2…6 ink neighbours, exactly one
// 0→1 transition around them (P2 … P9, P2), and the sub-iteration's two "one of these three is paper"
// conditions (south-east boundary and north-west corner first, then the opposite); passes repeat until
// nothing changes. The pen is a disk of diameter `width` pixels: the pixels whose centres lie within
// (width − 1) / 2 of a skeleton pixel's centre (so width 1 is the skeleton itself), stamped from a
// precomputed list of offsets.
import Torch

extension Bitmap {
    /// The strokes thinned to a skeleton and redrawn `width` pixels wide.
    public func withLineWeight(_ width: Int, shouldStop: () -> Bool = { false }) throws -> Bitmap {
        guard width >= 1 else { throw StencilError("--line-weight must be at least 1 pixel, got \(width)") }
        let skeleton = try thinned(shouldStop: shouldStop)
        let radius = Double(width - 1) / 2, reach = Int(radius.rounded(.down))
        var offsets: [(Int, Int)] = []
        for dy in -reach...reach {
            for dx in -reach...reach where Double(dx * dx + dy * dy) <= radius * radius + 1e-9 { offsets.append((dx, dy)) }
        }
        var out = try Bitmap(width: self.width, height: height)
        let w = self.width, h = height
        out.ink.withUnsafeMutableBufferPointer { target in
            for y in 0..<h {
                for x in 0..<w where skeleton.ink[y * w + x] != 0 {
                    for (dx, dy) in offsets {
                        let nx = x + dx, ny = y + dy
                        if nx >= 0, ny >= 0, nx < w, ny < h { target[ny * w + nx] = 1 }
                    }
                }
            }
        }
        return out
    }

    /// The Zhang–Suen skeleton (pixels outside the bitmap count as paper).
    public func thinned(shouldStop: () -> Bool = { false }) throws -> Bitmap {
        var current = self
        let w = width, h = height
        var deletions: [Int] = []
        var changed = true
        while changed {
            try StopRequested.check(shouldStop)
            changed = false
            for step in 0..<2 {
                deletions.removeAll(keepingCapacity: true)
                current.ink.withUnsafeBufferPointer { px in
                    @inline(__always) func at(_ x: Int, _ y: Int) -> Int {
                        x >= 0 && y >= 0 && x < w && y < h ? Int(px[y * w + x]) : 0
                    }
                    for y in 0..<h {
                        for x in 0..<w where px[y * w + x] != 0 {
                            // P2 … P9: north, then clockwise.
                            let p2 = at(x, y - 1), p3 = at(x + 1, y - 1), p4 = at(x + 1, y), p5 = at(x + 1, y + 1)
                            let p6 = at(x, y + 1), p7 = at(x - 1, y + 1), p8 = at(x - 1, y), p9 = at(x - 1, y - 1)
                            let neighbours = p2 + p3 + p4 + p5 + p6 + p7 + p8 + p9
                            guard (2...6).contains(neighbours) else { continue }
                            @inline(__always) func rise(_ a: Int, _ b: Int) -> Int { (1 - a) * b }
                            let transitions = rise(p2, p3) + rise(p3, p4) + rise(p4, p5) + rise(p5, p6)
                                + rise(p6, p7) + rise(p7, p8) + rise(p8, p9) + rise(p9, p2)
                            guard transitions == 1 else { continue }
                            let delete = step == 0 ? (p2 * p4 * p6 == 0 && p4 * p6 * p8 == 0)
                                                   : (p2 * p4 * p8 == 0 && p2 * p6 * p8 == 0)
                            if delete { deletions.append(y * w + x) }
                        }
                    }
                }
                for i in deletions { current.ink[i] = 0 }
                if !deletions.isEmpty { changed = true }
            }
        }
        return current
    }
}
