// Decoding against Pillow: every file of the corpus must give Pillow's pixels
// (`ImageOps.exif_transpose(Image.open(p)).convert("RGBA")`), its alpha-ness and its format.
//
// Tolerance: 0 for every format. Measured with the system libjpeg-turbo 2.1.5 and libwebp 1.2.4
// against Pillow 13's bundled libjpeg-turbo 3.2.0 and libwebp 1.6.0: JPEG (baseline 4:2:0/4:2:2/4:4:4,
// progressive, restart markers, grey, CMYK) and lossy WebP agree bit for bit, so any difference is a bug
// or a codec change worth knowing about.
import Foundation
import Testing
import TestSupport
import Torch
@testable import Imaging

@Suite struct DecodeTests {
    func checkFormat(_ pillowFormat: String, _ format: ImageFormat) throws {
        let (pixels, catalog) = try Corpus.decoded()
        let entries = catalog.filter { $0.value.format == pillowFormat }
        #expect(entries.count >= 6, "the corpus has \(entries.count) \(pillowFormat) files")
        for (key, entry) in entries.sorted(by: { $0.key < $1.key }) {
            let (decoded, diff) = try Corpus.compare(key, entry, try pixels.get(key))
            #expect(diff == 0, "\(key) (\(entry.mode)): max difference from Pillow \(diff ?? -1)")
            #expect(decoded.image.hasAlpha == entry.alpha, "\(key) (\(entry.mode)): alpha \(decoded.image.hasAlpha)")
            #expect(decoded.format == format, "\(key): detected \(decoded.format)")
            // rgb() is Pillow's convert("RGB"), which the fixture script checked equals RGBA[..., :3].
            let rgb = try decoded.image.rgb().hwcTensor()
            try expectEqual(rgb, try pixels.get(key).narrow(dim: 2, start: 0, length: 3), "\(key) rgb()")
        }
    }

    @Test func pngMatchesPillowInEveryModeAndBitDepth() throws { try checkFormat("PNG", .png) }
    @Test func jpegMatchesPillow() throws { try checkFormat("JPEG", .jpeg) }
    @Test func webpMatchesPillow() throws { try checkFormat("WEBP", .webp) }

    @Test func exifOrientationIsReadAndApplied() throws {
        for n in 1...8 {
            let decoded = try ImageDecoder.read(try Corpus.url("jpg_orient\(n).jpg"))
            #expect(decoded.orientation == n)
            // The stored image is 37×23; orientations 5–8 swap the sides.
            #expect(decoded.image.width == (n >= 5 ? 23 : 37), "orientation \(n)")
        }
        #expect(try ImageDecoder.read(try Corpus.url("jpg_orient8_bigendian.jpg")).orientation == 8)
        #expect(try ImageDecoder.read(try Corpus.url("png_exif_orient6.png")).orientation == 6)
        #expect(try ImageDecoder.read(try Corpus.url("webp_lossless_orient8.webp")).orientation == 8)
        let stored = try ImageDecoder.read(try Corpus.url("jpg_orient6.jpg"), applyOrientation: false)
        #expect(stored.image.width == 37 && stored.image.height == 23)
        #expect(try stored.image.upright(orientation: 6) == Image.load(try Corpus.url("jpg_orient6.jpg")))
    }

    @Test func formatComesFromMagicBytesNotTheExtension() throws {
        let decoded = try ImageDecoder.read(try Corpus.url("png_named.jpg"))
        #expect(decoded.format == .png)
        #expect(ImageFormat.detect([0xFF, 0xD8, 0xFF, 0xE0]) == .jpeg)
        #expect(ImageFormat.detect(Array("RIFF\0\0\0\0WEBPVP8 ".utf8)) == .webp)
        #expect(ImageFormat.detect(Array("RIFF\0\0\0\0WAVEfmt ".utf8)) == nil)
    }

    @Test func malformedExifNeverCrashesAndMeansNoRotation() throws {
        #expect(ExifOrientation.parse([]) == 1)
        #expect(ExifOrientation.parse(Array("Exif\0\0".utf8)) == 1)
        // IFD offset past the end, an entry cut short, a count of 2, a value of 9.
        let header: [UInt8] = [0x49, 0x49, 0x2A, 0x00]
        #expect(ExifOrientation.parse(header + [0xFF, 0, 0, 0]) == 1)
        #expect(ExifOrientation.parse(header + [8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0]) == 1)
        #expect(ExifOrientation.parse(header + [8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 2, 0, 0, 0, 6, 0, 6, 0]) == 1)
        #expect(ExifOrientation.parse(header + [8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 9, 0, 0, 0]) == 1)
        #expect(ExifOrientation.parse(header + [8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]) == 6)
        var rng = SplitMix64(seed: 7)
        for _ in 0..<500 {
            let blob = header + (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            #expect((1...8).contains(ExifOrientation.parse(blob)))
        }
    }

    /// Random byte corruptions of valid files: each decode either succeeds or throws an ImageError
    /// naming the file; none may crash the process (libjpeg's fatal errors included).
    @Test(arguments: ["png_rgba8.png", "cpng_interlaced_rgba16.png", "jpg_progressive.jpg", "jpg_rgb420.jpg",
                      "webp_lossy_alpha.webp", "webp_lossless.webp"])
    func corruptedBytesThrowOrDecodeButNeverCrash(file: String) throws {
        let original = [UInt8](try Data(contentsOf: try Corpus.url(file)))
        var rng = SplitMix64(seed: UInt64(original.count))
        var failures = 0
        for trial in 0..<150 {
            var bytes = original
            for _ in 0...(trial % 4) {
                let at = 4 + Int(rng.next() % UInt64(bytes.count - 4))  // keep the magic bytes
                bytes[at] = UInt8(truncatingIfNeeded: rng.next())
            }
            if trial % 10 == 9 { bytes.removeLast(Int(rng.next() % UInt64(bytes.count / 2))) }
            do {
                let image = try ImageDecoder.decode(bytes, name: "fuzz-\(trial)").image
                #expect(image.pixels.count == image.width * image.height * image.channels)
            } catch let error as ImageError {
                failures += 1
                #expect(error.file == "fuzz-\(trial)")
            }
        }
        #expect(failures > 0, "\(file): no corruption was ever detected")
    }
}
