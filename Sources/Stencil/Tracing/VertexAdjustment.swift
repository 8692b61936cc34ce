// Vertex adjustment (Selinger 2003, §2.3.3): each polygon vertex moves to the point, within the unit
// square centred on it, that is closest (least squares) to the two lines fitted to its neighbouring path
// runs. Each run's line is its least-squares fit: through the centroid, along the principal axis of the
// points' covariance. The squared distance to a line (n·p + e)², n its unit normal, is a quadratic form
// in (x, y, 1); the two forms are summed and minimised in closed form, or along the square's edges when
// the minimum falls outside it.
enum VertexAdjustment {
    static func adjusted(_ points: [CornerPoint], sums: PathSums, vertices: [Int]) -> [CurvePoint] {
        let n = points.count, m = vertices.count
        // The fitted line of the run from vertex k to vertex k + 1, as (a, b, c) with a x + b y + c = 0.
        let lines: [(Double, Double, Double)] = (0..<m).map { k in
            let i = vertices[k], j = k + 1 < m ? vertices[k + 1] : n
            let s = sums.range(i, j)
            let cx = s.x / s.n, cy = s.y / s.n
            let sxx = s.xx / s.n - cx * cx, sxy = s.xy / s.n - cx * cy, syy = s.yy / s.n - cy * cy
            let lambda = (sxx + syy) / 2 + (((sxx - syy) / 2) * ((sxx - syy) / 2) + sxy * sxy).squareRoot()
            var (dx, dy) = abs(sxx) >= abs(syy) ? (lambda - syy, sxy) : (sxy, lambda - sxx)
            if (dx * dx + dy * dy) < 1e-18 {  // no principal axis: fall back to the chord
                let (ax, ay) = sums.relative(points[i]), (bx, by) = sums.relative(points[j % n])
                (dx, dy) = (bx - ax, by - ay)
            }
            let norm = (dx * dx + dy * dy).squareRoot()
            let a = -dy / norm, b = dx / norm
            return (a, b, -(a * cx + b * cy))
        }
        return (0..<m).map { k in
            let (vx, vy) = sums.relative(points[vertices[k]])
            // Q = Σ (a x + b y + c)² over the lines before and after the vertex, as a symmetric 3 × 3 form.
            var q00 = 0.0, q01 = 0.0, q02 = 0.0, q11 = 0.0, q12 = 0.0, q22 = 0.0
            for (a, b, c) in [lines[(k + m - 1) % m], lines[k]] {
                q00 += a * a; q01 += a * b; q02 += a * c; q11 += b * b; q12 += b * c; q22 += c * c
            }
            if abs(q00 * q11 - q01 * q01) < 1e-6 {
                // Parallel lines: the minima form a line; a small pull towards the vertex picks the nearest.
                let eps = 1e-3
                q00 += eps; q11 += eps; q02 -= eps * vx; q12 -= eps * vy; q22 += eps * (vx * vx + vy * vy)
            }
            func value(_ x: Double, _ y: Double) -> Double {
                q00 * x * x + 2 * q01 * x * y + q11 * y * y + 2 * q02 * x + 2 * q12 * y + q22
            }
            let det = q00 * q11 - q01 * q01
            let ux = (-q02 * q11 + q12 * q01) / det, uy = (-q12 * q00 + q02 * q01) / det
            var best = (vx, vy)
            if abs(ux - vx) <= 0.5 && abs(uy - vy) <= 0.5 {
                best = (ux, uy)
            } else {
                var bestValue = Double.infinity
                for side in [-0.5, 0.5] {
                    let x = vx + side, y = min(vy + 0.5, max(vy - 0.5, q11 > 0 ? -(q01 * x + q12) / q11 : vy))
                    if value(x, y) < bestValue { bestValue = value(x, y); best = (x, y) }
                    let y2 = vy + side, x2 = min(vx + 0.5, max(vx - 0.5, q00 > 0 ? -(q01 * y2 + q02) / q00 : vx))
                    if value(x2, y2) < bestValue { bestValue = value(x2, y2); best = (x2, y2) }
                }
            }
            return CurvePoint(x: best.0 + Double(sums.origin.x), y: best.1 + Double(sums.origin.y))
        }
    }
}
