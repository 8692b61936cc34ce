// JPEG through the system libjpeg-turbo, set up as Pillow sets it up (default islow IDCT and fancy
// upsampling; CMYK read with Adobe's inverted polarity, as Pillow assumes for every CMYK JPEG). The decode
// itself runs in C (Sources/CJPEG), where libjpeg's error exits can longjmp without crossing Swift frames.
import CJPEG
import Foundation
import Torch

enum JPEGDecoder {
    /// Pillow's `draft` rule for a consumer that needs at least `needed` (width, height): the largest of
    /// 8, 4, 2, 1 that is at most min(W // w, H // h). The decode is then ⌈W / s⌉ × ⌈H / s⌉.
    static func reduction(width: Int, height: Int, needed: (width: Int, height: Int)) -> Int {
        guard needed.width > 0, needed.height > 0 else { return 1 }
        let scale = min(width / needed.width, height / needed.height)
        return [8, 4, 2, 1].first { scale >= $0 } ?? 1
    }

    /// The frame's width, height and component count, from the header alone.
    static func header(_ bytes: UnsafeBufferPointer<UInt8>, file: String, maxPixels: Int) throws -> (width: Int, height: Int) {
        let (_, width, height) = try run(bytes, file: file, maxPixels: maxPixels, reduction: 1, headerOnly: true)
        return (width, height)
    }

    /// The image, decoded at 1/`reduction` of its size (1: full size).
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, file: String, maxPixels: Int, reduction: Int = 1) throws -> Image {
        let (image, _, _) = try run(bytes, file: file, maxPixels: maxPixels, reduction: reduction, headerOnly: false)
        guard let image else { throw ImageError(file: file, reason: .corrupt("libjpeg produced no pixels")) }
        return image
    }

    private static func run(_ bytes: UnsafeBufferPointer<UInt8>, file: String, maxPixels: Int, reduction: Int,
                            headerOnly: Bool) throws -> (Image?, Int, Int) {
        guard let input = bytes.baseAddress else { throw ImageError(file: file, reason: .empty) }
        var result = CJPEGResult()
        let status = cjpeg_decode(input, bytes.count, Int64(maxPixels), Int32(reduction), headerOnly ? 1 : 0, &result)
        defer { free(result.pixels) }
        let message = withUnsafeBytes(of: result.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        let (width, height, components) = (Int(result.width), Int(result.height), Int(result.components))
        switch status {
        case .decoded:
            guard let output = result.pixels else { return (nil, width, height) }
            let pixels = [UInt8](UnsafeBufferPointer(start: output, count: width * height * components))
            let image = Image(unchecked: width, height, components, pixels)
            return (components == 4 ? try adobeCMYKToRGB(image) : image, width, height)
        case .tooLarge:
            throw ImageError(file: file, reason: .tooLarge(width: width, height: height, limit: maxPixels))
        case .unsupported:
            throw ImageError(file: file, reason: .corrupt("JPEG with \(components) components"))
        case .truncated:
            throw ImageError(file: file, reason: .truncated("libjpeg: \(message)"))
        case .failed:
            throw ImageError(file: file, reason: .corrupt("libjpeg: \(message.isEmpty ? "libjpeg stopped" : message)"))
        }
    }

    /// Pillow's CMYK → RGB for JPEG: it reads CMYK as "CMYK;I" (c = 255 − stored) and converts with
    /// r = round((255 − c)(255 − k) / 255), i.e. r = round(stored_c · stored_k / 255) here.
    static func adobeCMYKToRGB(_ cmyk: Image) throws -> Image {
        let t = try cmyk.hwcTensor().to(.float64)
        let cmy = try t.narrow(dim: 2, start: 0, length: 3), k = try t.narrow(dim: 2, start: 3, length: 1)
        let product = try cmy * k
        return try Image(hwc: try Image.divide255(product).to(.uint8))
    }

    /// The Exif payload (from the TIFF header on) of the APP1 "Exif" segments before the first scan;
    /// several segments are concatenated, as Pillow does.
    static func exifPayload(_ b: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        var offset = 2  // after SOI
        var exif: [UInt8]?
        let prefix: [UInt8] = Array("Exif\0\0".utf8)
        while b.count - offset >= 4 {
            guard b[offset] == 0xFF else { break }
            let marker = b[offset + 1]
            if marker == 0xFF { offset += 1; continue }  // fill byte
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { offset += 2; continue }
            if marker == 0xDA || marker == 0xD9 { break }  // start of scan / end of image
            let length = Int(b[offset + 2]) << 8 | Int(b[offset + 3])
            guard length >= 2, b.count - offset - 2 >= length else { break }
            let segment = b[(offset + 4)..<(offset + 2 + length)]
            if marker == 0xE1, segment.starts(with: prefix) {
                exif = (exif ?? []) + segment.dropFirst(prefix.count)
            }
            offset += 2 + length
        }
        return exif
    }
}
