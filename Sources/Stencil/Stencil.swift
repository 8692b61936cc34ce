// An image turned into a stencil: pure ink on paper at print size, then written as a 1-bit PNG with its
// density (pHYs) and as an SVG in millimetres.
//
// Steps: composite on white; grey (Pillow's "L", the same luma as everywhere in Inkwell); single-pixel
// specks removed (`LineArtCleanup.despeckled`, the clean-up of `prepare --clean`); threshold at the
// image's own resolution (where the Sauvola window relates to the drawing); ragged edges evened by a 3 × 3
// majority vote (`majoritySmoothed`); if the print size differs,
// the bilevel image is resampled (Lanczos) to it and cut at mid-grey, which gives smooth edges rather than
// enlarged pixel steps; then at print size: ink specks below `speckArea` removed, holes up to `holeArea`
// filled, and strokes redrawn at `lineWeight`.
import Foundation
import Imaging
import Torch

public struct Stencil: Sendable {
    public let bitmap: Bitmap
    public let dpi: Double

    public init(bitmap: Bitmap, dpi: Double) {
        self.bitmap = bitmap
        self.dpi = dpi
    }

    /// The stencil of `image` under `settings`.
    public init(_ image: Image, settings: StencilSettings, shouldStop: () -> Bool = { false }) throws {
        let settings = try settings.validated()
        let grey = try LineArtCleanup.despeckled(try image.flattened().gray())
        var bitmap = try settings.threshold.apply(grey)
        if settings.smoothEdges { bitmap = bitmap.majoritySmoothed() }
        try StopRequested.check(shouldStop)
        let size = settings.printSize.pixels(forWidth: grey.width, height: grey.height)
        if size != (grey.width, grey.height) {
            bitmap = try Bitmap(grey: try bitmap.image().resized(width: size.width, height: size.height, filter: .lanczos))
        }
        try StopRequested.check(shouldStop)
        bitmap.removeSpecks(smallerThan: settings.speckArea)
        bitmap.fillHoles(upTo: settings.holeArea)
        if let weight = settings.lineWeight { bitmap = try bitmap.withLineWeight(weight, shouldStop: shouldStop) }
        self.init(bitmap: bitmap, dpi: settings.printSize.dpi)
    }

    /// The 1-bit PNG, its physical size in pHYs.
    public func pngData() throws -> [UInt8] {
        try bitmap.image().bilevelPNGData(density: try PNGDensity(dpi: dpi))
    }

    /// The SVG document (and its node count) traced from the bitmap.
    public func svg(settings: TraceSettings = TraceSettings(), shouldStop: () -> Bool = { false }) throws -> (document: String, nodes: Int) {
        let curves = try StencilTracer.trace(bitmap, settings: try settings.validated(), shouldStop: shouldStop)
        let document = StencilSVG.document(curves, width: bitmap.width, height: bitmap.height, dpi: dpi)
        return (document, curves.reduce(0) { $0 + $1.nodeCount })
    }

    /// Printed size in millimetres.
    public var millimetres: (width: Double, height: Double) {
        (Double(bitmap.width) / dpi * 25.4, Double(bitmap.height) / dpi * 25.4)
    }
}
