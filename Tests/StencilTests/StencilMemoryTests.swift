// An A4 page at 300 dpi (2480 × 3508) becomes a stencil without a large peak in memory.
import Foundation
import Imaging
import Stencil
import Testing
import TestSupport
import Training

@Suite struct StencilMemoryTests {
    /// VmHWM (peak resident set) of this process, in MiB.
    static func peakMiB() throws -> Double {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") })
        let kB = try #require(Double(line.split(separator: " ").dropFirst().first { !$0.isEmpty } ?? ""))
        return kB / 1024
    }

    static func currentMiB() throws -> Double {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
        return try #require(Double(line.split(separator: " ").dropFirst().first { !$0.isEmpty } ?? "")) / 1024
    }

    @Test func a4At300DpiFromAGeneratedImage() throws {
        // A generated drawing stretched to A4's proportions (620 × 877 is the page at 75 dpi).
        let square = try #require(try SyntheticLineArt.make(count: 1, size: 512, seed: 3).first).image
        let art = try square.resized(width: 620, height: 877, filter: .bicubic)
        var settings = StencilSettings()
        settings.printSize = try PrintSize(dpi: 300, width: .centimetres(21.0))
        settings.lineWeight = 9
        settings.holeArea = 50
        // Writing 5 to clear_refs resets the peak (Linux ≥ 4.0), so VmHWM measures this test alone.
        try "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
        let before = try Self.currentMiB()
        let start = Date()
        let stencil = try Stencil(art, settings: settings)
        let png = try stencil.pngData()
        let peak = try Self.peakMiB() - before
        print("A4 stencil: \(stencil.bitmap.width)×\(stencil.bitmap.height), \(png.count) bytes of PNG, peak +\(peak) MiB, \(Date().timeIntervalSince(start)) s")
        #expect(stencil.bitmap.width == 2480 && stencil.bitmap.height == 3508)
        // The page is 8.7 MB as one byte per pixel; a full-page float64 integral image alone would be 70 MB
        // per table. The bound leaves room for a few byte-per-pixel copies and the Lanczos resize.
        #expect(peak < 400, "peak resident memory grew by \(peak) MiB")
    }
}
