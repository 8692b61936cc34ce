// Everything that decides how an image becomes a stencil, with defaults for a 300 dpi thermal print.
public struct StencilSettings: Equatable, Sendable {
    public var threshold: StencilThreshold = .sauvola(window: nil, k: StencilThreshold.defaultSauvolaK)
    /// A 3 × 3 majority vote over the thresholded bitmap (at the input's resolution) against ragged edges.
    public var smoothEdges = true
    /// Ink components smaller than this many pixels (at print size) become paper.
    public var speckArea = 16
    /// Enclosed paper holes up to this many pixels (at print size) become ink; 0 keeps all holes.
    public var holeArea = 0
    /// Every stroke redrawn this many pixels wide (at print size); nil keeps the drawing's own weights.
    public var lineWeight: Int?
    public var printSize = PrintSize()
    public var trace = TraceSettings()

    public init() {}

    public func validated() throws -> StencilSettings {
        guard speckArea >= 0 else { throw StencilError("--speck-area must be 0 or more pixels, got \(speckArea)") }
        guard holeArea >= 0 else { throw StencilError("--fill-holes must be 0 or more pixels, got \(holeArea)") }
        if let lineWeight, lineWeight < 1 || lineWeight > 500 {
            throw StencilError("--line-weight must be 1 to 500 pixels, got \(lineWeight)")
        }
        _ = try trace.validated()
        return self
    }
}
