// The traced SVG, rasterised back by librsvg's rsvg-convert, against the bitmap it was traced from.
import Foundation
import Imaging
import Stencil
import Testing
import TestSupport
import Training

@Suite struct StencilTraceTests {
    func roundTrip(_ stencil: Stencil, settings: TraceSettings = TraceSettings()) throws -> (iou: Double, nodes: Int, svg: String) {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (svg, nodes) = try stencil.svg(settings: settings)
        let rendered = try StencilSupport.render(svg: svg, width: stencil.bitmap.width, height: stencil.bitmap.height, in: folder)
        return (try rendered.inkIoU(stencil.bitmap), nodes, svg)
    }

    @Test func generatedLineArtRoundTripsThroughRsvg() throws {
        var settings = StencilSettings()
        settings.threshold = .otsu
        for (k, item) in try SyntheticLineArt.make(count: 4, size: 384, seed: 7).enumerated() {
            let stencil = try Stencil(item.image, settings: settings)
            let (iou, nodes, _) = try roundTrip(stencil)
            print("synthetic \(k): IoU \(iou), \(nodes) nodes, \(stencil.bitmap.inkCount) ink pixels")
            #expect(iou >= 0.97, "synthetic \(k): rendered SVG vs bitmap IoU \(iou)")
        }
    }

    @Test func scannedLikeInputsRoundTripThroughRsvg() throws {
        for (k, scanCase) in try StencilSupport.scanCases().enumerated() {
            let stencil = try Stencil(scanCase.scan, settings: StencilSettings())
            let (iou, nodes, _) = try roundTrip(stencil)
            print("scan \(k): IoU \(iou), \(nodes) nodes")
            #expect(iou >= 0.97, "scan \(k): rendered SVG vs bitmap IoU \(iou)")
        }
    }

    /// A ring: two outlines (outer, hole), a handful of Béziers each, the hole left open, and the SVG sized in mm.
    @Test func ringIsFewSmoothNodesWithItsHoleCut() throws {
        let n = 300, c = 149.5
        var ink = [UInt8](repeating: 0, count: n * n)
        for y in 0..<n {
            for x in 0..<n {
                let d = ((Double(x) - c) * (Double(x) - c) + (Double(y) - c) * (Double(y) - c)).squareRoot()
                if d <= 120 && d >= 80 { ink[y * n + x] = 1 }
            }
        }
        let stencil = Stencil(bitmap: try Bitmap(width: n, height: n, ink: ink), dpi: 254)
        let (iou, nodes, svg) = try roundTrip(stencil)
        #expect(iou >= 0.985, "ring IoU \(iou)")
        #expect(nodes <= 24, "a ring should take a few curves, not \(nodes) nodes")
        #expect(svg.contains("width=\"30mm\" height=\"30mm\" viewBox=\"0 0 300 300\""))
        #expect(svg.components(separatedBy: "<path").count == 2, "one path element")
        #expect(svg.contains("fill-rule=\"nonzero\""))
        let curves = try StencilTracer.trace(stencil.bitmap)
        #expect(curves.count == 2 && curves.filter(\.isHole).count == 1)
        // Without curve optimisation there are more nodes: the optimisation joins segments.
        var plain = TraceSettings()
        plain.optimiseCurves = false
        let unoptimised = try roundTrip(stencil, settings: plain)
        #expect(unoptimised.nodes > nodes && unoptimised.iou >= 0.985)
        // alphaMax 0 makes every vertex a corner: a polygon, still close.
        var polygon = TraceSettings()
        polygon.alphaMax = 0
        let corners = try StencilTracer.trace(stencil.bitmap, settings: polygon)
        #expect(corners.allSatisfy { $0.segments.allSatisfy { if case .corner = $0 { return true } else { return false } } })
    }

    /// Shapes that touch along an edge or at a corner render with no hairline of paper between them, and an
    /// island inside a hole is filled.
    @Test func touchingShapesAndNestedIslands() throws {
        let w = 120, h = 80
        var ink = [UInt8](repeating: 0, count: w * h)
        func fill(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ v: UInt8) {
            for y in y0..<y1 { for x in x0..<x1 { ink[y * w + x] = v } }
        }
        fill(10, 10, 40, 40, 1)   // two squares sharing the edge x = 40
        fill(40, 10, 70, 40, 1)
        fill(70, 40, 100, 70, 1)  // and one touching the second only at its corner (70, 40)
        fill(10, 45, 60, 78, 1)   // a block with a hole holding an island
        fill(18, 52, 52, 71, 0)
        fill(28, 58, 42, 65, 1)
        let stencil = Stencil(bitmap: try Bitmap(width: w, height: h, ink: ink), dpi: 300)
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let rendered = try StencilSupport.render(svg: try stencil.svg().document, width: w, height: h, in: folder)
        for y in 14..<36 { #expect(rendered.isInk(39, y) && rendered.isInk(40, y), "seam at x = 40, y = \(y)") }
        #expect(rendered.isInk(35, 61), "the island inside the hole is ink")
        #expect(!rendered.isInk(22, 55), "the hole is paper")
        #expect(try rendered.inkIoU(stencil.bitmap) >= 0.97)
    }

    @Test func emptyBitmapIsAnEmptyDocument() throws {
        let stencil = Stencil(bitmap: try Bitmap(width: 10, height: 10), dpi: 300)
        let (svg, nodes) = try stencil.svg()
        #expect(nodes == 0 && !svg.contains("<path"))
    }
}
