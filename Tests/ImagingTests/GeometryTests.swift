// Resize, crop, pad, compositing and grey conversion against Pillow's own outputs.
// Tolerance: exact. The brief allowed ±2 levels for resizing through libtorch's antialiased bicubic;
// Resampling.swift reproduces Pillow's fixed-point resampler instead, so every filter matches exactly.
import Foundation
import Testing
import TestSupport
import Torch
@testable import Imaging

struct ResizeCase: Decodable {
    let source: String
    let filter: String
    let width: Int
    let height: Int
    let key: String
}

struct CropCase: Decodable {
    let width: Int
    let height: Int
    let key: String
}

@Suite struct GeometryTests {
    func fixtures() throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        try Safetensors.load(try Fixtures.url("images", "geometry.safetensors"))
    }

    func image(_ t: Tensor) throws -> Image { try Image(hwc: t) }

    @Test func resizeMatchesPillowForEveryFilterModeAndDirection() throws {
        let (f, metadata) = try fixtures()
        let cases = try JSONDecoder().decode([ResizeCase].self, from: Data((metadata["resize"] ?? "[]").utf8))
        #expect(cases.count >= 50)
        for c in cases {
            let filter = try #require(ResampleFilter(rawValue: c.filter))
            let resized = try image(try f.get(c.source)).resized(width: c.width, height: c.height, filter: filter)
            try expectEqual(try resized.hwcTensor(), try image(try f.get(c.key)).hwcTensor(), c.key)
        }
    }

    /// The first pass runs in bands so that a large source never becomes one float64 copy (an 8000×8000 PNG
    /// took prepare to 4.9 GB): bands of one row or column give the very pixels of a single band.
    @Test func bandedResizeGivesTheSamePixels() throws {
        var rng = SystemRandomNumberGenerator()
        for channels in [1, 3, 4] {
            let (w, h) = (97, 61)
            let image = try Image(width: w, height: h, channels: channels,
                                  pixels: (0..<(w * h * channels)).map { _ in UInt8.random(in: 0...255, using: &rng) })
            // Horizontal first, vertical first (rows lost > 2 × columns lost), and upscaling.
            for (tw, th) in [(40, 50), (90, 20), (130, 75)] {
                let whole = try image.resized(width: tw, height: th, filter: .lanczos, bandValues: 1 << 30)
                let banded = try image.resized(width: tw, height: th, filter: .lanczos, bandValues: 1)
                #expect(whole == banded, "\(channels) channels to \(tw)×\(th)")
            }
        }
        // Grey conversion and flattening run in row bands too: Pillow's formulas pixel by pixel.
        let (w, h) = (700, 700)
        let rgba = try Image(width: w, height: h, channels: 4,
                             pixels: (0..<(w * h * 4)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        let grey = try rgba.gray().pixels, flat = try rgba.flattened(background: 255).pixels
        for i in stride(from: 0, to: w * h, by: 997) {
            let p = rgba.pixels[(i * 4)..<(i * 4 + 4)].map(Int.init)
            #expect(Int(grey[i]) == (19595 * p[0] + 38470 * p[1] + 7471 * p[2] + 32768) >> 16)
            let t = p[0] * p[3] + (255 - p[3]) * 255 + 128
            #expect(Int(flat[i * 3]) == ((t >> 8) + t) >> 8)
        }
    }

    @Test func shortSideResizeIsTorchvisionsRule() throws {
        let (f, _) = try fixtures()
        let resized = try image(try f.get("src_big")).resized(shortSide: 64)
        #expect(resized.width == 96 && resized.height == 64)
        try expectEqual(try resized.hwcTensor(), try f.get("short_side_64"), "short side 64")
    }

    @Test func centerCropAndPadMatchThePythonPlacements() throws {
        let (f, metadata) = try fixtures()
        let rgb = try image(try f.get("src_rgb"))
        let crops = try JSONDecoder().decode([CropCase].self, from: Data((metadata["crop"] ?? "[]").utf8))
        #expect(crops.count == 4)
        for crop in crops {
            let cropped = try rgb.centerCropped(width: crop.width, height: crop.height)
            try expectEqual(try cropped.hwcTensor(), try f.get(crop.key), crop.key)
        }
        try expectEqual(try rgb.paddedToSquare().hwcTensor(), try f.get("pad_rgb"), "pad wide")
        try expectEqual(try image(try f.get("src_tall")).paddedToSquare().hwcTensor(), try f.get("pad_tall"), "pad tall")
        let l = try image(try f.get("src_l").unsqueeze(2))
        try expectEqual(try l.paddedToSquare().hwcTensor(), try f.get("pad_l").unsqueeze(2), "pad grey")
        #expect(throws: ImageError.self) { try rgb.centerCropped(width: 38, height: 10) }
        #expect(throws: ImageError.self) { try rgb.cropped(x: 30, y: 0, width: 8, height: 1) }
    }

    @Test func flatteningOntoWhiteAndGreyMatchPillow() throws {
        let (f, _) = try fixtures()
        let rgba = try image(try f.get("src_rgba"))
        let flat = try rgba.flattened()
        #expect(flat.channels == 3)
        try expectEqual(try flat.hwcTensor(), try f.get("flatten_rgba"), "RGBA on white")
        let la = try image(try f.get("src_la"))
        try expectEqual(try la.flattened().hwcTensor(), try f.get("flatten_la").unsqueeze(2), "LA on white")
        try expectEqual(try image(try f.get("src_rgb")).gray().hwcTensor(), try f.get("gray_from_rgb").unsqueeze(2), "RGB to L")
        // Fully transparent pixels become the background, opaque ones keep their colour.
        let mixed = try Image(width: 2, height: 1, channels: 4, pixels: [10, 20, 30, 0, 10, 20, 30, 255])
        #expect(try mixed.flattened().pixels == [255, 255, 255, 10, 20, 30])
        #expect(try mixed.flattened(background: 0).pixels == [0, 0, 0, 10, 20, 30])
    }
}
