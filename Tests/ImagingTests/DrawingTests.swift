// Raster drawing: shapes land on exactly the pixels they should, text is the font's bitmaps at the
// right place and scale, and anything past the canvas edge is clipped without a crash.
import Foundation
import Testing
import TestSupport
@testable import Imaging

@Suite struct DrawingTests {
    let red = Color(hex: 0xFF0000)

    /// The set of pixels that are not the background (white).
    func inked(_ canvas: Canvas) -> Set<[Int]> {
        var result = Set<[Int]>()
        for y in 0..<canvas.height {
            for x in 0..<canvas.width where canvas.color(x: x, y: y) != .white { result.insert([x, y]) }
        }
        return result
    }

    @Test func filledRectangleCoversItsHalfOpenBox() throws {
        var canvas = try Canvas(width: 10, height: 8)
        canvas.fill(x: 2, y: 3, width: 4, height: 2, red)
        let expected = Set((2..<6).flatMap { x in (3..<5).map { [x, $0] } })
        #expect(inked(canvas) == expected)
        #expect(canvas.color(x: 2, y: 3) == red)
        // The image carries the same bytes, RGB.
        let image = canvas.image
        #expect(image.channels == 3 && image.width == 10 && image.height == 8)
        #expect(Array(image.pixels[(3 * 10 + 2) * 3..<(3 * 10 + 2) * 3 + 3]) == [255, 0, 0])
    }

    @Test func strokeRectangleDrawsOnlyTheOutline() throws {
        var canvas = try Canvas(width: 12, height: 12)
        canvas.strokeRect(x: 1, y: 2, width: 6, height: 5, red)
        let px = inked(canvas)
        #expect(px.count == 2 * 6 + 2 * 3)
        #expect(px.contains([1, 2]) && px.contains([6, 6]) && !px.contains([3, 4]) && !px.contains([7, 2]))
    }

    @Test func plainLinesLandOnTheirPixels() throws {
        var canvas = try Canvas(width: 16, height: 16)
        canvas.drawLine(from: Point(2, 5), to: Point(9, 5), red, antialiased: false)
        #expect(inked(canvas) == Set((2...9).map { [$0, 5] }))

        var diagonal = try Canvas(width: 16, height: 16)
        diagonal.drawLine(from: Point(1, 1), to: Point(6, 6), red, antialiased: false)
        #expect(inked(diagonal) == Set((1...6).map { [$0, $0] }))

        // Width 3 without anti-aliasing: a 3-pixel band, rows 4…6; round caps reach one pixel past each end.
        var thick = try Canvas(width: 16, height: 16)
        thick.drawLine(from: Point(3, 5), to: Point(10, 5), width: 3, red, antialiased: false)
        let band = inked(thick)
        #expect(band.isSuperset(of: Set((3...10).flatMap { x in (4...6).map { [x, $0] } })))
        #expect(band.contains([2, 5]) && band.contains([11, 5]))
        #expect(!band.contains([5, 3]) && !band.contains([5, 7]) && !band.contains([12, 5]) && !band.contains([1, 5]) && !band.contains([2, 3]))
    }

    @Test func antialiasedLinesAreFullOnTheirCentreAndPartialAtTheirEdge() throws {
        var canvas = try Canvas(width: 20, height: 20)
        canvas.drawLine(from: Point(2, 10), to: Point(17, 10), width: 2, .black)
        // Centre row fully covered; rows 9 and 11 half covered (the 2-px line spans 9.0 … 11.0 of pixel centres ± 0.5).
        #expect(canvas.color(x: 8, y: 10) == .black)
        let edge = try #require(canvas.color(x: 8, y: 9))
        #expect(edge.r > 100 && edge.r < 160, "half coverage, got \(edge.r)")
        #expect(canvas.color(x: 8, y: 12) == .white)
        // A diagonal: anti-aliased pixels are grey, not only black and white.
        var diagonal = try Canvas(width: 20, height: 20)
        diagonal.drawLine(from: Point(1, 2), to: Point(18, 13), width: 1.5, .black)
        let greys = inked(diagonal).filter { diagonal.color(x: $0[0], y: $0[1]) != .black }
        #expect(!greys.isEmpty)
    }

    @Test func polylineJointsAreNotDarkerThanTheLine() throws {
        // A polyline through collinear points is the same stroke as one line: at the joint both segments
        // half-cover the edge pixels, and blending twice would darken them.
        var single = try Canvas(width: 16, height: 10)
        single.drawLine(from: Point(2, 5), to: Point(12, 5), width: 2, .black)
        var joined = try Canvas(width: 16, height: 10)
        joined.drawPolyline([Point(2, 5), Point(7, 5), Point(12, 5)], width: 2, .black)
        #expect(joined.pixels == single.pixels)
        #expect(joined.color(x: 7, y: 4) == Color(r: 128, g: 128, b: 128))
    }

    @Test func textIsTheGlyphBitmapsAtTheRightPlace() throws {
        var canvas = try Canvas(width: 40, height: 20)
        let width = canvas.drawText("A1", x: 3, y: 4, .black)
        #expect(width == 2 * BitmapFont.advance - 1)
        #expect(BitmapFont.width(of: "A1") == width)
        // Every ink pixel is exactly a set bit of a glyph, offset by the origin and the advance.
        var expected = Set<[Int]>()
        for (i, character) in "A1".enumerated() {
            for (row, bits) in BitmapFont.glyph(character).enumerated() {
                for col in 0..<5 where bits & (1 << (4 - col)) != 0 { expected.insert([3 + i * 6 + col, 4 + row]) }
            }
        }
        #expect(inked(canvas) == expected)
        // "A": its apex row is .###. and its crossbar (row 3) is #####.
        #expect(canvas.color(x: 3, y: 4) == .white && canvas.color(x: 4, y: 4) == .black)
        #expect((3...7).allSatisfy { canvas.color(x: $0, y: 7) == .black })
    }

    @Test func scaledTextIsEveryGlyphPixelAsASquare() throws {
        var small = try Canvas(width: 40, height: 20)
        small.drawText("Hg", x: 0, y: 0, .black)
        var big = try Canvas(width: 80, height: 40)
        let width = big.drawText("Hg", x: 0, y: 0, scale: 3, .black)
        #expect(width == (2 * 6 - 1) * 3)
        for y in 0..<40 {
            for x in 0..<80 { #expect(big.color(x: x, y: y) == small.color(x: x / 3, y: y / 3) ?? .white) }
        }
        // g's descender reaches below the baseline (row 7 and 8).
        #expect((0..<5).contains { small.color(x: 6 + $0, y: 8) == .black })
    }

    @Test func upwardTextIsTheHorizontalTextRotated() throws {
        var flat = try Canvas(width: 30, height: 12)
        flat.drawText("Lr", x: 0, y: 0, .black)
        var up = try Canvas(width: 12, height: 30)
        up.drawText("Lr", x: 0, y: 29, .black, direction: .up)
        // Rotating 90° anticlockwise: (u, v) in the flat text lands at (v, 29 − u).
        for v in 0..<12 {
            for u in 0..<30 { #expect(up.color(x: v, y: 29 - u) == flat.color(x: u, y: v)) }
        }
    }

    @Test func everyPrintableASCIICharacterHasItsOwnGlyph() {
        var shapes = Set<[UInt8]>()
        for value in 0x21...0x7E {
            let character = Character(Unicode.Scalar(UInt8(value)))
            #expect(BitmapFont.hasGlyph(character), "\(character)")
            let rows = BitmapFont.glyph(character)
            #expect(rows.count == BitmapFont.glyphHeight && rows.contains { $0 != 0 }, "\(character)")
            #expect(rows.allSatisfy { $0 < 32 }, "\(character) is wider than 5 columns")
            shapes.insert(rows)
        }
        #expect(shapes.count == 0x7E - 0x21 + 1, "two characters share a glyph")
        #expect(BitmapFont.glyph(" ").allSatisfy { $0 == 0 })
        // Accented letters fall back to their base letter, unknown symbols to the box.
        #expect(BitmapFont.glyph("é") == BitmapFont.glyph("e"))
        #expect(BitmapFont.glyph("★") == BitmapFont.missing)
    }

    @Test func wrappingAndTruncationFitTheWidth() {
        let lines = BitmapFont.wrap("minimal line-art tattoo of a rose, stencil", maxWidth: 6 * 12 - 1)
        #expect(lines == ["minimal", "line-art", "tattoo of a", "rose,", "stencil"])
        #expect(lines.allSatisfy { BitmapFont.width(of: $0) <= 71 })
        let cut = BitmapFont.wrap("one two three four five six", maxWidth: 6 * 9 - 1, maxLines: 2)
        #expect(cut.count == 2 && cut[1].hasSuffix("…") && cut.allSatisfy { $0.count <= 9 })
        #expect(BitmapFont.wrap("abcdefghijkl", maxWidth: 6 * 5 - 1) == ["abcde", "fghij", "kl"])
        #expect(BitmapFont.truncate("checkpoint", maxWidth: 6 * 6 - 1) == "check…")
        #expect(BitmapFont.truncate("best", maxWidth: 6 * 6 - 1) == "best")
    }

    @Test func drawingPastTheEdgeClipsWithoutCrashing() throws {
        var canvas = try Canvas(width: 8, height: 6)
        canvas.fill(x: -5, y: -5, width: 8, height: 7, red)
        #expect(inked(canvas) == Set((0..<3).flatMap { x in (0..<2).map { [x, $0] } }))
        canvas.fill(x: 100, y: 100, width: 5, height: 5, red)
        canvas.fill(x: 0, y: 0, width: Int.max, height: Int.max, .white)
        #expect(inked(canvas).isEmpty)
        canvas.drawLine(from: Point(-50, 3), to: Point(50, 3), width: 2, red)
        canvas.drawLine(from: Point(-1e9, -1e9), to: Point(1e9, 1e9), red, antialiased: false)
        canvas.drawLine(from: Point(.nan, 0), to: Point(3, .infinity), red)
        canvas.fillCircle(center: Point(7, 5), radius: 4, red)
        canvas.drawText("clipped text", x: 5, y: 3, scale: 2, .black)
        canvas.drawText("up", x: -3, y: 2, .black, direction: .up)
        #expect(canvas.color(x: 0, y: 3) == red)
        try canvas.paste(try Image.filled(width: 5, height: 5, channels: 1, value: 0), x: 6, y: -2)
        #expect(canvas.color(x: 7, y: 2) == .black && canvas.color(x: 5, y: 2) != .black)
    }

    @Test func pasteCopiesRowsAndCompositesAlpha() throws {
        let source = try Image(width: 2, height: 2, channels: 4, pixels: [0, 0, 255, 255, 0, 0, 255, 0,
                                                                          10, 20, 30, 255, 10, 20, 30, 255])
        let result = try Image.filled(width: 4, height: 4, channels: 3, value: 200).drawing { canvas in
            try canvas.paste(source, x: 1, y: 1)
        }
        #expect(result.sample(x: 1, y: 1, channel: 2) == 255 && result.sample(x: 1, y: 1, channel: 0) == 0)
        // Transparent pixels become white (flattened over white), not the canvas beneath.
        #expect(result.sample(x: 2, y: 1, channel: 0) == 255)
        #expect(result.sample(x: 1, y: 2, channel: 1) == 20)
        #expect(result.sample(x: 0, y: 0, channel: 0) == 200 && result.sample(x: 3, y: 3, channel: 0) == 200)
    }
}
