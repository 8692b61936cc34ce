// One closed outline of the traced stencil: a start point and segments, each a cubic Bézier or a corner
// (two straight lines through a vertex), and its node count as a vector editor shows it.
public enum CurveSegment: Equatable, Sendable {
    /// A cubic Bézier from the previous end point through controls c1, c2 to `end`.
    case bezier(c1: CurvePoint, c2: CurvePoint, end: CurvePoint)
    /// Straight to `vertex`, then straight to `end`.
    case corner(vertex: CurvePoint, end: CurvePoint)

    public var end: CurvePoint {
        switch self {
        case .bezier(_, _, let end), .corner(_, let end): return end
        }
    }
}

public struct TracedCurve: Equatable, Sendable {
    public var start: CurvePoint
    public var segments: [CurveSegment]
    /// Encloses paper inside ink.
    public var isHole: Bool

    /// Path nodes: one per Bézier, two per corner.
    public var nodeCount: Int {
        segments.reduce(0) { count, segment in
            if case .corner = segment { return count + 2 }
            return count + 1
        }
    }

    /// The same outline traversed the other way.
    public func reversed() -> TracedCurve {
        var out: [CurveSegment] = []
        for k in stride(from: segments.count - 1, through: 0, by: -1) {
            let from = k > 0 ? segments[k - 1].end : start
            switch segments[k] {
            case .bezier(let c1, let c2, _): out.append(.bezier(c1: c2, c2: c1, end: from))
            case .corner(let vertex, _): out.append(.corner(vertex: vertex, end: from))
            }
        }
        return TracedCurve(start: start, segments: out, isHole: isHole)
    }
}
