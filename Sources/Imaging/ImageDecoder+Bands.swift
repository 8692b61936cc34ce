// Decoding for a consumer that needs less than the whole image at full size (`inkwell prepare` shrinking
// an 8000×8000 scan to 512 px): the header first, so the consumer can plan from the size, then the pixels
// a band of rows at a time, at the smallest size the consumer allows, in the frame they are stored in
// (an EXIF turn is left to the consumer: `RowResizer(band:…)` resizes in the stored frame and turns the
// small result). Memory then follows the output rather than the source:
// - JPEG is decoded at 1/2, 1/4 or 1/8 by libjpeg's DCT scaling when the consumer needs at most that,
//   by the rule of Pillow's `Image.draft`, with the box `draft` returns (the decode's sides are rounded up);
// - a non-interlaced PNG is inflated, unfiltered and expanded a band at a time;
// - an interlaced (Adam7) PNG is inflated a band of each pass at a time into one uint8 image: every pass
//   spans all rows, so the whole image is needed, but never a second copy of it;
// - WebP is decoded whole into one uint8 buffer (libwebp's API writes the whole output; lossless WebP may
//   reference any earlier pixel, so libwebp also holds the image as 32-bit ARGB while it decodes).

/// What a file's header says, read without decoding the pixels.
public struct ImageHeader: Sendable, Equatable {
    public var format: ImageFormat
    /// The stored size.
    public var storedWidth: Int
    public var storedHeight: Int
    /// The EXIF orientation (1 when there is none).
    public var orientation: Int

    /// Orientations 5–8 swap the sides.
    public var turnsSideways: Bool { (5...8).contains(orientation) }
    /// The size once upright.
    public var width: Int { turnsSideways ? storedHeight : storedWidth }
    public var height: Int { turnsSideways ? storedWidth : storedHeight }
}

/// Rows `firstRow ..< firstRow + image.height` of a decoded image of `fullWidth`×`fullHeight`, as stored:
/// `orientation` is the EXIF turn still to apply, `box` the part of it that holds the file's pixels.
public struct ImageBand {
    public var image: Image
    public var firstRow: Int
    public var fullWidth: Int
    public var fullHeight: Int
    /// The EXIF orientation (1: already upright).
    public var orientation: Int = 1
    /// For a JPEG decoded at 1/s: (0, 0, W/s, H/s), Pillow's `draft` box; nil: the whole decode.
    public var box: ResizeBox?
}

extension RowResizer {
    /// A resizer for the bands of one decode, to an upright `width`×`height`: turned and boxed as the bands say.
    public convenience init(band: ImageBand, channels: Int, width: Int, height: Int, filter: ResampleFilter,
                            bandValues: Int = 1 << 21) throws {
        try self.init(sourceWidth: band.fullWidth, sourceHeight: band.fullHeight, channels: channels, width: width,
                      height: height, filter: filter, orientation: band.orientation, box: band.box, bandValues: bandValues)
    }
}

extension ImageDecoder {
    /// The format, size and orientation, checked against `maxPixels`, without decoding any pixels.
    public static func header(_ bytes: [UInt8], name: String = "<memory>", maxPixels: Int = defaultMaxPixels) throws -> ImageHeader {
        guard !bytes.isEmpty else { throw ImageError(file: name, reason: .empty) }
        guard let format = ImageFormat.detect(bytes) else {
            throw ImageError(file: name, reason: .unsupportedFormat(ImageFormat.describeUnsupported(bytes)))
        }
        return try bytes.withUnsafeBufferPointer { b in
            switch format {
            case .png:
                let png = try PNGDecoder.header(b, file: name, maxPixels: maxPixels)
                let orientation = png.exif.map { ExifOrientation.parse(Array(b[$0])) } ?? 1
                return ImageHeader(format: .png, storedWidth: png.header.width, storedHeight: png.header.height,
                                   orientation: orientation)
            case .jpeg:
                let (w, h) = try JPEGDecoder.header(b, file: name, maxPixels: maxPixels)
                return ImageHeader(format: .jpeg, storedWidth: w, storedHeight: h,
                                   orientation: JPEGDecoder.exifPayload(b).map(ExifOrientation.parse) ?? 1)
            case .webp:
                let (riff, w, h) = try WebPDecoder.header(b, file: name, maxPixels: maxPixels)
                let exif = WebPDecoder.chunk("EXIF", in: riff).map { ExifOrientation.parse(Array(riff[$0])) }
                return ImageHeader(format: .webp, storedWidth: w, storedHeight: h, orientation: exif ?? 1)
            }
        }
    }

    /// Decodes in bands of rows top to bottom, in the stored frame, for a consumer that will shrink the
    /// image to at least `needed` (upright width, height; nil: full size wanted). Every band reports the size
    /// of the decode it belongs to, which is smaller than the header's when JPEG DCT scaling was used: 1/s
    /// with s the largest of 8, 4, 2 that keeps both sides at least `needed` (Pillow's `draft`).
    /// Bands hold about `bandBytes` bytes of pixels (2 MB: as many samples as one piece of `RowResizer`'s
    /// float64 work, so a band is one piece; fewer, larger bands mean fewer small tensor operations).
    public static func decodeBands(_ bytes: [UInt8], name: String = "<memory>", maxPixels: Int = defaultMaxPixels,
                                   needed: (width: Int, height: Int)? = nil, bandBytes: Int = 1 << 21,
                                   _ body: (ImageBand) throws -> Void) throws {
        let header = try header(bytes, name: name, maxPixels: maxPixels)
        func rows(_ width: Int, _ channels: Int) -> Int { max(1, bandBytes / max(1, width * channels)) }
        if header.format == .png {
            try bytes.withUnsafeBufferPointer { b in
                let png = try PNGDecoder.header(b, file: name, maxPixels: maxPixels)
                let channels = PNGDecoder.outputChannels(png, b)
                let bandRows = rows(header.storedWidth, channels)
                try PNGDecoder.decodeRows(b, png: png, file: name, maxPixels: maxPixels, bandRows: bandRows) { band, first in
                    try body(ImageBand(image: band, firstRow: first, fullWidth: header.storedWidth,
                                       fullHeight: header.storedHeight, orientation: header.orientation))
                }
            }
            return
        }
        let image: Image
        var box: ResizeBox?
        if header.format == .jpeg, let needed {
            // In the stored frame: a sideways turn swaps what the consumer needs.
            let need = header.turnsSideways ? (width: needed.height, height: needed.width) : needed
            let s = JPEGDecoder.reduction(width: header.storedWidth, height: header.storedHeight, needed: need)
            image = try bytes.withUnsafeBufferPointer {
                try JPEGDecoder.decode($0, file: name, maxPixels: maxPixels, reduction: s)
            }
            if s > 1 {
                box = ResizeBox(x0: 0, y0: 0, x1: Double(header.storedWidth) / Double(s),
                                y1: Double(header.storedHeight) / Double(s))
            }
        } else {
            image = try decode(bytes, name: name, maxPixels: maxPixels, applyOrientation: false).image
        }
        let n = rows(image.width, image.channels), rowBytes = image.rowBytes
        for start in stride(from: 0, to: image.height, by: n) {
            let count = min(n, image.height - start)
            let band = n >= image.height ? image
                : Image(unchecked: image.width, count, image.channels,
                        Array(image.pixels[(start * rowBytes)..<((start + count) * rowBytes)]))
            try body(ImageBand(image: band, firstRow: start, fullWidth: image.width, fullHeight: image.height,
                               orientation: header.orientation, box: box))
        }
    }
}
