// Reading image files: the format comes from the magic bytes (never the extension), the decode from
// the matching codec, and EXIF orientation is applied as Pillow's `ImageOps.exif_transpose` would.
import AtomicFile
import Foundation
import Torch

public enum ImageFormat: String, Sendable, CaseIterable {
    case png, jpeg, webp

    /// The format whose magic bytes start `bytes`, or nil.
    public static func detect<C: Collection>(_ bytes: C) -> ImageFormat? where C.Element == UInt8 {
        let head = Array(bytes.prefix(12))
        if head.starts(with: PNGFile.signature) { return .png }
        if head.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if head.count >= 12, head.starts(with: Array("RIFF".utf8)), Array(head[8..<12]) == Array("WEBP".utf8) { return .webp }
        return nil
    }

    /// A name for formats that are recognised but not read, for the error message.
    static func describeUnsupported<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let head = Array(bytes.prefix(12))
        let known: [(String, [UInt8])] = [
            ("GIF", Array("GIF8".utf8)), ("BMP", Array("BM".utf8)), ("TIFF", [0x49, 0x49, 0x2A, 0x00]),
            ("TIFF", [0x4D, 0x4D, 0x00, 0x2A]), ("JPEG 2000", [0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50]),
            ("ICO", [0x00, 0x00, 0x01, 0x00]), ("PSD", Array("8BPS".utf8)),
        ]
        if let (name, _) = known.first(where: { head.starts(with: $0.1) }) { return name }
        if head.count >= 12, Array(head[4..<8]) == Array("ftyp".utf8) {
            return "ISO media (\(String(decoding: head[8..<12], as: UTF8.self)), e.g. AVIF/HEIC)"
        }
        return "unrecognised magic bytes " + head.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
    }
}

/// A decoded file: the upright image plus what the file said about itself.
public struct DecodedImage: Sendable {
    /// The pixels, already turned upright by the EXIF orientation if `applyOrientation` was set.
    public var image: Image
    public var format: ImageFormat
    /// The EXIF orientation found in the file (1 when there is none).
    public var orientation: Int
    /// PNG tEXt / zTXt / iTXt chunks in file order (empty for JPEG and WebP).
    public var text: [PNGTextChunk]
}

public enum ImageDecoder {
    /// Pillow's decompression-bomb error threshold: 2 × `Image.MAX_IMAGE_PIXELS` (89,478,485).
    public static let defaultMaxPixels = 178_956_970

    /// Reads and decodes a PNG, JPEG or WebP file.
    public static func read(_ url: URL, maxPixels: Int = defaultMaxPixels, applyOrientation: Bool = true) throws -> DecodedImage {
        // By type first: reading a named pipe would block until a writer comes.
        if let problem = RegularFile.problem(atPath: url.path) { throw ImageError(file: url.path, reason: .io(problem)) }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ImageError(file: url.path, reason: .io("cannot read the file: \(error.localizedDescription)"))
        }
        return try decode([UInt8](data), name: url.path, maxPixels: maxPixels, applyOrientation: applyOrientation)
    }

    /// Decodes an image held in memory; `name` is what errors call it.
    public static func decode(_ bytes: [UInt8], name: String = "<memory>", maxPixels: Int = defaultMaxPixels,
                              applyOrientation: Bool = true) throws -> DecodedImage {
        guard !bytes.isEmpty else { throw ImageError(file: name, reason: .empty) }
        guard let format = ImageFormat.detect(bytes) else {
            throw ImageError(file: name, reason: .unsupportedFormat(ImageFormat.describeUnsupported(bytes)))
        }
        return try bytes.withUnsafeBufferPointer { b in
            var image: Image
            var exif: [UInt8]?
            var text: [PNGTextChunk] = []
            switch format {
            case .png:
                let (decoded, png) = try PNGDecoder.decode(b, file: name, maxPixels: maxPixels)
                image = decoded
                exif = png.exif.map { Array(b[$0]) }
                text = png.text.compactMap { PNGTextChunk.parse(type: $0.type, data: UnsafeBufferPointer(rebasing: b[$0.data])) }
            case .jpeg:
                image = try JPEGDecoder.decode(b, file: name, maxPixels: maxPixels)
                exif = JPEGDecoder.exifPayload(b)
            case .webp:
                let (decoded, exifRange) = try WebPDecoder.decode(b, file: name, maxPixels: maxPixels)
                image = decoded
                exif = exifRange.map { Array(b[$0]) }
            }
            let orientation = exif.map(ExifOrientation.parse) ?? 1
            if applyOrientation { image = try image.upright(orientation: orientation) }
            return DecodedImage(image: image, format: format, orientation: orientation, text: text)
        }
    }
}

extension Image {
    /// Reads a PNG, JPEG or WebP file, upright (EXIF orientation applied).
    public static func load(_ url: URL, maxPixels: Int = ImageDecoder.defaultMaxPixels) throws -> Image {
        try ImageDecoder.read(url, maxPixels: maxPixels).image
    }
}

// MARK: - EXIF orientation
// Tag 0x0112 of IFD0 in a TIFF-structured Exif block; the transposes run as tensor flips/permutes.

public enum ExifOrientation {
    /// The orientation (1–8) in an Exif block (with or without the "Exif\0\0" prefix); 1 when the block
    /// is malformed or has no usable tag. Like Pillow, a SHORT/LONG (or signed) tag with one value counts;
    /// anything else, or a value outside 1–8, means "leave the image as it is".
    public static func parse(_ exif: [UInt8]) -> Int {
        var b = exif[...]
        if b.starts(with: Array("Exif\0\0".utf8)) { b = b.dropFirst(6) }
        let base = b.startIndex
        guard b.count >= 8 else { return 1 }
        let little: Bool
        switch (b[base], b[base + 1]) {
        case (0x49, 0x49): little = true   // "II"
        case (0x4D, 0x4D): little = false  // "MM"
        default: return 1
        }
        func u16(_ at: Int) -> Int? {
            guard at >= 0, at + 2 <= b.count else { return nil }
            let x = Int(b[base + at]), y = Int(b[base + at + 1])
            return little ? x | y << 8 : x << 8 | y
        }
        func u32(_ at: Int) -> Int? {
            guard let lo = u16(little ? at : at + 2), let hi = u16(little ? at + 2 : at) else { return nil }
            return hi << 16 | lo
        }
        guard u16(2) == 42, let ifd = u32(4), let count = u16(ifd) else { return 1 }
        for entry in 0..<count {
            let at = ifd + 2 + 12 * entry
            guard let tag = u16(at), let type = u16(at + 2), let n = u32(at + 4) else { return 1 }
            guard tag == 0x0112 else { continue }
            guard n == 1 else { return 1 }
            let value: Int?
            switch type {
            case 3: value = u16(at + 8)                                     // SHORT
            case 8: value = u16(at + 8).map { Int(Int16(truncatingIfNeeded: $0)) }  // SSHORT
            case 4: value = u32(at + 8)                                     // LONG
            case 9: value = u32(at + 8).map { Int(Int32(truncatingIfNeeded: $0)) }  // SLONG
            default: value = nil
            }
            guard let value, (1...8).contains(value) else { return 1 }
            return value
        }
        return 1
    }
}

extension Image {
    /// The image as it should be displayed for an EXIF `orientation`, Pillow's mapping:
    /// 2 mirror, 3 rotate 180°, 4 flip, 5 transpose, 6 rotate 90° clockwise, 7 transverse,
    /// 8 rotate 90° counter-clockwise; 1 and anything else return the image unchanged.
    public func upright(orientation: Int) throws -> Image {
        guard (2...8).contains(orientation) else { return self }
        var t = try hwcTensor()  // (H, W, C): dim 0 is y, dim 1 is x
        switch orientation {
        case 2: t = try t.flip([1])
        case 3: t = try t.flip([0, 1])
        case 4: t = try t.flip([0])
        case 5: t = try t.transpose(0, 1)
        case 6: t = try t.transpose(0, 1).flip([1])
        case 7: t = try t.transpose(0, 1).flip([0, 1])
        default: t = try t.transpose(0, 1).flip([0])
        }
        return try Image(hwc: try t.contiguous())
    }
}
