import Foundation
import Imaging
import Testing
import TestSupport
import Torch
@testable import Evaluation

/// LineArtMetrics against the same statistics computed with numpy on Pillow's luma of the fixture images
/// (reference/fixtures/clip_model.py): ink coverage at 128 and 64, RMS contrast, midtone fraction. All are
/// exact pixel counts or a float64 standard deviation: tolerance 1e-12.
@Suite struct LineArtMetricsTests {
    @Test func matchesNumpy() throws {
        let inputs = try CLIPFixture.inputs()
        let expected = try CLIPFixture.outputs().get("line_art")
        let names = inputs.tiny_images + inputs.large_images
        #expect(expected.shape == [names.count, 4])
        for (i, name) in names.enumerated() {
            let row = try expected.select(dim: 0, index: i).toArray(Double.self)
            let image = try CLIPFixture.image(name)
            let m = try LineArtMetrics(image)
            let ink64 = try LineArtMetrics.inkCoverage(image, threshold: 64)
            let got = [m.inkCoverage, ink64, m.rmsContrast, m.midtoneFraction]
            for (j, label) in ["ink coverage", "ink coverage at 64", "RMS contrast", "midtone fraction"].enumerated() {
                #expect(abs(got[j] - row[j]) <= 1e-12, "\(name) \(label): \(got[j]) vs numpy \(row[j])")
            }
        }
    }

    @Test func extremes() throws {
        let white = try Image.filled(width: 8, height: 4, channels: 3, value: 255)
        #expect(try LineArtMetrics(white) == LineArtMetrics(inkCoverage: 0, rmsContrast: 0, midtoneFraction: 0))
        // Left half black, right half white: half ink, the largest possible contrast, no midtones.
        let pixels = (0..<4).flatMap { _ in (0..<8).map { x in UInt8(x < 4 ? 0 : 255) } }
        let split = try LineArtMetrics(try Image(width: 8, height: 4, channels: 1, pixels: pixels))
        #expect(split == LineArtMetrics(inkCoverage: 0.5, rmsContrast: 0.5, midtoneFraction: 0))
        // Fully transparent black is white paper once composited.
        let clear = try Image(width: 2, height: 2, channels: 4, pixels: [UInt8](repeating: 0, count: 16))
        #expect(try LineArtMetrics(clear).inkCoverage == 0)
    }
}
