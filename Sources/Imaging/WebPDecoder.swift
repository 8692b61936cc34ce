// WebP as Pillow reads it (libwebp's animation decoder: the first frame composited on the canvas, RGBA
// unpremultiplied, alpha dropped when the file declares none). A still image is that same first frame
// decoded straight into the one buffer returned, RGB when it has no alpha: the animation decoder would
// hold two canvas-sized RGBA copies besides (8000×8000: 512 MB more). libwebp reports errors by return
// value, so nothing here can escape past Swift frames.
import CImageCodecs

enum WebPDecoder {
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, file: String, maxPixels: Int) throws -> (Image, exif: Range<Int>?) {
        func corrupt(_ why: String) -> ImageError { ImageError(file: file, reason: .corrupt(why)) }
        let (riff, _, _) = try header(bytes, file: file, maxPixels: maxPixels)

        var features = WebPBitstreamFeatures()
        let status = WebPGetFeatures(riff.baseAddress, riff.count, &features)
        guard status == VP8_STATUS_OK else {
            if status == VP8_STATUS_NOT_ENOUGH_DATA { throw ImageError(file: file, reason: .truncated("libwebp needs more data")) }
            throw corrupt("libwebp cannot read the header (status \(status.rawValue))")
        }

        if features.has_animation == 0 {
            return (try decodeStill(riff, width: Int(features.width), height: Int(features.height),
                                    alpha: features.has_alpha != 0, file: file, maxPixels: maxPixels), chunk("EXIF", in: riff))
        }

        var options = WebPAnimDecoderOptions()
        guard WebPAnimDecoderOptionsInit(&options) != 0 else { throw corrupt("libwebp version mismatch") }
        options.color_mode = MODE_RGBA  // unpremultiplied, like Pillow
        options.use_threads = 0
        var data = WebPData(bytes: riff.baseAddress, size: riff.count)
        guard let decoder = WebPAnimDecoderNew(&data, &options) else { throw corrupt("libwebp cannot parse the file") }
        defer { WebPAnimDecoderDelete(decoder) }
        var info = WebPAnimInfo()
        guard WebPAnimDecoderGetInfo(decoder, &info) != 0 else { throw corrupt("libwebp gives no canvas") }
        let w = Int(info.canvas_width), h = Int(info.canvas_height)
        guard w > 0, h > 0, w * h <= maxPixels else {
            throw ImageError(file: file, reason: .tooLarge(width: w, height: h, limit: maxPixels))
        }
        var frame: UnsafeMutablePointer<UInt8>?
        var timestamp: Int32 = 0
        guard WebPAnimDecoderGetNext(decoder, &frame, &timestamp) != 0, let frame else {
            throw corrupt("libwebp cannot decode the first frame")
        }
        let rgba = [UInt8](UnsafeBufferPointer(start: frame, count: w * h * 4))
        var image = Image(unchecked: w, h, 4, rgba)
        if features.has_alpha == 0 { image = try image.rgb() }
        return (image, chunk("EXIF", in: riff))
    }

    /// A still image into one uint8 buffer of its final size: for a key frame covering the canvas, the
    /// animation decoder writes exactly this decode (RGBA, unpremultiplied); without alpha, RGB is the same
    /// conversion without the fourth byte.
    static func decodeStill(_ riff: UnsafeBufferPointer<UInt8>, width w: Int, height h: Int, alpha: Bool,
                            file: String, maxPixels: Int) throws -> Image {
        guard w > 0, h > 0, w * h <= maxPixels else {
            throw ImageError(file: file, reason: .tooLarge(width: w, height: h, limit: maxPixels))
        }
        var config = WebPDecoderConfig()
        guard WebPInitDecoderConfig(&config) != 0 else {
            throw ImageError(file: file, reason: .corrupt("libwebp version mismatch"))
        }
        let channels = alpha ? 4 : 3
        var status = VP8_STATUS_OK
        let pixels = [UInt8](unsafeUninitializedCapacity: w * h * channels) { buffer, initialized in
            config.output.colorspace = alpha ? MODE_RGBA : MODE_RGB
            config.output.is_external_memory = 1
            config.output.u.RGBA.rgba = buffer.baseAddress
            config.output.u.RGBA.stride = Int32(w * channels)
            config.output.u.RGBA.size = buffer.count
            config.options.use_threads = 0
            status = WebPDecode(riff.baseAddress, riff.count, &config)
            WebPFreeDecBuffer(&config.output)
            initialized = status == VP8_STATUS_OK ? buffer.count : 0
        }
        guard status == VP8_STATUS_OK else {
            if status == VP8_STATUS_NOT_ENOUGH_DATA { throw ImageError(file: file, reason: .truncated("libwebp needs more data")) }
            throw ImageError(file: file, reason: .corrupt("libwebp cannot decode the image (status \(status.rawValue))"))
        }
        return Image(unchecked: w, h, channels, pixels)
    }

    /// The RIFF container and the canvas size from the first chunk's header, checked against `maxPixels`
    /// before libwebp allocates anything.
    static func header(_ bytes: UnsafeBufferPointer<UInt8>, file: String, maxPixels: Int)
        throws -> (riff: UnsafeBufferPointer<UInt8>, width: Int, height: Int) {
        guard bytes.count >= 16 else { throw ImageError(file: file, reason: .truncated("\(bytes.count)-byte RIFF header")) }
        let riffSize = Int(readLE32(bytes, 4))
        guard riffSize + 8 <= bytes.count else {
            throw ImageError(file: file, reason: .truncated("RIFF says \(riffSize + 8) bytes, the file has \(bytes.count)"))
        }
        let riff = UnsafeBufferPointer(rebasing: bytes[0..<(riffSize + 8)])
        guard let (width, height) = headerSize(riff) else {
            throw ImageError(file: file, reason: .corrupt("no VP8, VP8L or VP8X header"))
        }
        let (pixelCount, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixelCount <= maxPixels else {
            throw ImageError(file: file, reason: .tooLarge(width: width, height: height, limit: maxPixels))
        }
        return (riff, width, height)
    }

    /// Width and height from the first chunk, read as Pillow's `_get_size` reads them.
    static func headerSize(_ b: UnsafeBufferPointer<UInt8>) -> (Int, Int)? {
        guard b.count >= 30 else { return nil }
        switch fourCC(b, 12) {
        case "VP8 ":
            guard b[23] == 0x9D, b[24] == 0x01, b[25] == 0x2A else { return nil }
            return (Int(readLE16(b, 26) & 0x3FFF), Int(readLE16(b, 28) & 0x3FFF))
        case "VP8X":
            return (readLE24(b, 24) + 1, readLE24(b, 27) + 1)
        case "VP8L":
            guard b[20] == 0x2F else { return nil }
            let bits = readLE32(b, 21)
            return (Int(bits & 0x3FFF) + 1, Int((bits >> 14) & 0x3FFF) + 1)
        default:
            return nil
        }
    }

    /// The payload of the first chunk named `name` at the top level of the RIFF container.
    static func chunk(_ name: String, in b: UnsafeBufferPointer<UInt8>) -> Range<Int>? {
        var offset = 12
        while b.count - offset >= 8 {
            let size = Int(readLE32(b, offset + 4))
            let start = offset + 8
            guard size <= b.count - start else { return nil }
            if fourCC(b, offset) == name { return start..<(start + size) }
            offset = start + size + (size & 1)
        }
        return nil
    }

    static func fourCC(_ b: UnsafeBufferPointer<UInt8>, _ offset: Int) -> String {
        String(decoding: b[offset..<(offset + 4)], as: UTF8.self)
    }
}

@inline(__always)
func readLE16(_ b: UnsafeBufferPointer<UInt8>, _ offset: Int) -> UInt32 {
    UInt32(b[offset]) | UInt32(b[offset + 1]) << 8
}

@inline(__always)
func readLE24(_ b: UnsafeBufferPointer<UInt8>, _ offset: Int) -> Int {
    Int(b[offset]) | Int(b[offset + 1]) << 8 | Int(b[offset + 2]) << 16
}

@inline(__always)
func readLE32(_ b: UnsafeBufferPointer<UInt8>, _ offset: Int) -> UInt32 {
    UInt32(b[offset]) | UInt32(b[offset + 1]) << 8 | UInt32(b[offset + 2]) << 16 | UInt32(b[offset + 3]) << 24
}
