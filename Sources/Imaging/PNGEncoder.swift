// Writing PNG: libpng's simplified write API compresses the pixels (its errors come back as a return
// value and a message, never as a longjmp into Swift), then the text chunks are spliced in right after
// IHDR, before the image data, where Pillow and A1111 put them.
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
