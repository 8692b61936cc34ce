// One description of a chart, two outputs: a scene of rectangles, lines, paths, dots and text in
// user units is written as SVG (for browsers, real fonts, any zoom) and rasterised to an RGB image
// through Imaging's Canvas and bitmap font (for PNG files and thumbnails). Both come from the same
// list of items, so the SVG and the PNG of a chart always agree.
import Foundation
import Imaging

public enum TextAnchor: String, Sendable { case start, middle, end }

/// Text roles in a chart; each has an SVG font size and a bitmap-font scale.
public enum TextStyle: Sendable {
    case tick, label, title, heading

    var fontSize: Double {
        switch self {
        case .tick: return 11
        case .label: return 12
        case .title: return 13
        case .heading: return 17
        }
    }

    var bold: Bool { self == .title || self == .heading }

    /// Bitmap-font pixels per glyph pixel when the scene is drawn at `scale` pixels per unit: ticks and
    /// labels get one unit per glyph pixel, headings half as much again.
    func glyphScale(_ scale: Int) -> Int { self == .heading ? max(1, (3 * scale + 1) / 2) : scale }

    /// Width of a text in units, as the bitmap font draws it at scale 2 (SVG fonts come out close).
    public func width(_ text: String) -> Double {
        Double(BitmapFont.width(of: text, scale: glyphScale(2))) / 2 + (bold ? 0.5 : 0)
    }
}

public struct VectorScene: Sendable {
    public enum Item: Sendable {
        case rect(x: Double, y: Double, width: Double, height: Double, fill: Color?, stroke: Color?)
        case line(from: Point, to: Point, color: Color, width: Double, role: String)
        /// A data series: subpaths (gaps between them), drawn as one stroke.
        case path(subpaths: [[Point]], color: Color, width: Double, attributes: [(String, String)])
        case dot(center: Point, radius: Double, color: Color)
        /// With `vertical`, the text is rotated to read upwards and `at` is its centre line's midpoint;
        /// `centered` puts the text's middle (not its baseline) on `at.y`.
        case text(String, at: Point, style: TextStyle, anchor: TextAnchor, color: Color, vertical: Bool, centered: Bool,
                  role: String)
        case group(String, [Item])
    }

    public var width: Double
    public var height: Double
    public var background = Color.white
    public var items: [Item] = []

    public init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    // MARK: SVG

    /// A standalone SVG document (UTF-8 XML), byte-for-byte the same for the same scene.
    public func svg() -> String {
        var out = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(n(width))" height="\(n(height))" \
        viewBox="0 0 \(n(width)) \(n(height))" font-family="DejaVu Sans, Verdana, Helvetica, Arial, sans-serif">

        """
        out += "<rect x=\"0\" y=\"0\" width=\"\(n(width))\" height=\"\(n(height))\" fill=\"\(background.hexString)\"/>\n"
        for item in items { write(item, into: &out, indent: "") }
        return out + "</svg>\n"
    }

    func write(_ item: Item, into out: inout String, indent: String) {
        switch item {
        case .rect(let x, let y, let w, let h, let fill, let stroke):
            out += "\(indent)<rect x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(w))\" height=\"\(n(h))\" fill=\"\(fill?.hexString ?? "none")\""
            if let stroke { out += " stroke=\"\(stroke.hexString)\" stroke-width=\"1\"" }
            out += "/>\n"
        case .line(let a, let b, let color, let width, let role):
            out += "\(indent)<line class=\"\(role)\" x1=\"\(n(a.x))\" y1=\"\(n(a.y))\" x2=\"\(n(b.x))\" y2=\"\(n(b.y))\" "
                + "stroke=\"\(color.hexString)\" stroke-width=\"\(n(width))\"/>\n"
        case .path(let subpaths, let color, let width, let attributes):
            let d = subpaths.filter { !$0.isEmpty }.map { points in
                "M" + points.map { "\(n($0.x)),\(n($0.y))" }.joined(separator: " L")
            }.joined(separator: " ")
            out += "\(indent)<path"
            for (key, value) in attributes { out += " \(key)=\"\(Self.escape(value))\"" }
            out += " d=\"\(d)\" fill=\"none\" stroke=\"\(color.hexString)\" stroke-width=\"\(n(width))\" "
                + "stroke-linejoin=\"round\" stroke-linecap=\"round\"/>\n"
        case .dot(let c, let r, let color):
            out += "\(indent)<circle cx=\"\(n(c.x))\" cy=\"\(n(c.y))\" r=\"\(n(r))\" fill=\"\(color.hexString)\"/>\n"
        case .text(let text, let p, let style, let anchor, let color, let vertical, let centered, let role):
            out += "\(indent)<text class=\"\(role)\" x=\"\(n(p.x))\" y=\"\(n(p.y))\" font-size=\"\(n(style.fontSize))\""
            if style.bold { out += " font-weight=\"bold\"" }
            if anchor != .start { out += " text-anchor=\"\(anchor.rawValue)\"" }
            if centered { out += " dominant-baseline=\"central\"" }
            if vertical { out += " transform=\"rotate(-90 \(n(p.x)) \(n(p.y)))\"" }
            out += " fill=\"\(color.hexString)\">\(Self.escape(text))</text>\n"
        case .group(let role, let children):
            out += "\(indent)<g class=\"\(role)\">\n"
            for child in children { write(child, into: &out, indent: indent + "  ") }
            out += "\(indent)</g>\n"
        }
    }

    /// Two decimals, trailing zeros dropped: short, exact enough, and stable.
    func n(_ value: Double) -> String {
        var text = String(format: "%.2f", value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text == "-0" ? "0" : text
    }

    /// XML text and attribute escaping (control characters, which XML forbids, become spaces).
    public static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.unicodeScalars.append(scalar.value < 0x20 && scalar != "\n" && scalar != "\t" ? " " : scalar)
            }
        }
        return out
    }

    // MARK: Raster

    /// The scene drawn at `scale` pixels per unit. SVG pixel edges sit on whole units; Canvas pixels are
    /// centred on whole numbers, hence the half-pixel shift of strokes.
    public func rasterize(scale: Int = 2) throws -> Image {
        let s = Double(max(1, scale))
        var canvas = try Canvas(width: max(1, Int((width * s).rounded())), height: max(1, Int((height * s).rounded())),
                                background: background)
        for item in items { draw(item, on: &canvas, scale: max(1, scale)) }
        return canvas.image
    }

    func draw(_ item: Item, on canvas: inout Canvas, scale: Int) {
        let s = Double(scale)
        func px(_ p: Point) -> Point { Point(p.x * s - 0.5, p.y * s - 0.5) }
        switch item {
        case .rect(let x, let y, let w, let h, let fill, let stroke):
            let x0 = Int((x * s).rounded()), y0 = Int((y * s).rounded())
            let x1 = Int(((x + w) * s).rounded()), y1 = Int(((y + h) * s).rounded())
            if let fill { canvas.fill(x: x0, y: y0, width: x1 - x0, height: y1 - y0, fill) }
            if let stroke { canvas.strokeRect(x: x0, y: y0, width: x1 - x0, height: y1 - y0, lineWidth: scale / 2 + scale % 2, stroke) }
        case .line(let a, let b, let color, let width, _):
            let thickness = max(1, Int((width * s).rounded()))
            if a.y == b.y {
                // Axis-aligned rules snap to whole pixels: crisp gridlines and ticks.
                let x0 = Int((min(a.x, b.x) * s).rounded()), x1 = Int((max(a.x, b.x) * s).rounded())
                canvas.fill(x: x0, y: Int((a.y * s - Double(thickness) / 2).rounded()), width: max(1, x1 - x0),
                            height: thickness, color)
            } else if a.x == b.x {
                let y0 = Int((min(a.y, b.y) * s).rounded()), y1 = Int((max(a.y, b.y) * s).rounded())
                canvas.fill(x: Int((a.x * s - Double(thickness) / 2).rounded()), y: y0, width: thickness,
                            height: max(1, y1 - y0), color)
            } else {
                canvas.drawLine(from: px(a), to: px(b), width: width * s, color)
            }
        case .path(let subpaths, let color, let width, _):
            for points in subpaths where points.count > 1 {
                canvas.drawPolyline(points.map(px), width: width * s, color)
            }
        case .dot(let c, let r, let color):
            canvas.fillCircle(center: px(c), radius: r * s, color)
        case .text(let text, let p, let style, let anchor, let color, let vertical, let centered, _):
            let g = style.glyphScale(scale)
            let length = BitmapFont.width(of: text, scale: g)
            let along = anchor == .start ? 0 : anchor == .middle ? length / 2 : length
            // From the baseline (or the middle of the capitals) to the top of the glyph cell.
            let rise = centered ? BitmapFont.ascent * g / 2 : BitmapFont.ascent * g
            if vertical {
                canvas.drawText(text, x: Int((p.x * s).rounded()) - rise, y: Int((p.y * s).rounded()) + along, scale: g,
                                color, direction: .up, bold: style.bold)
            } else {
                canvas.drawText(text, x: Int((p.x * s).rounded()) - along, y: Int((p.y * s).rounded()) - rise, scale: g,
                                color, bold: style.bold)
            }
        case .group(_, let children):
            for child in children { draw(child, on: &canvas, scale: scale) }
        }
    }
}
