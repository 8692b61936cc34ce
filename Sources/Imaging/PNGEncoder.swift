// Writing PNG: libpng's simplified write API compresses the pixels (its errors come back as a return
// value and a message, never as a longjmp into Swift), then the text chunks are spliced in right after
// IHDR, before the image data, where Pillow and A1111 put them. Bilevel images (stencils) are written
// here chunk by chunk as 1-bit greyscale, which the simplified API cannot write.
import AtomicFile
import CImageCodecs
import Foundation

extension Image {
    /// The image as a PNG file: 8-bit grey, grey + alpha, RGB or RGBA, with `text` chunks (tEXt when the
    /// text is Latin-1, else iTXt, as Pillow's `PngInfo.add_text` writes them).
    public func pngData(text: [PNGTextChunk] = []) throws -> [UInt8] {
        let encodedText = try text.map { try $0.encoded() }
        var png = try libpngEncode()
        // libpng's output starts with the signature and a 13-byte IHDR: 8 + (4 + 4 + 13 + 4) bytes.
        let ihdrEnd = 33
        guard png.count > ihdrEnd, Array(png[12..<16]) == Array("IHDR".utf8) else {
            throw ImageError.invalid("libpng wrote no IHDR chunk first")
        }
        png.insert(contentsOf: encodedText.flatMap { PNGEncoder.chunk($0.type, $0.data) }, at: ihdrEnd)
        return png
    }

    /// A grey image as a 1-bit greyscale PNG (colour type 0, bit depth 1): samples below 128 become 0
    /// (black), the rest 1 (white). Rows are MSB-first and padded to whole bytes, each with filter type 0
    /// (none: on 1-bit line art the other filters gain nothing), deflated at level 9.
    public func bilevelPNGData(text: [PNGTextChunk] = [], density: PNGDensity? = nil) throws -> [UInt8] {
        guard channels == 1 else { throw ImageError.invalid("a 1-bit PNG needs a grey image, this one has \(channels) channels") }
        guard width <= Int(UInt32.max), height <= Int(UInt32.max) else {
            throw ImageError.invalid("\(width)×\(height) is too large for PNG")
        }
        let rowBytes = (width + 7) / 8
        var raw = [UInt8](repeating: 0, count: (rowBytes + 1) * height)
        pixels.withUnsafeBufferPointer { px in
            for y in 0..<height {
                let source = y * width, target = y * (rowBytes + 1) + 1
                for x in 0..<width where px[source + x] >= 128 {
                    raw[target + x >> 3] |= 0x80 >> UInt8(x & 7)
                }
            }
        }
        var header = PNGEncoder.bigEndian(UInt32(width)) + PNGEncoder.bigEndian(UInt32(height))
        header += [1, 0, 0, 0, 0]  // depth 1, grey, deflate, filter method 0, no interlace
        var png = PNGFile.signature + PNGEncoder.chunk("IHDR", header)
        if let density { png += PNGEncoder.chunk("pHYs", density.chunkData) }
        png += try text.flatMap { let c = try $0.encoded(); return PNGEncoder.chunk(c.type, c.data) }
        png += PNGEncoder.chunk("IDAT", try Zlib.deflate(raw))
        png += PNGEncoder.chunk("IEND", [])
        return png
    }

    /// Writes `bilevelPNGData` to `url` atomically.
    public func writeBilevelPNG(to url: URL, text: [PNGTextChunk] = [], density: PNGDensity? = nil) throws {
        try writeAtomically(Data(try bilevelPNGData(text: text, density: density)), to: url)
    }

    /// Writes the PNG to `url` atomically, so that an interrupted write never leaves half a file under
    /// the final name.
    public func writePNG(to url: URL, text: [PNGTextChunk] = []) throws {
        try writeAtomically(Data(try pngData(text: text)), to: url)
    }

    private func libpngEncode() throws -> [UInt8] {
        guard width <= Int(Int32.max) / channels, height <= Int(UInt32.max) else {
            throw ImageError.invalid("\(width)×\(height) is too large for PNG")
        }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        switch channels {
        case 1: image.format = UInt32(PNG_FORMAT_GRAY)
        case 2: image.format = UInt32(PNG_FORMAT_FLAG_ALPHA)
        case 3: image.format = UInt32(PNG_FORMAT_FLAG_COLOR)
        default: image.format = UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)
        }
        // A first guess that fits unless the data is incompressible; libpng reports the size it needs.
        var capacity = pixels.count + pixels.count / 64 + height + 4096
        for _ in 0..<2 {
            var output = [UInt8](repeating: 0, count: capacity)
            var size = png_alloc_size_t(capacity)
            let ok = output.withUnsafeMutableBytes { out in
                pixels.withUnsafeBytes { px in
                    png_image_write_to_memory(&image, out.baseAddress, &size, 0, px.baseAddress, 0, nil)
                }
            }
            if ok != 0 {
                output.removeSubrange(Int(size)...)
                return output
            }
            if Int(size) > capacity {
                capacity = Int(size)
                image.warning_or_error = 0
                continue
            }
            break
        }
        let message = withUnsafeBytes(of: image.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        throw ImageError.invalid("libpng could not write the image: \(message)")
    }
}

enum PNGEncoder {
    /// length, type, data, CRC-32 of type + data.
    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typeAndData = Array(type.utf8) + data
        let crc = typeAndData.withUnsafeBufferPointer { Zlib.crc32($0) }
        return bigEndian(UInt32(data.count)) + typeAndData + bigEndian(crc)
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }
}
