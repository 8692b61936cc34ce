// The stencil's raster: a 1-bit greyscale PNG whose pHYs gives its print size, as Pillow reads it.
import Foundation
import Imaging
import Stencil
import Testing
import TestSupport

@Suite struct StencilPNGTests {
    struct PillowReport: Decodable {
        let mode: String
        let size: [Int]
        let format: String
        let bit_depth: Int
        let colour_type: Int
        let dpi: [Double]?
    }

    @Test func pillowReadsOneBitGreyWithItsDensityAndTheSamePixels() throws {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        // An irregular pattern whose width (37) is not a multiple of 8, so row padding is exercised.
        let w = 37, h = 23
        let ink = (0..<(w * h)).map { i -> UInt8 in (i * 7 + i / w * 3) % 5 < 2 ? 1 : 0 }
        let stencil = Stencil(bitmap: try Bitmap(width: w, height: h, ink: ink), dpi: 300)
        let file = folder.appendingPathComponent("s.png"), back = folder.appendingPathComponent("back.png")
        try Data(try stencil.pngData()).write(to: file)
        let json = try runReference("png_info.py", [file.path, back.path])
        let report = try JSONDecoder().decode(PillowReport.self, from: Data(json.utf8))
        #expect(report.format == "PNG")
        #expect(report.mode == "1")
        #expect(report.bit_depth == 1 && report.colour_type == 0)
        #expect(report.size == [w, h])
        // 300 dpi is written as round(300 / 0.0254) = 11811 pixels per metre; Pillow reports ppm × 0.0254.
        let dpi = try #require(report.dpi)
        #expect(abs(dpi[0] - 11811 * 0.0254) < 1e-9 && abs(dpi[1] - 11811 * 0.0254) < 1e-9)
        // Pillow's decoded pixels, written back by Pillow as 8-bit grey: ink exactly where ours is.
        let pillow = try Bitmap(grey: try ImageDecoder.read(back).image)
        #expect(pillow == stencil.bitmap)
        // Our own decoder agrees too.
        #expect(try Bitmap(grey: try ImageDecoder.read(file).image) == stencil.bitmap)
    }

    @Test func printSizeFromCentimetresAndInchesKeepsTheAspect() throws {
        // 10 cm at 300 dpi = 1181.1 pixels wide; a 400 × 300 image keeps 4:3.
        let size = try PrintSize(dpi: 300, width: .centimetres(10)).pixels(forWidth: 400, height: 300)
        #expect(size.width == 1181 && size.height == 886)
        // Both sides given: fits inside both (here the height binds: 2 in at 150 dpi = 300 pixels).
        let both = try PrintSize(dpi: 150, width: .inches(4), height: .inches(2)).pixels(forWidth: 400, height: 300)
        #expect(both.width == 400 && both.height == 300)
        let none = try PrintSize(dpi: 600).pixels(forWidth: 123, height: 45)
        #expect(none.width == 123 && none.height == 45)
        #expect(throws: StencilError.self) { try PrintSize(dpi: 0) }
        #expect(throws: StencilError.self) { try PrintSize(width: .centimetres(-3)) }
    }

    @Test func stencilAtPrintSizeWritesThatDensity() throws {
        var settings = StencilSettings()
        settings.printSize = try PrintSize(dpi: 200, height: .inches(1.5))
        settings.threshold = .otsu
        let art = try Image.filled(width: 64, height: 48, channels: 1)
        let stencil = try Stencil(art, settings: settings)
        #expect(stencil.bitmap.width == 400 && stencil.bitmap.height == 300)
        #expect(abs(stencil.millimetres.height - 38.1) < 1e-9)
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("s.png")
        try Data(try stencil.pngData()).write(to: file)
        let report = try JSONDecoder().decode(PillowReport.self, from: Data(try runReference("png_info.py", [file.path]).utf8))
        let dpi = try #require(report.dpi)
        #expect(abs(dpi[0] - 200) < 0.01 && report.size == [400, 300])
    }
}
