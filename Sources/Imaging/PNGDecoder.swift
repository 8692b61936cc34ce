// PNG pixels: inflate the IDAT stream (zlib), undo the row filters, de-interlace Adam7, and reduce every
// colour type and bit depth to 8-bit samples the way Pillow's `Image.open(p).convert("RGBA")` does,
// quirks included (see `expand`). libpng is not used for reading: its full API reports errors by
// longjmp, and its simplified API applies gamma and rounds 16-bit samples, which Pillow does not.

enum PNGDecoder {
    /// (x0, y0, dx, dy) of the seven Adam7 passes; a non-interlaced image is the one pass (0, 0, 1, 1).
    static let adam7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]

    struct Pass {
        var x0, y0, dx, dy: Int
        var width, height: Int
        /// Where its first filter byte is in the inflated data.
        var offset: Int
    }

    /// The chunks, checked as far as the header allows: size limit, image data present, palette sane.
    static func header(_ bytes: UnsafeBufferPointer<UInt8>, file: String, maxPixels: Int) throws -> PNGFile {
        let png = try PNGFile(bytes, file: file)
        let h = png.header
        // The decompression-bomb check comes before any allocation that depends on the header.
        let (pixelCount, overflow) = h.width.multipliedReportingOverflow(by: h.height)
        guard !overflow, pixelCount <= maxPixels else {
            throw ImageError(file: file, reason: .tooLarge(width: h.width, height: h.height, limit: maxPixels))
        }
        guard !png.idat.isEmpty else {
            throw png.truncation.map { ImageError(file: file, reason: .truncated($0)) }
                ?? ImageError(file: file, reason: .corrupt("no IDAT chunk"))
        }
        if h.colorType == 3 {
            guard let palette = png.palette else { throw ImageError(file: file, reason: .corrupt("palette image without a PLTE chunk")) }
            guard palette.count % 3 == 0, palette.count <= 768 else {
                throw ImageError(file: file, reason: .corrupt("PLTE chunk of \(palette.count) bytes"))
            }
        }
        return png
    }

    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, file: String, maxPixels: Int) throws -> (Image, PNGFile) {
        let png = try header(bytes, file: file, maxPixels: maxPixels)
        let h = png.header
        let channels = outputChannels(png, bytes)
        var pixels = [UInt8]()
        pixels.reserveCapacity(h.width * h.height * channels)
        let bandRows = max(1, (1 << 20) / max(1, h.width * channels))
        try decodeRows(bytes, png: png, file: file, maxPixels: maxPixels, bandRows: bandRows) { band, _ in
            pixels.append(contentsOf: band.pixels)
        }
        return (Image(unchecked: h.width, h.height, channels, pixels), png)
    }

    /// Decodes in bands of up to `bandRows` rows, top to bottom, each handed to `body` with its first row.
    /// A non-interlaced image is inflated, unfiltered and expanded a band at a time, so memory holds one
    /// band and the row before it, never the image. Adam7 spreads every band over the whole stream: an
    /// interlaced image is put together whole first, its passes streamed into it a band at a time (one uint8
    /// copy of the image, no copy of the inflated stream).
    static func decodeRows(_ bytes: UnsafeBufferPointer<UInt8>, png: PNGFile, file: String, maxPixels: Int, bandRows: Int,
                           _ body: (Image, Int) throws -> Void) throws {
        let h = png.header
        func corrupt(_ why: String) -> ImageError { ImageError(file: file, reason: .corrupt(why)) }
        func truncated(_ why: String) -> ImageError { ImageError(file: file, reason: .truncated(why)) }

        var passes: [Pass] = []
        var total = 0
        for (x0, y0, dx, dy) in h.interlaced ? adam7 : [(0, 0, 1, 1)] {
            let pw = h.width > x0 ? (h.width - x0 + dx - 1) / dx : 0
            let ph = h.height > y0 ? (h.height - y0 + dy - 1) / dy : 0
            passes.append(Pass(x0: x0, y0: y0, dx: dx, dy: dy, width: pw, height: ph, offset: total))
            guard pw > 0 && ph > 0 else { continue }
            // Only a caller's huge `maxPixels` lets this overflow; refuse rather than trap.
            let (bytes, overflow1) = ph.multipliedReportingOverflow(by: 1 + h.rowBytes(pw))
            let (sum, overflow2) = total.addingReportingOverflow(bytes)
            guard !overflow1, !overflow2 else {
                throw ImageError(file: file, reason: .tooLarge(width: h.width, height: h.height, limit: maxPixels))
            }
            total = sum
        }

        let inflater = Zlib.Inflater(bytes, pieces: png.idat)
        var inflated = 0
        /// Fills `buffer` from the stream, or throws what today's whole-stream decode reports.
        func fill(_ buffer: UnsafeMutableBufferPointer<UInt8>) throws {
            let outcome = inflater.read(into: buffer)
            inflated += outcome.produced
            guard outcome.produced < buffer.count else { return }
            let shortBy = "\(inflated) of \(total) bytes of image data"
            if let error = outcome.error {
                throw png.truncated ? truncated("\(shortBy); zlib: \(error)") : corrupt("compressed image data: \(error)")
            }
            if outcome.streamEnded { throw corrupt("the compressed stream ends after \(shortBy)") }
            throw truncated(png.truncation.map { "\(shortBy); \($0)" } ?? "only \(shortBy)")
        }

        /// Inflates and unfilters `pass` a band of up to `rows` rows at a time, handing each to `each` with the
        /// band as a pass of its own (image row `y0` first; its rows start at `offset` in the buffer) and the
        /// index of its first row within `pass`. Row 0 of the buffer holds the previous band's last row
        /// (unfiltered), which the filters of the band's first row read; rows 1… hold the band.
        func stream(_ pass: Pass, rows: Int, _ each: (UnsafeMutableBufferPointer<UInt8>, Pass, Int) throws -> Void) throws {
            let stride = 1 + h.rowBytes(pass.width), rows = min(rows, pass.height)
            var raw = [UInt8](repeating: 0, count: (1 + rows) * stride)
            try raw.withUnsafeMutableBufferPointer { data in
                for start in Swift.stride(from: 0, to: pass.height, by: rows) {
                    let n = min(rows, pass.height - start)
                    if start > 0 {  // the last row of the band before becomes row 0
                        for i in 0..<stride { data[i] = data[rows * stride + i] }
                    }
                    try fill(UnsafeMutableBufferPointer(rebasing: data[stride..<((1 + n) * stride)]))
                    let band = Pass(x0: pass.x0, y0: pass.y0 + start * pass.dy, dx: pass.dx, dy: pass.dy, width: pass.width,
                                    height: n, offset: stride)
                    try unfilter(data, pass: band, header: h, firstRow: start, corrupt)
                    try each(data, band, start)
                }
            }
        }

        let channels = outputChannels(png, bytes)
        guard !h.interlaced else {
            // Every Adam7 pass spans all rows: each is streamed into the one whole image, then it is handed on.
            var pixels = [UInt8](repeating: 0, count: h.width * h.height * channels)
            try pixels.withUnsafeMutableBufferPointer { out in
                for pass in passes where pass.width > 0 && pass.height > 0 {
                    try stream(pass, rows: max(1, (1 << 20) / (1 + h.rowBytes(pass.width)))) { data, band, _ in
                        expand(data, pass: band, png: png, bytes: bytes, channels: channels, into: out)
                    }
                }
            }
            let rowBytes = h.width * channels
            for start in Swift.stride(from: 0, to: h.height, by: bandRows) {
                let n = min(bandRows, h.height - start)
                try body(bandRows >= h.height ? Image(unchecked: h.width, h.height, channels, pixels)
                         : Image(unchecked: h.width, n, channels, Array(pixels[(start * rowBytes)..<((start + n) * rowBytes)])), start)
            }
            return
        }

        try stream(passes[0], rows: bandRows) { data, band, start in
            var pixels = [UInt8](repeating: 0, count: band.height * h.width * channels)
            pixels.withUnsafeMutableBufferPointer { out in
                // Placed from the band's first row.
                expand(data, pass: Pass(x0: 0, y0: 0, dx: 1, dy: 1, width: h.width, height: band.height, offset: band.offset),
                       png: png, bytes: bytes, channels: channels, into: out)
            }
            try body(Image(unchecked: h.width, band.height, channels, pixels), start)
        }
    }

    /// Grey and RGB gain an alpha channel from a tRNS key, palette images from a tRNS table.
    static func outputChannels(_ png: PNGFile, _ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        let trns = png.transparency?.count ?? -1
        switch png.header.colorType {
        case 0: return trns >= 2 ? 2 : 1
        case 2: return trns >= 6 ? 4 : 3
        case 3: return trns >= 0 ? 4 : 3
        case 4: return 2
        default: return 4
        }
    }

    /// Undoes the five PNG row filters in place (filter byte + row bytes, row by row).
    /// `firstRow` > 0: the pass is a band of a non-interlaced image whose first row is that image row,
    /// and the row before it is in `data` just before the band (row-by-row decoding).
    static func unfilter(_ data: UnsafeMutableBufferPointer<UInt8>, pass: Pass, header: PNGHeader, firstRow: Int = 0,
                         _ corrupt: (String) -> ImageError) throws {
        let n = header.rowBytes(pass.width), bpp = header.filterStride
        for j in 0..<pass.height {
            let row = pass.offset + j * (n + 1) + 1
            let prev = row - (n + 1)  // only read when y > 0
            let y = firstRow + j
            switch data[row - 1] {
            case 0:
                break
            case 1:
                for i in bpp..<max(bpp, n) { data[row + i] &+= data[row + i - bpp] }
            case 2:
                if y > 0 { for i in 0..<n { data[row + i] &+= data[prev + i] } }
            case 3:
                for i in 0..<n {
                    let a = i >= bpp ? Int(data[row + i - bpp]) : 0
                    let b = y > 0 ? Int(data[prev + i]) : 0
                    data[row + i] &+= UInt8((a + b) >> 1)
                }
            case 4:
                for i in 0..<n {
                    let a = i >= bpp ? Int(data[row + i - bpp]) : 0
                    let b = y > 0 ? Int(data[prev + i]) : 0
                    let c = i >= bpp && y > 0 ? Int(data[prev + i - bpp]) : 0
                    let p = a + b - c
                    let pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    data[row + i] &+= UInt8(pa <= pb && pa <= pc ? a : (pb <= pc ? b : c))
                }
            case let f:
                throw corrupt("unknown filter type \(f) in row \(y)")
            }
        }
    }

    /// Reduces one pass's unfiltered rows to 8-bit output samples, placed at their final positions.
    /// Pillow's behaviour, which this matches:
    /// - 16-bit RGB, RGBA and grey+alpha keep the high byte; 16-bit grey ("I;16") is clipped to 255, so
    ///   any value ≥ 256 becomes white (Pillow's I;16 → L/RGB conversion clips rather than scales).
    /// - 1/2/4-bit grey is scaled (×255, ×85, ×17); palette indices past PLTE are black.
    /// - A tRNS key is compared with the 8-bit sample after that reduction, against the key's low byte
    ///   (for 1-bit grey, against 255 if the key is non-zero).
    static func expand(_ data: UnsafeMutableBufferPointer<UInt8>, pass: Pass, png: PNGFile,
                       bytes: UnsafeBufferPointer<UInt8>, channels: Int, into out: UnsafeMutableBufferPointer<UInt8>) {
        let h = png.header
        let n = h.rowBytes(pass.width), depth = h.bitDepth, spp = h.samplesPerPixel
        let trns = png.transparency
        for j in 0..<pass.height {
            let row = pass.offset + j * (n + 1) + 1
            let y = pass.y0 + j * pass.dy
            // The i-th sample of the row (c-th channel), as stored: for 16-bit the high byte.
            @inline(__always) func sample(_ i: Int, _ c: Int) -> Int {
                switch depth {
                case 8: return Int(data[row + i * spp + c])
                case 16: return Int(data[row + (i * spp + c) * 2])
                default:
                    let bit = i * depth
                    return Int(data[row + (bit >> 3)] >> (8 - depth - (bit & 7))) & ((1 << depth) - 1)
                }
            }
            for i in 0..<pass.width {
                let o = (y * h.width + pass.x0 + i * pass.dx) * channels
                switch h.colorType {
                case 0:
                    let g: Int
                    switch depth {
                    case 16: g = min(Int(data[row + 2 * i]) << 8 | Int(data[row + 2 * i + 1]), 255)
                    case 8: g = sample(i, 0)
                    default: g = sample(i, 0) * (255 / ((1 << depth) - 1))
                    }
                    out[o] = UInt8(g)
                    if channels == 2, let t = trns {
                        let key = Int(bytes[t.lowerBound]) << 8 | Int(bytes[t.lowerBound + 1])
                        let key8 = depth == 1 ? (key != 0 ? 255 : 0) : key & 0xFF
                        out[o + 1] = g == key8 ? 0 : 255
                    }
                case 2:
                    var opaque = false
                    for c in 0..<3 {
                        let v = sample(i, c)
                        out[o + c] = UInt8(v)
                        if channels == 4, let t = trns, v != Int(bytes[t.lowerBound + 2 * c + 1]) { opaque = true }
                    }
                    if channels == 4 { out[o + 3] = opaque ? 255 : 0 }
                case 3:
                    let index = sample(i, 0)
                    if let p = png.palette, 3 * index + 2 < p.count {
                        for c in 0..<3 { out[o + c] = bytes[p.lowerBound + 3 * index + c] }
                    }  // else stays black, as Pillow's zero-padded palette
                    if channels == 4 {
                        out[o + 3] = trns.map { index < $0.count ? bytes[$0.lowerBound + index] : 255 } ?? 255
                    }
                case 4:
                    let g = UInt8(sample(i, 0))
                    out[o] = g
                    out[o + 1] = UInt8(sample(i, 1))
                default:
                    for c in 0..<4 { out[o + c] = UInt8(sample(i, c)) }
                }
            }
        }
    }
}
