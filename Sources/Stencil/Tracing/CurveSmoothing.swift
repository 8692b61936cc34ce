// Smoothing the adjusted polygon into curves (Selinger 2003, §2.3.4), then joining curves (§2.4).
//
// Each polygon vertex a, with neighbours b and c, yields one segment between the edge midpoints
// m0 = (b + a) / 2 and m1 = (a + c) / 2: the Bézier with controls m0 + α(a − m0) and m1 + α(a − m1). Its
// midpoint lies 3α/4 of the way from the chord m0 m1 towards a, so α = 4/3 · (1 − δ/h) puts it on the
// edge of the unit square around a (h: distance from a to the chord; δ: half-width of the square across
// the chord, ½(|nx| + |ny|) for its unit normal n) — the curve grazes the pixel the vertex stands for.
// A vertex whose α exceeds `alphaMax` is too sharp for a curve and stays a corner; otherwise α is kept
// within [0.55, 1] (the paper's bounds: flatter reads as a kink, rounder overshoots).
//
// Curve optimisation joins runs of consecutive Béziers that turn the same way by less than a half turn into
// one Bézier: its end tangents are the run's first and last, meeting at O; its controls sit the same
// fraction λ of the way to O from each end, λ chosen so that the new curve encloses the same area with
// its chord as the run does (area is quadratic in λ). The join is kept when every junction and every
// segment midpoint of the run lies within `tolerance` pixels of the new curve. Runs grow greedily.
enum CurveSmoothing {
    static func curve(_ vertices: [CurvePoint], alphaMax: Double, isHole: Bool) -> (TracedCurve, alphas: [Double]) {
        let m = vertices.count
        var segments: [CurveSegment] = [], alphas: [Double] = []
        for k in 0..<m {
            let b = vertices[(k + m - 1) % m], a = vertices[k], c = vertices[(k + 1) % m]
            let m0 = b.lerp(a, 0.5), m1 = a.lerp(c, 0.5)
            let chord = m1 - m0, length = chord.length
            var alpha = 4.0 / 3
            if length > 1e-12 {
                let h = abs(chord.cross(a - m0)) / length
                let delta = 0.5 * (abs(chord.x) + abs(chord.y)) / length
                alpha = h > delta ? 4.0 / 3 * (1 - delta / h) : 0
            }
            if alpha >= alphaMax {
                segments.append(.corner(vertex: a, end: m1))
            } else {
                alpha = min(1, max(0.55, alpha))
                segments.append(.bezier(c1: m0.lerp(a, alpha), c2: m1.lerp(a, alpha), end: m1))
            }
            alphas.append(alpha)
        }
        let start = vertices[m - 1].lerp(vertices[0], 0.5)
        return (TracedCurve(start: start, segments: segments, isHole: isHole), alphas)
    }

    /// The curve with runs of Béziers joined wherever one Bézier stays within `tolerance` of them.
    static func optimised(_ curve: TracedCurve, tolerance: Double) -> TracedCurve {
        var out: [CurveSegment] = []
        var from = curve.start
        var i = 0
        let segments = curve.segments
        while i < segments.count {
            guard case .bezier = segments[i] else {
                out.append(segments[i])
                from = segments[i].end
                i += 1
                continue
            }
            var joined = segments[i], j = i + 1
            while j < segments.count, case .bezier = segments[j],
                  let candidate = join(from: from, Array(segments[i...j]), tolerance: tolerance) {
                joined = candidate
                j += 1
            }
            out.append(joined)
            from = joined.end
            i = j
        }
        return TracedCurve(start: curve.start, segments: out, isHole: curve.isHole)
    }

    /// One Bézier for a run of Béziers starting at `p0`, or nil when none fits.
    static func join(from p0: CurvePoint, _ run: [CurveSegment], tolerance: Double) -> CurveSegment? {
        var controls: [(CurvePoint, CurvePoint, CurvePoint, CurvePoint)] = []
        var at = p0
        for segment in run {
            guard case .bezier(let c1, let c2, let end) = segment else { return nil }
            controls.append((at, c1, c2, end))
            at = end
        }
        let p3 = at
        // Same turning direction everywhere: the control polygon's consecutive edges turn one way.
        var turn = 0.0
        var polygon: [CurvePoint] = [p0]
        for (_, c1, c2, end) in controls { polygon += [c1, c2, end] }
        for k in 1..<(polygon.count - 1) {
            let t = (polygon[k] - polygon[k - 1]).cross(polygon[k + 1] - polygon[k])
            if abs(t) < 1e-12 { continue }
            if turn == 0 { turn = t } else if (turn > 0) != (t > 0) { return nil }
        }
        // The end tangents and where they meet: ahead of the start and behind the end.
        let t0 = controls[0].1 - p0, t3 = p3 - controls[controls.count - 1].2
        let denominator = t0.cross(t3)
        guard abs(denominator) > 1e-12 else { return nil }
        let u = (p3 - p0).cross(t3) / denominator
        let v = t0.cross(p3 - p0) / denominator
        guard u > 0, v > 0 else { return nil }
        let o = p0 + t0 * u
        // Area with the chord: quadratic in λ and 0 at λ = 0, so two samples fix it.
        let target = controls.reduce(0) { $0 + bezierArea($1.0, $1.1, $1.2, $1.3) } + lineArea(p3, p0)
        func area(_ lambda: Double) -> Double { bezierArea(p0, p0.lerp(o, lambda), p3.lerp(o, lambda), p3) + lineArea(p3, p0) }
        let a1Plus2 = area(1), half = area(0.5)
        let a2 = 2 * (a1Plus2 - 2 * half), a1 = a1Plus2 - a2
        var lambda: Double
        if abs(a2) < 1e-12 {
            guard abs(a1) > 1e-12 else { return nil }
            lambda = target / a1
        } else {
            let disc = a1 * a1 + 4 * a2 * target
            guard disc >= 0 else { return nil }
            let r1 = (-a1 + disc.squareRoot()) / (2 * a2), r2 = (-a1 - disc.squareRoot()) / (2 * a2)
            let roots = [r1, r2].filter { $0 > 0 && $0 <= 2 }.sorted()
            guard let first = roots.first else { return nil }
            lambda = first
        }
        guard lambda > 0, lambda <= 2 else { return nil }
        let candidate = (p0, p0.lerp(o, lambda), p3.lerp(o, lambda), p3)
        let samples = (0...64).map { bezierPoint(candidate, Double($0) / 64) }
        for (k, piece) in controls.enumerated() {
            var checks = [bezierPoint(piece, 0.5)]
            if k + 1 < controls.count { checks.append(piece.3) }
            for point in checks where distance(point, toPolyline: samples) > tolerance { return nil }
        }
        return .bezier(c1: candidate.1, c2: candidate.2, end: p3)
    }

    static func bezierPoint(_ b: (CurvePoint, CurvePoint, CurvePoint, CurvePoint), _ t: Double) -> CurvePoint {
        let s = 1 - t
        return b.0 * (s * s * s) + b.1 * (3 * s * s * t) + b.2 * (3 * s * t * t) + b.3 * (t * t * t)
    }

    /// ½ ∮ (x dy − y dx) along a cubic Bézier: the integrand is a degree-5 polynomial in t, so three-point
    /// Gauss–Legendre quadrature is exact.
    static func bezierArea(_ p0: CurvePoint, _ p1: CurvePoint, _ p2: CurvePoint, _ p3: CurvePoint) -> Double {
        let nodes = [(0.5 - 0.5 * (0.6).squareRoot(), 5.0 / 18), (0.5, 8.0 / 18), (0.5 + 0.5 * (0.6).squareRoot(), 5.0 / 18)]
        return nodes.reduce(0) { sum, node in
            let t = node.0, s = 1 - t
            let point = bezierPoint((p0, p1, p2, p3), t)
            let derivative = (p1 - p0) * (3 * s * s) + (p2 - p1) * (6 * s * t) + (p3 - p2) * (3 * t * t)
            return sum + node.1 * 0.5 * point.cross(derivative)
        }
    }

    static func lineArea(_ a: CurvePoint, _ b: CurvePoint) -> Double { 0.5 * a.cross(b) }

    static func distance(_ p: CurvePoint, toPolyline points: [CurvePoint]) -> Double {
        var best = Double.infinity
        for k in 1..<points.count {
            let a = points[k - 1], d = points[k] - a
            let lengthSquared = d.x * d.x + d.y * d.y
            let t = lengthSquared > 0 ? min(1, max(0, ((p - a).x * d.x + (p - a).y * d.y) / lengthSquared)) : 0
            best = min(best, (p - (a + d * t)).length)
        }
        return best
    }
}
