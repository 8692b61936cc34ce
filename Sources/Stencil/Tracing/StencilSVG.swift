// The traced stencil as an SVG 1.1 document at its physical size: width and height in millimetres, the
// viewBox in pixels (so path coordinates are the bitmap's), and all outlines in one <path>. One path
// means shapes that touch are filled in one pass, with no anti-aliased hairline seams between separate
// elements. fill-rule is nonzero with holes written in the opposite direction to outer outlines (the tracer
// gives both the same), so holes are cut and nested islands filled; overlapping outer outlines stay filled,
// as even-odd would not.
import Foundation

public enum StencilSVG {
    /// The document for outlines of a `width` × `height` pixel bitmap printed at `dpi`.
    public static func document(_ curves: [TracedCurve], width: Int, height: Int, dpi: Double) -> String {
        let mm = { (pixels: Int) in number(Double(pixels) / dpi * 25.4, decimals: 3) }
        var svg = """
        <?xml version="1.0" encoding="UTF-8" standalone="no"?>
        <svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="\(mm(width))mm" height="\(mm(height))mm" \
        viewBox="0 0 \(width) \(height)">

        """
        if !curves.isEmpty {
            svg += "<path fill=\"#000000\" fill-rule=\"nonzero\" d=\""
            svg += curves.map { pathData($0.isHole ? $0.reversed() : $0) }.joined(separator: " ")
            svg += "\"/>\n"
        }
        return svg + "</svg>\n"
    }

    /// M, then C for Béziers and L L for corners, then Z; coordinates to 1/100 pixel.
    static func pathData(_ curve: TracedCurve) -> String {
        func p(_ point: CurvePoint) -> String { number(point.x, decimals: 2) + "," + number(point.y, decimals: 2) }
        var parts = ["M" + p(curve.start)]
        for segment in curve.segments {
            switch segment {
            case .bezier(let c1, let c2, let end): parts.append("C" + p(c1) + " " + p(c2) + " " + p(end))
            case .corner(let vertex, let end): parts.append("L" + p(vertex) + " " + p(end))
            }
        }
        return parts.joined(separator: " ") + "Z"
    }

    /// Fixed decimals with trailing zeros (and a bare point) removed: 12.50 → 12.5, 3.00 → 3.
    static func number(_ value: Double, decimals: Int) -> String {
        var text = String(format: "%.\(decimals)f", value)
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text == "-0" ? "0" : text
    }
}
