// The PNG chunk layer: walks the chunks, checks their CRCs, and collects what the decoder needs
// (IHDR, PLTE, tRNS, the IDAT pieces, eXIf, text chunks) without copying any data.

struct PNGHeader: Equatable {
    var width: Int
    var height: Int
    var bitDepth: Int
    /// 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA.
    var colorType: Int
    var interlaced: Bool

    /// Samples per pixel in the file.
    var samplesPerPixel: Int {
        switch colorType {
        case 2: return 3
        case 4: return 2
        case 6: return 4
        default: return 1
        }
    }
    var bitsPerPixel: Int { samplesPerPixel * bitDepth }
    /// The filter's byte distance to "the pixel to the left" (at least 1 for sub-byte depths).
    var filterStride: Int { max(1, bitsPerPixel / 8) }
    /// Bytes of one row of `pixels` pixels, without the filter byte.
    func rowBytes(_ pixels: Int) -> Int { (pixels * bitsPerPixel + 7) / 8 }
}

struct PNGChunkRef {
    var type: String
    var data: Range<Int>
}

struct PNGFile {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    var header: PNGHeader
    var palette: Range<Int>?
    var transparency: Range<Int>?
    var idat: [Range<Int>] = []
    var exif: Range<Int>?
    /// tEXt, zTXt and iTXt chunks, in file order.
    var text: [PNGChunkRef] = []
    /// Where the file stops short (in the middle of a chunk, or before IEND), if it does.
    var truncation: String?
    var truncated: Bool { truncation != nil }

    /// Walks the chunks of `bytes`. A bad CRC before the image data ends is corruption; after the last
    /// IDAT the walk just stops, since the pixels are complete by then (libpng and Pillow are as lenient).
    init(_ bytes: UnsafeBufferPointer<UInt8>, file: String) throws {
        func corrupt(_ why: String) -> ImageError { ImageError(file: file, reason: .corrupt(why)) }
        guard bytes.count >= 8, bytes.starts(with: PNGFile.signature) else { throw corrupt("not a PNG signature") }
        var offset = 8
        var header: PNGHeader?
        var afterImageData = false
        var sawEnd = false
        while !sawEnd {
            guard bytes.count - offset >= 12 else {
                truncation = offset == bytes.count ? "the file ends at byte \(offset) without an IEND chunk"
                    : "the file ends at byte \(bytes.count), inside a chunk header"
                break
            }
            let length = Int(readBE32(bytes, offset))
            let typeBytes = bytes[(offset + 4)..<(offset + 8)]
            let type = String(decoding: typeBytes, as: UTF8.self)
            if !idat.isEmpty && type != "IDAT" { afterImageData = true }
            guard length <= 0x7FFF_FFFF, typeBytes.allSatisfy({ ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) }) else {
                if afterImageData { break }
                throw corrupt("malformed chunk header at byte \(offset)")
            }
            let start = offset + 8
            guard bytes.count - start >= length + 4 else {
                truncation = "the file ends at byte \(bytes.count), inside the \(length)-byte \(type) chunk at byte \(offset)"
                break
            }
            let stored = readBE32(bytes, start + length)
            let computed = Zlib.crc32(UnsafeBufferPointer(rebasing: bytes[(offset + 4)..<(start + length)]))
            if stored != computed {
                if afterImageData { break }
                throw corrupt("bad CRC in \(type) chunk at byte \(offset)")
            }
            let data = start..<(start + length)
            offset = start + length + 4

            if header == nil {
                guard type == "IHDR" else { throw corrupt("first chunk is \(type), not IHDR") }
                header = try PNGFile.parseHeader(bytes, data, corrupt)
                continue
            }
            switch type {
            case "IDAT": idat.append(data)
            case "PLTE" where idat.isEmpty: palette = data
            case "tRNS" where idat.isEmpty: transparency = data
            case "eXIf": if exif == nil { exif = data }
            case "tEXt", "zTXt", "iTXt": text.append(PNGChunkRef(type: type, data: data))
            case "IEND": sawEnd = true
            default: break  // ancillary or unknown chunks carry nothing the pixels need
            }
        }
        guard let header else { throw ImageError(file: file, reason: .truncated("the file ends before the IHDR chunk")) }
        self.header = header
    }

    static func parseHeader(_ bytes: UnsafeBufferPointer<UInt8>, _ data: Range<Int>,
                            _ corrupt: (String) -> ImageError) throws -> PNGHeader {
        guard data.count == 13 else { throw corrupt("IHDR has \(data.count) bytes, not 13") }
        let o = data.lowerBound
        let width = Int(readBE32(bytes, o)), height = Int(readBE32(bytes, o + 4))
        let depth = Int(bytes[o + 8]), colorType = Int(bytes[o + 9])
        guard width > 0, height > 0, width <= 0x7FFF_FFFF, height <= 0x7FFF_FFFF else {
            throw corrupt("image size \(width)×\(height) is invalid")
        }
        let allowed: [Int: [Int]] = [0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16]]
        guard let depths = allowed[colorType] else { throw corrupt("colour type \(colorType) does not exist") }
        guard depths.contains(depth) else { throw corrupt("bit depth \(depth) is invalid for colour type \(colorType)") }
        guard bytes[o + 10] == 0, bytes[o + 11] == 0 else { throw corrupt("unknown compression or filter method") }
        guard bytes[o + 12] <= 1 else { throw corrupt("unknown interlace method \(bytes[o + 12])") }
        return PNGHeader(width: width, height: height, bitDepth: depth, colorType: colorType, interlaced: bytes[o + 12] == 1)
    }
}

/// A big-endian 32-bit value at `offset` (the caller has checked the bounds).
@inline(__always)
func readBE32(_ bytes: UnsafeBufferPointer<UInt8>, _ offset: Int) -> UInt32 {
    UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
}
