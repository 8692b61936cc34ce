// zlib for PNG: CRC-32 of chunks, inflating IDAT / zTXt / iTXt streams, and deflating the IDAT of the
// PNGs written in Swift (1-bit stencils). zlib reports errors by
// return code, never by longjmp, so it is safe to call from Swift.
import CImageCodecs

enum Zlib {
    /// CRC-32 (the PNG chunk checksum) of `bytes`, continuing from `crc`.
    static func crc32(_ bytes: UnsafeBufferPointer<UInt8>, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        var value = UInt(crc)
        var offset = 0
        while offset < bytes.count {  // zlib takes 32-bit lengths
            let n = min(bytes.count - offset, Int(UInt32.max))
            value = CImageCodecs.crc32(value, base + offset, UInt32(n))
            offset += n
        }
        return UInt32(truncatingIfNeeded: value)
    }

    /// `bytes` as one zlib stream (compress2 at level 9).
    static func deflate(_ bytes: [UInt8]) throws -> [UInt8] {
        var size = compressBound(uLong(bytes.count))
        var output = [UInt8](repeating: 0, count: Int(size))
        let status = bytes.withUnsafeBufferPointer { src in
            output.withUnsafeMutableBufferPointer { out in
                compress2(out.baseAddress, &size, src.baseAddress, uLong(src.count), 9)
            }
        }
        guard status == Z_OK else { throw ImageError.invalid("zlib could not compress \(bytes.count) bytes (status \(status))") }
        output.removeSubrange(Int(size)...)
        return output
    }

    struct Outcome {
        /// Bytes written to the output.
        var produced: Int
        /// The compressed stream reached its end marker.
        var streamEnded: Bool
        /// zlib's complaint about the data, if it had one.
        var error: String?
    }

    /// Inflates the zlib stream made of `pieces` of `source` (consecutive IDAT chunks) into `output`.
    /// Stops when `output` is full: trailing data, as libpng and Pillow do, is ignored.
    static func inflate(_ source: UnsafeBufferPointer<UInt8>, pieces: [Range<Int>],
                        into output: UnsafeMutableBufferPointer<UInt8>) -> Outcome {
        var stream = z_stream()
        guard inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            return Outcome(produced: 0, streamEnded: false, error: "zlib could not start (out of memory)")
        }
        defer { inflateEnd(&stream) }
        guard let outBase = output.baseAddress, let inBase = source.baseAddress else {
            return Outcome(produced: 0, streamEnded: false, error: nil)
        }
        var produced = 0
        for piece in pieces {
            var offset = piece.lowerBound
            while offset < piece.upperBound, produced < output.count {
                let inCount = min(piece.upperBound - offset, Int(UInt32.max))
                let outCount = min(output.count - produced, Int(UInt32.max))
                stream.next_in = UnsafeMutablePointer(mutating: inBase + offset)
                stream.avail_in = UInt32(inCount)
                stream.next_out = outBase + produced
                stream.avail_out = UInt32(outCount)
                let status = CImageCodecs.inflate(&stream, Z_NO_FLUSH)
                let consumed = inCount - Int(stream.avail_in), written = outCount - Int(stream.avail_out)
                offset += consumed
                produced += written
                switch status {
                case Z_STREAM_END:
                    return Outcome(produced: produced, streamEnded: true, error: nil)
                case Z_OK, Z_BUF_ERROR:
                    // With input and room for output zlib always moves; if it did not, stop rather than spin.
                    if consumed == 0 && written == 0 {
                        return Outcome(produced: produced, streamEnded: false, error: "zlib made no progress")
                    }
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                    return Outcome(produced: produced, streamEnded: false, error: message)
                }
            }
            if produced == output.count { break }
        }
        return Outcome(produced: produced, streamEnded: false, error: nil)
    }

    /// Inflates a whole small stream (a compressed text chunk); nil if it is malformed, incomplete or
    /// would exceed `limit` bytes.
    static func inflate(_ source: UnsafeBufferPointer<UInt8>, limit: Int) -> [UInt8]? {
        var capacity = min(max(source.count * 4, 256), limit)
        while true {
            var buffer = [UInt8](repeating: 0, count: capacity + 1)  // one spare byte detects "more than capacity"
            let outcome = buffer.withUnsafeMutableBufferPointer {
                inflate(source, pieces: [0..<source.count], into: $0)
            }
            if outcome.error != nil { return nil }
            if outcome.streamEnded && outcome.produced <= capacity { return Array(buffer[0..<outcome.produced]) }
            if !outcome.streamEnded && outcome.produced <= capacity { return nil }  // incomplete stream
            if capacity >= limit { return nil }
            capacity = min(capacity * 4, limit)
        }
    }
}
