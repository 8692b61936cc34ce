// The optimal polygon of a boundary path (Selinger 2003, §2.2): the polygon through path vertices with
// the fewest segments such that each segment approximates a straight part of the path, and among those
// the one with the least penalty.
//
// Straight: a run v_i … v_j of the path uses at most three of the four directions, and some ray from v_i
// towards v_j passes within sup-distance `slack` of every vertex in between (each vertex's square narrows
// a cone of allowed directions, kept as its clockwise and counter-clockwise bounds; v_j must lie in it).
// The paper's slack is 1 (a line within ½ of both v_i and v_k is within 1 of v_k seen from v_i). Inkwell
// uses 0.9: with exactly 1 a segment may end a whole pixel off a stroke's edge, which the half-pixel vertex
// adjustment cannot take back, so thin strokes lose up to 5 % of their pixels (rendered-back IoU 0.95 on
// the scanned-like tests); 0.9 keeps them above 0.98 for about twice the nodes (still a tenth of the
// polygon's).
// A sub-run of a straight run is straight, so "the farthest j from i" (reach) describes them all. A segment
// i → j is possible when the run one step wider, v_{i−1} … v_{j+1}, is straight (§2.2.1): so a segment
// never ends right at a turn it cannot follow.
// Penalty of a segment i → j: |v_j − v_i| times the standard deviation of the distances of v_i … v_j from
// the line v_i v_j, i.e. sqrt(Σ cross² / count), from prefix sums of x, y, x², xy, y² in O(1).
// The polygon keeps the path's first vertex (a true corner: the top-left of the first pixel found), which
// turns the cyclic problem into a shortest path over 0 … n by dynamic programming.
struct PathSums {
    /// Prefix sums over the points (relative to the first, to keep them small), one more than the path
    /// has: entry k holds the sums over points 0 ..< k, the first point repeated at the end.
    var x: [Double] = [0], y: [Double] = [0], xx: [Double] = [0], xy: [Double] = [0], yy: [Double] = [0]
    let origin: CornerPoint

    init(_ points: [CornerPoint]) {
        origin = points[0]
        for k in 0...points.count {
            let p = points[k % points.count]
            let px = Double(p.x - origin.x), py = Double(p.y - origin.y)
            x.append(x[k] + px); y.append(y[k] + py)
            xx.append(xx[k] + px * px); xy.append(xy[k] + px * py); yy.append(yy[k] + py * py)
        }
    }

    /// Sums over points i … j (inclusive, 0 ≤ i < j ≤ n): count, Σx, Σy, Σx², Σxy, Σy².
    func range(_ i: Int, _ j: Int) -> (n: Double, x: Double, y: Double, xx: Double, xy: Double, yy: Double) {
        (Double(j - i + 1), x[j + 1] - x[i], y[j + 1] - y[i], xx[j + 1] - xx[i], xy[j + 1] - xy[i], yy[j + 1] - yy[i])
    }

    func relative(_ p: CornerPoint) -> (Double, Double) { (Double(p.x - origin.x), Double(p.y - origin.y)) }
}

enum OptimalPolygon {
    static let straightSlack = 0.9

    /// Indices into `points` of the polygon's vertices, in path order, starting with 0.
    static func vertices(_ points: [CornerPoint], sums: PathSums, slack: Double = straightSlack) -> [Int] {
        let n = points.count
        let reach = straightReach(points, slack: slack)
        // The farthest end of a possible segment from i (at least the next point).
        let far = (0..<n).map { i in max(i + 1, i - 1 + reach[(i + n - 1) % n] - 1) }
        var segments = [Int](repeating: Int.max, count: n + 1)
        var penalty = [Double](repeating: .infinity, count: n + 1)
        var previous = [Int](repeating: 0, count: n + 1)
        segments[0] = 0
        penalty[0] = 0
        for j in 1...n {
            var i = j - 1
            while i >= 0 && far[i] >= j {
                if segments[i] != Int.max {
                    let count = segments[i] + 1, cost = penalty[i] + segmentPenalty(points, sums, i, j)
                    if count < segments[j] || (count == segments[j] && cost < penalty[j]) {
                        segments[j] = count
                        penalty[j] = cost
                        previous[j] = i
                    }
                }
                i -= 1
            }
        }
        var result: [Int] = []
        var j = n
        while j > 0 {
            j = previous[j]
            result.append(j)
        }
        return result.reversed()
    }

    /// For each i, the largest k (at most n − 3) such that the cyclic run i … i + k is straight: at most three
    /// directions, and some ray from v_i to v_{i+k} passes within sup-distance `slack` of every vertex between.
    static func straightReach(_ points: [CornerPoint], slack: Double) -> [Int] {
        let n = points.count
        return (0..<n).map { i in
            var directions = 0  // one bit per direction taken
            var low = (0.0, 0.0), high = (0.0, 0.0)  // the cone's clockwise and counter-clockwise bounds
            let a = points[i]
            var k = 1
            while k <= n - 3 {
                let p = points[(i + k) % n], q = points[(i + k - 1) % n]
                directions |= 1 << ((p.x - q.x + 1) * 3 + (p.y - q.y + 1))
                if directions.nonzeroBitCount == 4 { break }
                let cx = Double(p.x - a.x), cy = Double(p.y - a.y)
                if low.0 * cy - low.1 * cx < 0 || high.0 * cy - high.1 * cx > 0 { break }
                if max(abs(cx), abs(cy)) > slack {
                    // The square's corners as seen from v_i: the most clockwise and most counter-clockwise.
                    var cw = (cx - slack, cy - slack), ccw = cw
                    for (ox, oy) in [(slack, -slack), (-slack, slack), (slack, slack)] {
                        let c = (cx + ox, cy + oy)
                        if cw.0 * c.1 - cw.1 * c.0 < 0 { cw = c }
                        if ccw.0 * c.1 - ccw.1 * c.0 > 0 { ccw = c }
                    }
                    if low.0 * cw.1 - low.1 * cw.0 >= 0 { low = cw }
                    if high.0 * ccw.1 - high.1 * ccw.0 <= 0 { high = ccw }
                }
                k += 1
            }
            return k - 1
        }
    }

    static func segmentPenalty(_ points: [CornerPoint], _ sums: PathSums, _ i: Int, _ j: Int) -> Double {
        let n = points.count
        let (ax, ay) = sums.relative(points[i]), (bx, by) = sums.relative(points[j % n])
        let dx = bx - ax, dy = by - ay, c = dy * ax - dx * ay
        let s = sums.range(i, j)
        let total = dx * dx * s.yy + dy * dy * s.xx - 2 * dx * dy * s.xy + 2 * c * (dx * s.y - dy * s.x) + s.n * c * c
        return (max(0, total) / s.n).squareRoot()
    }
}
