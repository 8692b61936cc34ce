// Raster drawing for the small canvases of plots and comparison grids: filled rectangles, lines and
// polylines (anti-aliased or plain, any width), discs, bitmap-font text and pasted images. Everything
// writes into one RGB byte buffer that becomes an `Image` at the end, and everything clips at the
// canvas edge, so a shape partly or wholly outside is drawn in part or not at all, never a crash.
//
// Coordinates: pixel (i, j) is the unit square centred on (i, j), so a width-1 line from (2, 5) to
// (9, 5) covers exactly the pixels x = 2…9 of row 5. Integer rectangles are [x, x + width) × [y, y + height).
import Foundation

public struct Color: Equatable, Hashable, Sendable {
    public var r: UInt8
    public var g: UInt8
    public var b: UInt8

    public init(r: UInt8, g: UInt8, b: UInt8) {
        self.r = r
        self.g = g
        self.b = b
    }

    /// 0xRRGGBB.
    public init(hex: UInt32) {
        self.init(r: UInt8((hex >> 16) & 0xFF), g: UInt8((hex >> 8) & 0xFF), b: UInt8(hex & 0xFF))
    }

    public static let black = Color(hex: 0x000000)
    public static let white = Color(hex: 0xFFFFFF)

    /// "#rrggbb", as SVG and HTML write colours.
    public var hexString: String { String(format: "#%02x%02x%02x", r, g, b) }

    /// This colour moved `amount` (0…1) of the way towards `other` (a tint when `other` is white).
    public func mixed(with other: Color, amount: Double) -> Color {
        let t: Double = min(max(amount, 0), 1)
        func mix(_ a: UInt8, _ b: UInt8) -> UInt8 {
            let from = Double(a), to = Double(b)
            return UInt8((from + (to - from) * t).rounded())
        }
        return Color(r: mix(r, other.r), g: mix(g, other.g), b: mix(b, other.b))
    }
}

public struct Point: Equatable, Sendable {
    public var x: Double
    public var y: Double
    public init(_ x: Double, _ y: Double) {
        self.x = x
        self.y = y
    }
}

public enum TextDirection: Sendable {
    /// Left to right.
    case horizontal
    /// Bottom to top (a y-axis label), glyph tops facing left.
    case up
}

public struct Canvas: Sendable {
    public let width: Int
    public let height: Int
    /// RGB, `height` rows of `width * 3` bytes.
    public private(set) var pixels: [UInt8]

    public init(width: Int, height: Int, background: Color = .white) throws {
        guard width > 0, height > 0, !width.multipliedReportingOverflow(by: height).overflow,
              width * height <= 1 << 28 else {
            throw ImageError.invalid("cannot make a \(width)×\(height) canvas")
        }
        self.width = width
        self.height = height
        let count = width * height * 3
        if background.r == background.g && background.g == background.b {
            pixels = [UInt8](repeating: background.r, count: count)
        } else {
            pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                for i in stride(from: 0, to: count, by: 3) {
                    buffer[i] = background.r
                    buffer[i + 1] = background.g
                    buffer[i + 2] = background.b
                }
                initialized = count
            }
        }
    }

    /// A canvas holding an image's pixels (grey and alpha converted as `Image.rgb()` does).
    public init(_ image: Image) throws {
        let rgb = try image.rgb()
        width = rgb.width
        height = rgb.height
        pixels = rgb.pixels
    }

    public var image: Image { Image(unchecked: width, height, 3, pixels) }

    /// The colour at a pixel; nil outside the canvas.
    public func color(x: Int, y: Int) -> Color? {
        guard (0..<width).contains(x), (0..<height).contains(y) else { return nil }
        let i = (y * width + x) * 3
        return Color(r: pixels[i], g: pixels[i + 1], b: pixels[i + 2])
    }

    // MARK: Pixels and rectangles

    /// Sets one pixel; ignored outside the canvas.
    public mutating func set(x: Int, y: Int, _ color: Color) {
        guard (0..<width).contains(x), (0..<height).contains(y) else { return }
        let i = (y * width + x) * 3
        pixels[i] = color.r
        pixels[i + 1] = color.g
        pixels[i + 2] = color.b
    }

    /// Mixes `coverage` (0…1) of `color` into a pixel; ignored outside the canvas.
    public mutating func blend(x: Int, y: Int, _ color: Color, coverage: Double) {
        guard coverage > 0, (0..<width).contains(x), (0..<height).contains(y) else { return }
        if coverage >= 1 { return set(x: x, y: y, color) }
        let i = (y * width + x) * 3
        func mix(_ old: UInt8, _ new: UInt8) -> UInt8 {
            let from = Double(old), to = Double(new)
            return UInt8((from + (to - from) * coverage).rounded())
        }
        pixels[i] = mix(pixels[i], color.r)
        pixels[i + 1] = mix(pixels[i + 1], color.g)
        pixels[i + 2] = mix(pixels[i + 2], color.b)
    }

    /// Fills [x, x + width) × [y, y + height), clipped to the canvas.
    public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, _ color: Color) {
        let x0 = max(0, x), y0 = max(0, y)
        let x1 = min(width, x.addingReportingOverflow(w).overflow ? width : x + w)
        let y1 = min(height, y.addingReportingOverflow(h).overflow ? height : y + h)
        guard x0 < x1, y0 < y1 else { return }
        let stride = width
        pixels.withUnsafeMutableBufferPointer { p in
            for yy in y0..<y1 {
                var i = (yy * stride + x0) * 3
                for _ in x0..<x1 {
                    p[i] = color.r
                    p[i + 1] = color.g
                    p[i + 2] = color.b
                    i += 3
                }
            }
        }
    }

    /// The outline of [x, x + width) × [y, y + height), `lineWidth` pixels thick, inside the rectangle.
    public mutating func strokeRect(x: Int, y: Int, width w: Int, height h: Int, lineWidth: Int = 1, _ color: Color) {
        guard w > 0, h > 0, lineWidth > 0 else { return }
        let t = min(lineWidth, (min(w, h) + 1) / 2)
        fill(x: x, y: y, width: w, height: t, color)
        fill(x: x, y: y + h - t, width: w, height: t, color)
        fill(x: x, y: y, width: t, height: h, color)
        fill(x: x + w - t, y: y, width: t, height: h, color)
    }

    /// Copies an image's pixels with its top-left corner at (x, y), clipped; alpha is composited over
    /// white first and grey is replicated.
    public mutating func paste(_ image: Image, x: Int, y: Int) throws {
        let source = try image.flattened().rgb()
        let x0 = max(0, x), x1 = min(width, x + source.width)
        let y0 = max(0, y), y1 = min(height, y + source.height)
        guard x0 < x1, y0 < y1 else { return }
        for yy in y0..<y1 {
            let from = ((yy - y) * source.width + (x0 - x)) * 3
            let to = (yy * width + x0) * 3
            let count = (x1 - x0) * 3
            pixels.replaceSubrange(to..<(to + count), with: source.pixels[from..<(from + count)])
        }
    }

    // MARK: Lines

    /// A straight line with round ends; `width` in pixels.
    public mutating func drawLine(from a: Point, to b: Point, width: Double = 1, _ color: Color, antialiased: Bool = true) {
        drawPolyline([a, b], width: width, color, antialiased: antialiased)
    }

    /// Connected segments drawn as one stroke: where segments overlap at a joint the coverage is the
    /// larger of the two, not their sum, so joints are no darker than the line.
    public mutating func drawPolyline(_ points: [Point], width: Double = 1, _ color: Color, antialiased: Bool = true) {
        let finite = points.filter { $0.x.isFinite && $0.y.isFinite }
        guard !finite.isEmpty, width > 0 else { return }
        if !antialiased && width <= 1 {
            for (a, b) in zip(finite, finite.dropFirst()) { bresenham(a, b, color) }
            if finite.count == 1 { set(x: Int(finite[0].x.rounded()), y: Int(finite[0].y.rounded()), color) }
            return
        }
        let radius = width / 2
        let pad = radius + 1
        // Region touched, clipped to the canvas: coverage is kept only there.
        let xs = finite.map(\.x), ys = finite.map(\.y)
        guard let box = clippedBox(minX: xs.reduce(.infinity, min) - pad, maxX: xs.reduce(-.infinity, max) + pad,
                                   minY: ys.reduce(.infinity, min) - pad, maxY: ys.reduce(-.infinity, max) + pad)
        else { return }
        var coverage = [Double](repeating: 0, count: box.w * box.h)
        // The pixels with any coverage, so the blend pass skips the (mostly empty) rest of the box.
        var touched: [Int] = []
        let segments = finite.count == 1 ? [(finite[0], finite[0])] : Array(zip(finite, finite.dropFirst()))
        for (a, b) in segments {
            guard let s = clippedBox(minX: min(a.x, b.x) - pad, maxX: max(a.x, b.x) + pad,
                                     minY: min(a.y, b.y) - pad, maxY: max(a.y, b.y) + pad) else { continue }
            for y in s.y..<(s.y + s.h) {
                for x in s.x..<(s.x + s.w) {
                    let d = Self.distance(Point(Double(x), Double(y)), a, b)
                    let c = antialiased ? min(max(radius + 0.5 - d, 0), 1) : (d <= radius ? 1 : 0)
                    let i = (y - box.y) * box.w + (x - box.x)
                    if c > coverage[i] {
                        if coverage[i] == 0 { touched.append(i) }
                        coverage[i] = c
                    }
                }
            }
        }
        for i in touched {
            blend(x: box.x + i % box.w, y: box.y + i / box.w, color, coverage: coverage[i])
        }
    }

    /// A filled disc.
    public mutating func fillCircle(center: Point, radius: Double, _ color: Color, antialiased: Bool = true) {
        guard radius > 0, center.x.isFinite, center.y.isFinite,
              let box = clippedBox(minX: center.x - radius - 1, maxX: center.x + radius + 1,
                                   minY: center.y - radius - 1, maxY: center.y + radius + 1) else { return }
        for y in box.y..<(box.y + box.h) {
            for x in box.x..<(box.x + box.w) {
                let d = ((Double(x) - center.x) * (Double(x) - center.x) + (Double(y) - center.y) * (Double(y) - center.y)).squareRoot()
                blend(x: x, y: y, color, coverage: antialiased ? min(max(radius + 0.5 - d, 0), 1) : (d <= radius ? 1 : 0))
            }
        }
    }

    /// Distance from p to the segment ab.
    static func distance(_ p: Point, _ a: Point, _ b: Point) -> Double {
        let dx = b.x - a.x, dy = b.y - a.y
        let length2 = dx * dx + dy * dy
        var t = length2 > 0 ? ((p.x - a.x) * dx + (p.y - a.y) * dy) / length2 : 0
        t = min(max(t, 0), 1)
        let ex = a.x + t * dx - p.x, ey = a.y + t * dy - p.y
        return (ex * ex + ey * ey).squareRoot()
    }

    /// The integer pixel box covering a region, clipped to the canvas; nil when nothing is left.
    func clippedBox(minX: Double, maxX: Double, minY: Double, maxY: Double) -> (x: Int, y: Int, w: Int, h: Int)? {
        guard minX.isFinite, maxX.isFinite, minY.isFinite, maxY.isFinite else { return nil }
        let x0 = Int(max(0, min(Double(width), minX.rounded(.down))))
        let x1 = Int(max(0, min(Double(width - 1), maxX.rounded(.up))))
        let y0 = Int(max(0, min(Double(height), minY.rounded(.down))))
        let y1 = Int(max(0, min(Double(height - 1), maxY.rounded(.up))))
        guard x0 <= x1, y0 <= y1, x0 < width, y0 < height else { return nil }
        return (x0, y0, x1 - x0 + 1, y1 - y0 + 1)
    }

    /// One-pixel line between the nearest pixels of the end points, every pixel fully set.
    mutating func bresenham(_ a: Point, _ b: Point, _ color: Color) {
        // Clamp far-away end points so the loop stays short; the clipped part is outside anyway.
        let limit = Double(max(width, height)) * 4
        func clamp(_ v: Double) -> Int { Int(min(max(v, -limit), limit).rounded()) }
        var x = clamp(a.x), y = clamp(a.y)
        let x1 = clamp(b.x), y1 = clamp(b.y)
        let dx = abs(x1 - x), dy = -abs(y1 - y)
        let sx = x < x1 ? 1 : -1, sy = y < y1 ? 1 : -1
        var error = dx + dy
        while true {
            set(x: x, y: y, color)
            if x == x1 && y == y1 { break }
            let e2 = 2 * error
            if e2 >= dy { error += dy; x += sx }
            if e2 <= dx { error += dx; y += sy }
        }
    }

    // MARK: Text

    /// Draws one line of text with the bitmap font: for `.horizontal`, (x, y) is the top-left corner of
    /// the first glyph's cell; for `.up`, (x, y) is the bottom-left corner of the rotated text (the
    /// text runs upwards from y). `bold` doubles every stroke one pixel to the right (upwards for `.up`).
    /// Returns the text's length in pixels along its direction.
    @discardableResult
    public mutating func drawText(_ text: String, x: Int, y: Int, scale: Int = 1, _ color: Color,
                                  direction: TextDirection = .horizontal, bold: Bool = false) -> Int {
        let s = max(1, scale)
        var pen = 0
        for character in text {
            let rows = BitmapFont.glyph(character)
            for (r, bits) in rows.enumerated() where bits != 0 {
                for c in 0..<BitmapFont.glyphWidth where bits & (1 << (BitmapFont.glyphWidth - 1 - c)) != 0 {
                    let u = pen + c * s, v = r * s
                    let extra = bold ? 1 : 0
                    switch direction {
                    case .horizontal: fill(x: x + u, y: y + v, width: s + extra, height: s, color)
                    case .up: fill(x: x + v, y: y - u - s - extra + 1, width: s, height: s + extra, color)
                    }
                }
            }
            pen += BitmapFont.advance * s
        }
        return BitmapFont.width(of: text, scale: s)
    }
}

extension Image {
    /// This image drawn on: the closure gets an RGB canvas of its pixels and the result is the canvas.
    public func drawing(_ body: (inout Canvas) throws -> Void) throws -> Image {
        var canvas = try Canvas(self)
        try body(&canvas)
        return canvas.image
    }
}
