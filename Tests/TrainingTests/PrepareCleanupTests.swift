// The line-art clean-up and the perceptual hash on their own (the numpy parity of the clean-up is the
// clean64 case of PrepareParityTests): what they must do to a scanned stencil, and what they must leave.
import Foundation
import Imaging
import Testing
import TestSupport
import Torch
@testable import Training

@Suite struct PrepareCleanupTests {
    /// A 64×64 "scan": paper 200…206 with grain, a 1-pixel vertical line at x = 20, a 4-pixel stroke in rows
    /// 40…43 with a pale hole at (30, 41), and a dark speck at (5, 5).
    func scan() throws -> Image {
        var pixels = [UInt8](repeating: 0, count: 64 * 64 * 3)
        for y in 0..<64 {
            for x in 0..<64 {
                var v = 200 + (x + 3 * y) % 7
                if x == 20 || (40...43).contains(y) { v = 50 }
                if x == 30 && y == 41 { v = 190 }
                if x == 5 && y == 5 { v = 60 }
                for c in 0..<3 { pixels[(y * 64 + x) * 3 + c] = UInt8(v) }
            }
        }
        return try Image(width: 64, height: 64, channels: 3, pixels: pixels)
    }

    func value(_ image: Image, _ x: Int, _ y: Int) -> Int { Int(image.pixels[(y * image.width + x) * 3]) }

    @Test func paperBecomesWhiteInkBlackAndSpecksGo() throws {
        let cleaned = try LineArtCleanup().apply(try scan())
        let levels = try #require(try LineArtCleanup().levels(try scan()))
        #expect(levels.black == 50, "the ink's median")
        #expect(levels.white == 201, "the paper's 25th percentile")
        var paper = 0, white = 0
        for y in 0..<64 { for x in 0..<64 where x != 20 && !(38...45).contains(y) && !(x == 5 && y == 5) {
            paper += 1
            if value(cleaned, x, y) == 255 { white += 1 }
            #expect(value(cleaned, x, y) >= 250, "paper at (\(x), \(y)) is \(value(cleaned, x, y))")
        } }
        #expect(Double(white) / Double(paper) > 0.8, "most of the paper is pure white")
        for y in 0..<64 where !(40...43).contains(y) { #expect(value(cleaned, 20, y) == 0, "the 1-pixel line survives at y = \(y)") }
        for x in [0, 10, 50, 63] { #expect(value(cleaned, x, 41) == 0, "the stroke is black") }
        #expect(value(cleaned, 5, 5) >= 250, "the speck is gone")
        #expect(value(cleaned, 30, 41) == 0, "the hole in the stroke is filled")
    }

    @Test func flatImagesKeepTheirLevels() throws {
        let grey = try Image.filled(width: 16, height: 16, channels: 3, value: 128)
        #expect(try LineArtCleanup().levels(grey) == nil)
        #expect(try LineArtCleanup().apply(grey) == grey)
        // Low contrast (white − black < 32) is left alone too.
        var pixels = [UInt8](repeating: 120, count: 16 * 16 * 3)
        for i in stride(from: 0, to: pixels.count, by: 6) { pixels[i] = 140; pixels[i + 1] = 140; pixels[i + 2] = 140 }
        #expect(try LineArtCleanup().levels(try Image(width: 16, height: 16, channels: 3, pixels: pixels)) == nil)
    }

    @Test func perceptualHashIsStableUnderSmallChangesAndSeparatesDrawings() throws {
        let d = try PerceptualHash.dctMatrix()
        let identity = try Tensor((0..<1024).map { $0 / 32 == $0 % 32 ? 1.0 : 0.0 }, shape: [32, 32])
        try expectClose(try d.matmul(d.transpose(0, 1)), identity, atol: 1e-12, "the DCT is orthonormal")
        let base = try scan()
        let hash = try PerceptualHash(base)
        #expect(hash.distance(to: hash) == 0)
        #expect(PerceptualHash(hex: hash.description) == hash)
        // A one-level brightness change keeps the hash; a different drawing moves it far.
        let brighter = try Image(width: 64, height: 64, channels: 3, pixels: base.pixels.map { $0 < 255 ? $0 + 1 : $0 })
        #expect(try PerceptualHash(brighter).distance(to: hash) <= 2)
        let rotated = try Image(hwc: try base.hwcTensor().transpose(0, 1).contiguous())
        #expect(try PerceptualHash(rotated).distance(to: hash) > PerceptualHash.defaultThreshold)
        let pairs = PerceptualHash.nearDuplicates([("b", hash), ("a", try PerceptualHash(brighter)), ("c", try PerceptualHash(rotated))],
                                                  threshold: PerceptualHash.defaultThreshold)
        #expect(pairs.map { [$0.first, $0.second] } == [["a", "b"]])
    }
}
