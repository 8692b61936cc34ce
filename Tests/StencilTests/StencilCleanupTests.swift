// Threshold against the ground truth of scanned-like drawings, and the bitmap clean-up steps.
import Foundation
import Imaging
import Stencil
import Testing
import TestSupport

@Suite struct StencilCleanupTests {
    /// Sauvola recovers the clean drawing from unevenly lit, noisy pencil; one global level cannot.
    @Test func sauvolaFindsTheDrawingUnderUnevenLightAndPencilNoise() throws {
        for (k, scanCase) in try StencilSupport.scanCases().enumerated() {
            let stencil = try Stencil(scanCase.scan, settings: StencilSettings())
            let adaptive = try stencil.bitmap.inkIoU(scanCase.truth)
            var global = StencilSettings()
            global.threshold = .otsu
            let otsu = try Stencil(scanCase.scan, settings: global).bitmap.inkIoU(scanCase.truth)
            print("scan \(k): Sauvola IoU \(adaptive), Otsu IoU \(otsu)")
            #expect(adaptive >= 0.95, "scan \(k): Sauvola ink IoU \(adaptive) with the ground truth")
            #expect(otsu < adaptive - 0.1, "scan \(k): Otsu \(otsu) should fail where the light is uneven")
        }
    }

    @Test func thresholdParsing() throws {
        #expect(try StencilThreshold(parsing: "otsu", window: nil, k: 0.2) == .otsu)
        #expect(try StencilThreshold(parsing: "Sauvola", window: 31, k: 0.3) == .sauvola(window: 31, k: 0.3))
        #expect(try StencilThreshold(parsing: "140", window: nil, k: 0.2) == .fixed(140))
        #expect(throws: StencilError.self) { try StencilThreshold(parsing: "kittler", window: nil, k: 0.2) }
        #expect(throws: StencilError.self) { try StencilThreshold(parsing: "sauvola", window: 30, k: 0.2) }
        #expect(throws: StencilError.self) { try StencilThreshold(parsing: "300", window: nil, k: 0.2) }
    }

    /// Sauvola in a flat region: T = m (1 − k), so paper stays paper and a uniform dark field stays ink.
    @Test func sauvolaOnFlatFields() throws {
        let paper = try Image.filled(width: 40, height: 30, channels: 1, value: 200)
        #expect(try StencilThreshold.sauvola(window: 15, k: 0.2).apply(paper).inkCount == 0)
        let dark = try Image.filled(width: 40, height: 30, channels: 1, value: 0)
        #expect(try StencilThreshold.sauvola(window: 15, k: 0.2).apply(dark).inkCount == 1200)
    }

    static func bitmap(_ rows: [String]) throws -> Bitmap {
        try Bitmap(width: rows[0].count, height: rows.count, ink: rows.flatMap { $0.map { $0 == "#" ? 1 : 0 } })
    }

    @Test func specksBelowTheAreaGoAndHolesUpToTheAreaFill() throws {
        var b = try Self.bitmap([
            "#.........",
            "..........",
            "...####...",
            "...#..#..#",
            "...####..#",
            "..........",
            ".#.#......",
        ])
        b.removeSpecks(smallerThan: 3)
        // The lone pixels (corner, bottom row) go; the 2-pixel bar at the right edge goes; the ring stays.
        #expect(b == (try Self.bitmap([
            "..........",
            "..........",
            "...####...",
            "...#..#...",
            "...####...",
            "..........",
            "..........",
        ])))
        var filled = b
        filled.fillHoles(upTo: 1)
        #expect(filled == b, "a 2-pixel hole is larger than 1")
        filled.fillHoles(upTo: 2)
        #expect(filled.inkCount == b.inkCount + 2)
        // Paper that touches the border is never a hole, whatever its size.
        var open = try Self.bitmap(["###", "#..", "###"])
        open.fillHoles(upTo: 100)
        #expect(open.inkCount == 7)
    }

    @Test func lineWeightRedrawsStrokesAtOneWidth() throws {
        // A 15-pixel-thick horizontal bar and a 3-pixel one: both become 5 pixels thick in their middles.
        var rows = [String](repeating: String(repeating: ".", count: 120), count: 40)
        for y in 5..<20 { rows[y] = String(repeating: ".", count: 10) + String(repeating: "#", count: 100) + String(repeating: ".", count: 10) }
        for y in 30..<33 { rows[y] = String(repeating: ".", count: 10) + String(repeating: "#", count: 100) + String(repeating: ".", count: 10) }
        let weighted = try Self.bitmap(rows).withLineWeight(5)
        func thickness(_ x: Int, _ range: Range<Int>) -> Int { range.filter { weighted.isInk(x, $0) }.count }
        #expect(thickness(60, 0..<25) == 5)
        #expect(thickness(60, 25..<40) == 5)
        let skeleton = try Self.bitmap(rows).thinned()
        #expect((0..<25).filter { skeleton.isInk(60, $0) }.count == 1)
    }

    @Test func badSettingsAreRefusedBeforeWork() throws {
        var settings = StencilSettings()
        settings.lineWeight = 0
        #expect(throws: StencilError.self) { try settings.validated() }
        settings = StencilSettings()
        settings.trace.alphaMax = 2
        #expect(throws: StencilError.self) { try settings.validated() }
    }
}
