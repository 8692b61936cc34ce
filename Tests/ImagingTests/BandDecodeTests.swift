// Decoding in bands and at reduced size (issue 17): a PNG's row stream gives exactly the whole decode for
// every mode, bit depth, interlacing and band size; `RowResizer` fed any band size gives Pillow's resize
// exactly (both pass orders); JPEG DCT scaling picks Pillow's `draft` scale and gives its pixels
// (reference/fixtures/decode_draft.py). Tolerance: 0 for the decode (the same libjpeg-turbo scaled IDCT
// as Pillow's bundled one, measured identical), ±2 after the resize (prepare's parity bound). Bands come as
// stored: EXIF-turned PNGs resized in the stored frame and reduced JPEGs resized over draft's box give
// Pillow's upright resize exactly, all 8 orientations (reference/fixtures/decode_bands.py).
import Foundation
import Testing
import TestSupport
import Torch
@testable import Imaging

@Suite struct BandDecodeTests {
    struct DraftCase: Decodable {
        let file: String
        let width: Int
        let height: Int
        let scale: Int
        let decoded: [Int]
    }

    /// The bands of `url` put back together and turned upright, checking that they arrive in order and
    /// cover the image.
    static func joined(_ url: URL, needed: (width: Int, height: Int)? = nil, bandBytes: Int = 1 << 20) throws -> Image {
        let bytes = [UInt8](try Data(contentsOf: url))
        var pixels: [UInt8] = []
        var size: (width: Int, height: Int, channels: Int)?
        var nextRow = 0, orientation = 1
        try ImageDecoder.decodeBands(bytes, name: url.lastPathComponent, needed: needed, bandBytes: bandBytes) { band in
            #expect(band.firstRow == nextRow, "\(url.lastPathComponent): bands in order")
            nextRow += band.image.height
            size = (band.fullWidth, band.fullHeight, band.image.channels)
            orientation = band.orientation
            pixels += band.image.pixels
        }
        let whole = try #require(size)
        #expect(nextRow == whole.height, "\(url.lastPathComponent): every row")
        return try Image(width: whole.width, height: whole.height, channels: whole.channels, pixels: pixels)
            .upright(orientation: orientation)
    }

    /// `url` decoded in bands of about `bandBytes` straight into a `RowResizer` for an upright `width`×`height`,
    /// as `inkwell prepare` runs it; also the first band, for what it says about the decode.
    static func resizedInBands(_ url: URL, width: Int, height: Int, needed: (width: Int, height: Int)? = nil,
                               bandBytes: Int = 1 << 20, bandValues: Int = 1 << 21) throws -> (Image, ImageBand) {
        var resizer: RowResizer?
        var first: ImageBand?
        try ImageDecoder.decodeBands([UInt8](try Data(contentsOf: url)), name: url.lastPathComponent, needed: needed,
                                     bandBytes: bandBytes) { band in
            if resizer == nil {
                first = band
                resizer = try RowResizer(band: band, channels: band.image.channels, width: width, height: height,
                                         filter: .lanczos, bandValues: bandValues)
            }
            try resizer?.append(try band.image.hwcTensor())
        }
        return (try #require(resizer).finish(), try #require(first))
    }

    static func meanDifference(_ a: Image, _ b: Image) -> Double {
        Double(zip(a.pixels, b.pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(a.pixels.count)
    }

    static func maxDifference(_ a: Image, _ b: Image) -> Int? {
        guard a.width == b.width, a.height == b.height, a.channels == b.channels else { return nil }
        return zip(a.pixels, b.pixels).reduce(0) { max($0, abs(Int($1.0) - Int($1.1))) }
    }

    @Test func pngRowsGiveTheWholeDecodeForEveryModeAndBandSize() throws {
        let (_, catalog) = try Corpus.decoded()
        let pngs = Set(catalog.values.filter { $0.format == "PNG" }.map(\.file)).sorted()
        #expect(pngs.count >= 20)
        #expect(pngs.contains { $0.contains("interlaced") } && pngs.contains("cpng_multi_idat.png"))
        for file in pngs {
            let whole = try Image.load(try Corpus.url(file))  // Pillow's pixels: DecodeTests
            for bandBytes in [1, 7 * whole.rowBytes, 1 << 20] {  // a row per band, 7 rows, the whole image
                let banded = try Self.joined(try Corpus.url(file), bandBytes: bandBytes)
                #expect(banded == whole, "\(file) in bands of \(bandBytes) bytes")
            }
        }
    }

    @Test func brokenPNGsFailInBandsAsTheyDoWhole() throws {
        let broken = try Corpus.broken().filter { $0.file.hasSuffix(".png") }
        #expect(broken.count >= 4)
        for entry in broken {
            let bytes = [UInt8](try Data(contentsOf: try Corpus.url(entry.file)))
            let whole = #expect(throws: ImageError.self) { try ImageDecoder.decode(bytes, name: entry.file) }
            let banded = #expect(throws: ImageError.self) {
                try ImageDecoder.decodeBands(bytes, name: entry.file, bandBytes: 1) { _ in }
            }
            #expect(banded == whole, "\(entry.file)")
        }
    }

    @Test func rowResizerMatchesPillowForAnyBandSize() throws {
        // Pillow's resizes of one source (reference/fixtures/prepare.py), both pass orders, five filters.
        let source = try Image.load(try Fixtures.url("prepare", "expected/resize/source.png"))
        struct Resize: Decodable { let filter: String; let width: Int; let height: Int; let key: String }
        struct Expected: Decodable { let resizes: [Resize] }
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: try Fixtures.url("prepare", "expected.json")))
        #expect(expected.resizes.count >= 20)
        let pixels = try source.hwcTensor()
        for c in expected.resizes {
            let filter = try #require(ResampleFilter(rawValue: c.filter))
            let reference = try Image.load(try Fixtures.url("prepare", "expected/resize/\(c.key).png"))
            for rows in [1, 5, source.height] {
                // A small bandValues splits the work further: rows and columns in pieces.
                for bandValues in [64, 1 << 21] {
                    let resizer = try RowResizer(sourceWidth: source.width, sourceHeight: source.height, channels: source.channels,
                                                 width: c.width, height: c.height, filter: filter, bandValues: bandValues)
                    for start in stride(from: 0, to: source.height, by: rows) {
                        try resizer.append(try pixels.narrow(dim: 0, start: start, length: min(rows, source.height - start)))
                    }
                    #expect(Self.maxDifference(try resizer.finish(), reference) == 0,
                            "\(c.key): \(rows)-row bands, bandValues \(bandValues)")
                }
            }
        }
    }

    @Test func rowResizerKeepsAlphaPremultipliedAsPillow() throws {
        // RGBA and LA through the band path equal the whole-image path, which GeometryTests holds to Pillow.
        let (pixels, _) = try Corpus.decoded()
        let rgba = try Image(hwc: try pixels.get("png_rgba8"))
        let greyAlpha = try Image.load(try Corpus.url("png_gray_alpha8.png"))
        #expect(greyAlpha.channels == 2)
        for (image, size) in [(rgba, (9, 40)), (rgba, (30, 7)), (greyAlpha, (13, 13))] {
            let whole = try image.resized(width: size.0, height: size.1, filter: .lanczos)
            let resizer = try RowResizer(sourceWidth: image.width, sourceHeight: image.height, channels: image.channels,
                                         width: size.0, height: size.1, filter: .lanczos, bandValues: 50)
            let t = try image.hwcTensor()
            for start in 0..<image.height { try resizer.append(try t.narrow(dim: 0, start: start, length: 1)) }
            #expect(try resizer.finish() == whole, "\(size)")
        }
    }

    @Test func rowResizerRefusesBandsThatDoNotFit() throws {
        let resizer = try RowResizer(sourceWidth: 10, sourceHeight: 4, channels: 3, width: 5, height: 2, filter: .bicubic)
        #expect(throws: ImageError.self) { try resizer.append(try Tensor.zeros([2, 9, 3], dtype: .uint8)) }
        #expect(throws: ImageError.self) { try resizer.append(try Tensor.zeros([5, 10, 3], dtype: .uint8)) }
        try resizer.append(try Tensor.zeros([3, 10, 3], dtype: .uint8))
        #expect(throws: ImageError.self) { try resizer.finish() }  // a row short
    }

    @Test func jpegDraftMatchesPillow() throws {
        let cases = try JSONDecoder().decode([String: DraftCase].self,
                                             from: Data(contentsOf: try Fixtures.url("decode_draft", "draft/expected.json")))
        #expect(Set(cases.values.map(\.scale)) == [1, 2, 4, 8])
        for (key, c) in cases.sorted(by: { $0.key < $1.key }) {
            let url = try Fixtures.url("decode_draft", "draft/\(c.file)")
            let decoded = try Self.joined(url, needed: (c.width, c.height))
            #expect([decoded.width, decoded.height] == c.decoded, "\(key): decoded size (scale \(c.scale))")
            let pillowDecoded = try Image.load(try Fixtures.url("decode_draft", "draft/\(key)_decoded.png"))
            #expect(Self.maxDifference(decoded, pillowDecoded) == 0, "\(key): reduced decode")
            let resized = try decoded.resized(width: c.width, height: c.height, filter: .lanczos)
            let pillowResized = try Image.load(try Fixtures.url("decode_draft", "draft/\(key)_resized.png"))
            let difference = Self.maxDifference(resized, pillowResized)
            #expect((difference ?? Int.max) <= 2, "\(key): draft + resize, max difference \(String(describing: difference))")
            if c.scale == 1 {  // not reduced: exactly today's full-size decode
                #expect(decoded == (try Image.load(url)), "\(key): full-size decode unchanged")
            }
        }
    }

    @Test func exifTurnedPNGsResizeInTheStoredFrameAsPillowDoesUpright() throws {
        // reference/fixtures/decode_bands.py: Pillow's exif_transpose, then resize, for all 8 orientations and
        // targets on both sides of the pass-order rule; here the bands stay as stored and only the result turns.
        struct Case: Decodable { let file: String; let orientation: Int; let width: Int; let height: Int; let key: String
                                 let verticalFirst: Bool }
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: try Fixtures.url("decode_bands", "orient/expected.json")))
        #expect(Set(cases.map(\.orientation)) == Set(1...8))
        #expect(Set(cases.filter { $0.orientation >= 5 }.map(\.verticalFirst)) == [true, false])
        for c in cases {
            let url = try Fixtures.url("decode_bands", "orient/\(c.file)")
            let reference = try Image.load(try Fixtures.url("decode_bands", "orient/\(c.key).png"))
            // Bands of one row and of the whole image; float64 work in small pieces and in one.
            for (bandBytes, bandValues) in [(1, 96), (1 << 20, 1 << 21)] {
                let (resized, band) = try Self.resizedInBands(url, width: c.width, height: c.height, bandBytes: bandBytes,
                                                             bandValues: bandValues)
                #expect(band.orientation == c.orientation && band.fullWidth == 203 && band.fullHeight == 131,
                        "\(c.key): bands as stored")
                #expect(Self.maxDifference(resized, reference) == 0,
                        "\(c.key): \(bandBytes)-byte bands, max difference \(String(describing: Self.maxDifference(resized, reference)))")
            }
        }
    }

    @Test func reducedJPEGsResizeOverPillowsDraftBox() throws {
        // Pillow's draft returns the box (0, 0, W/s, H/s) of its rounded-up reduced decode, which
        // `Image.thumbnail` passes to resize; prepare does the same (reference/fixtures/decode_bands.py).
        struct Difference: Decodable { let max: Int; let mean: Double }
        struct ToFull: Decodable { let withoutBox: Difference; let withBox: Difference }
        struct Case: Decodable { let file: String; let width: Int; let height: Int; let scale: Int; let orientation: Int
                                 let decoded: [Int]; let toFull: ToFull }
        let cases = try JSONDecoder().decode([String: Case].self,
                                             from: Data(contentsOf: try Fixtures.url("decode_bands", "draftbox/expected.json")))
        #expect(Set(cases.values.map(\.scale)) == [1, 2, 4, 8] && Set(cases.values.map(\.orientation)) == Set(1...8))
        for (key, c) in cases.sorted(by: { $0.key < $1.key }) {
            let url = try Fixtures.url("decode_bands", "draftbox/\(c.file)")
            let (resized, band) = try Self.resizedInBands(url, width: c.width, height: c.height, needed: (c.width, c.height))
            let stored = c.orientation >= 5 ? [c.decoded[1], c.decoded[0]] : c.decoded
            #expect([band.fullWidth, band.fullHeight] == stored, "\(key): the reduced decode's size")
            let header = try ImageDecoder.header([UInt8](try Data(contentsOf: url)))
            let s = Double(c.scale)
            #expect(band.box == (c.scale == 1 ? nil : ResizeBox(x0: 0, y0: 0, x1: Double(header.storedWidth) / s,
                                                                y1: Double(header.storedHeight) / s)), "\(key): draft's box")
            let pillow = try Image.load(try Fixtures.url("decode_bands", "draftbox/\(key)_boxed.png"))
            #expect(Self.maxDifference(resized, pillow) == 0,
                    "\(key): max difference to Pillow's draft + boxed resize \(String(describing: Self.maxDifference(resized, pillow)))")
            // The box brings the reduced result closer to a full decode + resize (measured on Pillow's side too).
            let full = try Image.load(try Fixtures.url("decode_bands", "draftbox/\(key)_full.png"))
            let mean = Self.meanDifference(resized, full)
            print(String(format: "\(key) (1/\(c.scale)): to the full decode max %d mean %.3f (Pillow without the box: max %d mean %.3f)",
                         Self.maxDifference(resized, full) ?? -1, mean, c.toFull.withoutBox.max, c.toFull.withoutBox.mean))
            if c.scale > 1 { #expect(mean < c.toFull.withoutBox.mean, "\(key): the box brings it closer to the full decode") }
        }
    }

    @Test func headerReadsSizeAndOrientationWithoutDecoding() throws {
        let bomb = [UInt8](try Data(contentsOf: try Corpus.url("bomb.png")))
        #expect(throws: ImageError.self) { try ImageDecoder.header(bomb, name: "bomb.png") }
        for n in [1, 6, 8] {
            let header = try ImageDecoder.header([UInt8](try Data(contentsOf: try Corpus.url("jpg_orient\(n).jpg"))))
            #expect(header.format == .jpeg && header.orientation == n)
            #expect(header.storedWidth == 37 && header.storedHeight == 23)
            let upright: [Int] = n >= 5 ? [23, 37] : [37, 23]
            #expect([header.width, header.height] == upright)
        }
        let png = try ImageDecoder.header([UInt8](try Data(contentsOf: try Corpus.url("png_exif_orient6.png"))))
        #expect(png.format == .png && png.orientation == 6)
        let webp = try ImageDecoder.header([UInt8](try Data(contentsOf: try Corpus.url("webp_lossless_orient8.webp"))))
        let decodedWebP = try ImageDecoder.read(try Corpus.url("webp_lossless_orient8.webp"))
        #expect(webp.orientation == 8)
        #expect(webp.width == decodedWebP.image.width && webp.height == decodedWebP.image.height)
    }
}
