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
        let stream = Inflater(source, pieces: pieces)
        return stream.read(into: output)
    }

    /// One zlib stream read piece by piece, as much output at a time as the caller asks for: a PNG is
    /// inflated a band of rows at a time instead of all at once.
    final class Inflater {
        private var stream = z_stream()
        private let source: UnsafeBufferPointer<UInt8>
        private let pieces: [Range<Int>]
        private var piece = 0
        private var offset: Int
        private var started = false
        /// Set once the stream has ended or failed; later reads produce nothing more.
        private var finished: Outcome?

        init(_ source: UnsafeBufferPointer<UInt8>, pieces: [Range<Int>]) {
            self.source = source
            self.pieces = pieces
            offset = pieces.first?.lowerBound ?? 0
        }

        deinit { if started { inflateEnd(&stream) } }

        /// Fills `output` from where the last read stopped; `produced` falls short of `output.count`
        /// only when the stream ends, fails or runs out of pieces.
        func read(into output: UnsafeMutableBufferPointer<UInt8>) -> Outcome {
            if let finished { return Outcome(produced: 0, streamEnded: finished.streamEnded, error: finished.error) }
            if !started {
                guard inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                    return finish(Outcome(produced: 0, streamEnded: false, error: "zlib could not start (out of memory)"))
                }
                started = true
            }
            guard let outBase = output.baseAddress, let inBase = source.baseAddress else {
                return Outcome(produced: 0, streamEnded: false, error: nil)
            }
            var produced = 0
            while piece < pieces.count, produced < output.count {
                let end = pieces[piece].upperBound
                if offset >= end {
                    piece += 1
                    if piece < pieces.count { offset = pieces[piece].lowerBound }
                    continue
                }
                let inCount = min(end - offset, Int(UInt32.max))
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
                    return finish(Outcome(produced: produced, streamEnded: true, error: nil))
                case Z_OK, Z_BUF_ERROR:
                    // With input and room for output zlib always moves; if it did not, stop rather than spin.
                    if consumed == 0 && written == 0 {
                        return finish(Outcome(produced: produced, streamEnded: false, error: "zlib made no progress"))
                    }
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                    return finish(Outcome(produced: produced, streamEnded: false, error: message))
                }
            }
            return Outcome(produced: produced, streamEnded: false, error: nil)
        }

        private func finish(_ outcome: Outcome) -> Outcome {
            finished = outcome
            return outcome
        }
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
