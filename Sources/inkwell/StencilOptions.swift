// The stencil flags, shared by `inkwell stencil` and `inkwell generate --stencil`.
import ArgumentParser
import Stencil

struct StencilOptions: ParsableArguments {
    @Option(help: "Threshold: sauvola (adaptive, for scans and photos of paper), otsu (one level, for clean digital art) or a grey level 0-255 (ink at or below it).")
    var threshold = "sauvola"
    @Option(help: "Sauvola window in pixels of the input (odd; default: an eighth of the shorter side, at least 15). Make it wider than twice the widest stroke.")
    var window: Int?
    @Option(name: .customLong("sauvola-k"), help: "Sauvola's k: higher keeps less of faint strokes.") var sauvolaK = StencilThreshold.defaultSauvolaK
    @Flag(name: .customLong("no-smooth-edges"), help: "Keep the threshold's ragged edges (no 3x3 majority vote).") var noSmoothEdges = false
    @Option(name: .customLong("speck-area"), help: "Ink specks smaller than this many pixels (at print size) are removed.") var speckArea = 16
    @Option(name: .customLong("fill-holes"), help: "Enclosed paper holes up to this many pixels (at print size) become ink (0: keep all).") var fillHoles = 0
    @Option(name: .customLong("line-weight"), help: "Redraw every stroke this many pixels wide at print size (skeleton, then a round pen).") var lineWeight: Int?
    @Option(help: "Print density in dots per inch, written into the PNG (pHYs) and the SVG's size.") var dpi = 300.0
    @Option(name: .customLong("width-cm"), help: "Printed width in centimetres (the height follows the aspect).") var widthCm: Double?
    @Option(name: .customLong("height-cm"), help: "Printed height in centimetres (with a width too: fits inside both).") var heightCm: Double?
    @Option(name: .customLong("width-in"), help: "Printed width in inches.") var widthIn: Double?
    @Option(name: .customLong("height-in"), help: "Printed height in inches.") var heightIn: Double?
    @Flag(name: .customLong("no-svg"), help: "Write only the PNG, no traced SVG.") var noSVG = false
    @Option(name: .customLong("turn-policy"), help: "Tracing: how diagonal pixel contacts join: \(TurnPolicy.allCases.map(\.rawValue).joined(separator: ", ")).")
    var turnPolicy = TurnPolicy.minority.rawValue
    @Option(name: .customLong("alpha-max"), help: "Tracing: corner threshold, 0 (all corners) to 1.334 (all curves).") var alphaMax = 1.0
    @Option(name: .customLong("opt-tolerance"), help: "Tracing: how far (pixels) joined curves may stray; 0 turns joining off.") var optTolerance = 0.2

    /// The settings, every flag checked (the error names the flag) before any image is read.
    func settings() throws -> StencilSettings {
        var settings = StencilSettings()
        settings.threshold = try StencilThreshold(parsing: threshold, window: window, k: sauvolaK)
        settings.smoothEdges = !noSmoothEdges
        settings.speckArea = speckArea
        settings.holeArea = fillHoles
        settings.lineWeight = lineWeight
        if widthCm != nil && widthIn != nil { throw ValidationError("give --width-cm or --width-in, not both") }
        if heightCm != nil && heightIn != nil { throw ValidationError("give --height-cm or --height-in, not both") }
        let width = widthCm.map(PrintSize.Length.centimetres) ?? widthIn.map(PrintSize.Length.inches)
        let height = heightCm.map(PrintSize.Length.centimetres) ?? heightIn.map(PrintSize.Length.inches)
        settings.printSize = try PrintSize(dpi: dpi, width: width, height: height)
        guard let policy = TurnPolicy(rawValue: turnPolicy.lowercased()) else {
            throw ValidationError("--turn-policy must be one of \(TurnPolicy.allCases.map(\.rawValue).joined(separator: ", ")), got '\(turnPolicy)'")
        }
        settings.trace.turnPolicy = policy
        settings.trace.alphaMax = alphaMax
        settings.trace.optimiseTolerance = optTolerance
        settings.trace.optimiseCurves = optTolerance > 0
        return try settings.validated()
    }

    /// The trace settings, or nil with --no-svg.
    func trace(_ settings: StencilSettings) -> TraceSettings? { noSVG ? nil : settings.trace }
}

/// One line about a written stencil.
func describe(_ stencil: Stencil, _ files: StencilFiles, seconds: Double) -> String {
    let (w, h) = stencil.millimetres
    var line = "wrote \(files.png.path) (\(stencil.bitmap.width)×\(stencil.bitmap.height) px, "
        + "\(String(format: "%.1f×%.1f", w, h)) mm at \(String(format: "%g", stencil.dpi)) dpi)"
    if let svg = files.svg { line += " and \(svg.lastPathComponent) (\(files.nodes) nodes)" }
    return line + String(format: " in %.2f s", seconds)
}
