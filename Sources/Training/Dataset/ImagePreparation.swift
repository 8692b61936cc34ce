// One source image to one training image:
//
//   decode (upright by EXIF) → composite on white (line art is often drawn on transparency; dropping the
//   alpha would leave whatever colour the invisible pixels hold) → RGB → resize (Pillow-exact) →
//   optional clean-up → centre crop or white pad to the canvas.
//
// The filter is LANCZOS by default: it keeps thin strokes sharper than BICUBIC when shrinking, and its
// overshoot at ink/paper edges is mostly clipped away because ink and paper already sit at 0 and 255.
// BICUBIC (`--filter bicubic`) is the softer alternative. Both reproduce Pillow's `Image.resize` exactly.
import Foundation
import Imaging
import Torch

/// Why an image produced no output, for the report.
struct SkipReason: Error {
    let text: String
}

struct ImagePreparation {
    let settings: PrepareSettings
    let buckets: BucketSet?
    let cleanup = LineArtCleanup()

    init(settings: PrepareSettings) throws {
        self.settings = try settings.validated()
        buckets = settings.buckets ? try BucketSet(resolution: settings.resolution) : nil
    }

    /// The canvas and resize for a source of `width`×`height`, or a skip when it is too small.
    func plan(width: Int, height: Int) throws -> FramePlan {
        let canvas: BucketSize
        if let buckets {
            guard let bucket = buckets.bucket(width: width, height: height, fit: settings.fit, maxUpscale: settings.maxUpscale) else {
                throw SkipReason(text: "too small: \(width)×\(height) gives less than 64 pixels on a side when enlarged at most "
                                     + "\(Self.format(settings.maxUpscale))× (--max-upscale)")
            }
            canvas = bucket
        } else {
            canvas = BucketSize(width: settings.resolution, height: settings.resolution)
            let scale = FramePlan.scale(width: width, height: height, into: canvas, fit: settings.fit)
            guard scale <= settings.maxUpscale + 1e-9 else {
                throw SkipReason(text: "too small: \(width)×\(height) would be enlarged \(Self.format(scale))× to fill "
                                     + "\(canvas), over --max-upscale \(Self.format(settings.maxUpscale)) "
                                     + "(raise it, or use --buckets to train it at a smaller size)")
            }
        }
        return FramePlan(width: width, height: height, canvas: canvas, fit: settings.fit)
    }

    /// The source composited on white, as RGB: what the perceptual hash and the resize read.
    static func flatten(_ image: Image) throws -> Image {
        try image.flattened(background: 255).rgb()
    }

    /// The output image of a flattened RGB source.
    func prepare(_ flat: Image) throws -> (image: Image, plan: FramePlan) {
        let plan = try plan(width: flat.width, height: flat.height)
        return (try frame(try Self.resized(flat, to: plan.resized, filter: settings.resampleFilter), plan: plan), plan)
    }

    /// Clean-up and crop or pad of an image already resized to `plan.resized`.
    func frame(_ resized: Image, plan: FramePlan) throws -> Image {
        var image = resized
        if settings.clean { image = try cleanup.apply(image) }
        switch plan.fit {
        case .crop:
            image = try image.centerCropped(width: plan.canvas.width, height: plan.canvas.height)
        case .pad:
            image = try Self.padded(image, to: plan.canvas)
        }
        return image
    }

    /// Pillow's resize to `size` (`Image.resized` follows Pillow 13's pass order).
    static func resized(_ image: Image, to size: BucketSize, filter: ResampleFilter) throws -> Image {
        try image.resized(width: size.width, height: size.height, filter: filter)
    }

    /// The image centred on a white canvas, placed as `ImageOps.pad` places it:
    /// left = round((W − w) · 0.5), top = round((H − h) · 0.5), halves to even.
    static func padded(_ image: Image, to canvas: BucketSize) throws -> Image {
        if image.width == canvas.width && image.height == canvas.height { return image }
        let left = Int((Double(canvas.width - image.width) * 0.5).rounded(.toNearestOrEven))
        let top = Int((Double(canvas.height - image.height) * 0.5).rounded(.toNearestOrEven))
        let pads = [0, 0, left, canvas.width - image.width - left, top, canvas.height - image.height - top]
        return try Image(hwc: try image.hwcTensor().pad(pads, mode: .constant, value: 255))
    }

    static func format(_ x: Double) -> String {
        x == x.rounded() ? String(Int(x)) : String(format: "%.2f", x)
    }
}
