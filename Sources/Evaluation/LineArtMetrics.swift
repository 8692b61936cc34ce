// Simple image statistics for tattoo line art (no reference library: defined here, checked against numpy in
// reference/fixtures/clip_model.py). Clean line art is mostly white paper with a little solid ink: low ink
// coverage, high contrast, few midtones.
import Imaging
import Torch

/// Statistics of an image's luma Y (Pillow's "L" of the image composited on white, 0…255).
public struct LineArtMetrics: Equatable, Sendable {
    /// Fraction of pixels with Y < `inkThreshold` (default 128): how much of the image is ink.
    public let inkCoverage: Double
    /// RMS contrast: the population standard deviation of Y / 255 (0 for a flat image, 0.5 at most,
    /// reached by an even split of pure black and pure white).
    public let rmsContrast: Double
    /// Fraction of pixels with 64 ≤ Y < 192: grey shading and anti-aliasing rather than ink or paper.
    public let midtoneFraction: Double

    public init(inkCoverage: Double, rmsContrast: Double, midtoneFraction: Double) {
        self.inkCoverage = inkCoverage
        self.rmsContrast = rmsContrast
        self.midtoneFraction = midtoneFraction
    }

    /// Measures `image` (any channel count; alpha is composited on white first).
    public init(_ image: Image, inkThreshold: Double = 128) throws {
        let y = try LineArtMetrics.luma(image)
        inkCoverage = try y.lt(inkThreshold).to(.float64).mean().item()
        rmsContrast = try (y / 255).variance(correction: 0).sqrt().item()
        midtoneFraction = try y.ge(64).logicalAnd(y.lt(192)).to(.float64).mean().item()
    }

    /// The fraction of pixels darker than `threshold` alone.
    public static func inkCoverage(_ image: Image, threshold: Double = 128) throws -> Double {
        try luma(image).lt(threshold).to(.float64).mean().item()
    }

    /// Y as a float64 [H, W] tensor.
    static func luma(_ image: Image) throws -> Tensor {
        guard image.width > 0, image.height > 0 else { throw CLIPModelError.invalidInput("empty image") }
        let grey = try image.flattened(background: 255).gray()
        return try grey.hwcTensor().to(.float64).squeeze(2)
    }
}
