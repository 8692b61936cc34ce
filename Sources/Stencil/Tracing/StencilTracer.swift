// Bitmap to vector outlines, potrace-style (Selinger 2003): path decomposition, optimal polygon, vertex
// adjustment, smoothing with corner detection, optional curve optimisation. Written from the paper.
import Torch

public struct TraceSettings: Equatable, Sendable {
    public var turnPolicy: TurnPolicy = .minority
    /// Corner threshold: a vertex with α above it stays a corner (0: all corners, 4/3: none).
    public var alphaMax = 1.0
    /// Join consecutive Béziers where one fits.
    public var optimiseCurves = true
    /// How far (pixels) a joined curve may stray from the curves it replaces.
    public var optimiseTolerance = 0.2

    public init() {}

    public func validated() throws -> TraceSettings {
        guard alphaMax.isFinite, (0...(4.0 / 3)).contains(alphaMax) else {
            throw StencilError("--alpha-max must be between 0 (all corners) and 1.334 (no corners), got \(alphaMax)")
        }
        guard optimiseTolerance.isFinite, optimiseTolerance >= 0 else {
            throw StencilError("--opt-tolerance must be a non-negative number of pixels, got \(optimiseTolerance)")
        }
        return self
    }
}

public enum StencilTracer {
    /// The outlines of `bitmap`'s ink, outer outlines and holes alike with the inside on the left
    /// (in y-down pixel coordinates).
    public static func trace(_ bitmap: Bitmap, settings: TraceSettings = TraceSettings(),
                             shouldStop: () -> Bool = { false }) throws -> [TracedCurve] {
        let paths = try PathDecomposition.paths(of: bitmap, policy: settings.turnPolicy, shouldStop: shouldStop)
        return try paths.map { path in
            try StopRequested.check(shouldStop)
            let sums = PathSums(path.points)
            let vertices = OptimalPolygon.vertices(path.points, sums: sums)
            let adjusted = VertexAdjustment.adjusted(path.points, sums: sums, vertices: vertices)
            let (curve, _) = CurveSmoothing.curve(adjusted, alphaMax: settings.alphaMax, isHole: path.isHole)
            return settings.optimiseCurves ? CurveSmoothing.optimised(curve, tolerance: settings.optimiseTolerance) : curve
        }
    }
}
