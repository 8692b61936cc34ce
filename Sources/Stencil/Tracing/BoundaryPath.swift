// Path decomposition (Selinger, "Potrace: a polygon-based tracing algorithm", 2003, §2.1): the outlines
// between ink and paper as closed paths through pixel corners. Coordinates are pixel corners, y down:
// pixel (x, y) spans [x, x + 1] × [y, y + 1].
//
// The first ink pixel in raster order starts a path at its top-left corner, heading down, with ink kept
// on the left. At each corner the two pixels ahead decide the next move: ink ahead-left and paper
// ahead-right go straight; paper on both turns left; ink on both turns right; paper ahead-left with ink
// ahead-right (two pixels touching only at a corner) is ambiguous and the turn policy decides whether the
// diagonal ink joins this path. The path closes when it returns to its start. Then every pixel inside it
// is inverted (each vertical edge flips its row between the edge and the start column: the flips cancel
// outside the path), so the next ink pixel in raster order starts the next path — a hole, when that pixel
// is paper in the original bitmap, or an island in a hole. Every path has its inside on its left.
import Torch

/// How an ambiguous corner (two ink pixels meeting diagonally) is resolved (§2.1.3).
public enum TurnPolicy: String, CaseIterable, Sendable {
    /// Diagonal ink always joins (ink is 8-connected).
    case black
    /// Diagonal ink never joins (paper is 8-connected).
    case white
    /// Always turn left / right, whatever the colours.
    case left, right
    /// Join the colour that is rarer around the corner (the least surprising choice on noisy scans).
    case minority
    /// Join the colour that is more common around the corner.
    case majority
}

struct CornerPoint: Equatable {
    var x: Int
    var y: Int
}

struct BoundaryPath {
    /// The corners along the path, one per unit step; the path returns from the last to the first.
    var points: [CornerPoint]
    /// The path encloses paper inside ink (its start pixel is paper in the original bitmap).
    var isHole: Bool
}

enum PathDecomposition {
    static func paths(of bitmap: Bitmap, policy: TurnPolicy, shouldStop: () -> Bool) throws -> [BoundaryPath] {
        let w = bitmap.width, h = bitmap.height
        var work = bitmap.ink
        var paths: [BoundaryPath] = []
        var next = 0
        while true {
            while next < w * h && work[next] == 0 { next += 1 }
            guard next < w * h else { break }
            try StopRequested.check(shouldStop)
            let x0 = next % w, y0 = next / w
            let isHole = bitmap.ink[next] == 0
            let points = trace(work, w, h, from: CornerPoint(x: x0, y: y0)) { x, y in
                if policy == .left || policy == .right { return policy == .right }
                let joinInk = joinsInk(bitmap, x, y, policy)
                // Ink on the working bitmap is original paper inside a hole's path.
                return isHole ? !joinInk : joinInk
            }
            invertInside(points, startColumn: x0, &work, w)
            paths.append(BoundaryPath(points: points, isHole: isHole))
        }
        return paths
    }

    /// Follows one boundary; `turnRight(x, y)` answers the ambiguous corners (true: join the diagonal ink).
    static func trace(_ work: [UInt8], _ w: Int, _ h: Int, from start: CornerPoint,
                      turnRight: (Int, Int) -> Bool) -> [CornerPoint] {
        func ink(_ x: Int, _ y: Int) -> Bool { x >= 0 && y >= 0 && x < w && y < h && work[y * w + x] != 0 }
        // The pixel in quadrant (qx, qy) (each ±1) around corner (x, y).
        func quadrant(_ x: Int, _ y: Int, _ qx: Int, _ qy: Int) -> Bool { ink(x + (qx - 1) / 2, y + (qy - 1) / 2) }
        var points: [CornerPoint] = []
        var x = start.x, y = start.y, dx = 0, dy = 1
        repeat {
            points.append(CornerPoint(x: x, y: y))
            x += dx
            y += dy
            if x == start.x && y == start.y { break }
            let aheadLeft = quadrant(x, y, dx + dy, dy - dx), aheadRight = quadrant(x, y, dx - dy, dy + dx)
            let right: Bool
            switch (aheadLeft, aheadRight) {
            case (true, false): continue
            case (false, false): right = false
            case (true, true): right = true
            case (false, true): right = turnRight(x, y)
            }
            (dx, dy) = right ? (-dy, dx) : (dy, -dx)
        } while true
        return points
    }

    /// XOR-fills the inside of a closed path into `work`.
    static func invertInside(_ points: [CornerPoint], startColumn x0: Int, _ work: inout [UInt8], _ w: Int) {
        work.withUnsafeMutableBufferPointer { px in
            for i in 0..<points.count {
                let a = points[i], b = points[(i + 1) % points.count]
                guard a.x == b.x, a.y != b.y else { continue }
                let row = min(a.y, b.y) * w
                for x in min(a.x, x0)..<max(a.x, x0) { px[row + x] ^= 1 }
            }
        }
    }

    /// Whether the policy joins the diagonal ink at corner (x, y) (colours of the original bitmap).
    static func joinsInk(_ bitmap: Bitmap, _ x: Int, _ y: Int, _ policy: TurnPolicy) -> Bool {
        switch policy {
        case .black, .right: return true  // (left and right never reach here: they are not about colour)
        case .white, .left: return false
        case .minority, .majority:
            // Ink against paper in growing squares around the corner until one colour wins.
            for radius in 2...4 {
                var balance = 0
                for cy in (y - radius)..<(y + radius) {
                    for cx in (x - radius)..<(x + radius) { balance += bitmap.isInk(cx, cy) ? 1 : -1 }
                }
                if balance != 0 { return policy == .minority ? balance < 0 : balance > 0 }
            }
            return true
        }
    }
}
