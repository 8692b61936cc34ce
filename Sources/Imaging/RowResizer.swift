// Pillow's `Image.resize`, fed the source a band of rows at a time, so that a large source never has to be
// in memory whole (`inkwell prepare` streams a PNG's rows straight in). It is also what `Image.resized`
// runs, so there is one resize. Memory is one band of float64 (`bandValues`) plus the small side of the
// job: the first pass's output as uint8 (horizontal first) or a window of source rows (vertical first).
//
// Exactness: Pillow's pass order is kept (vertical first when the image loses more than twice as many rows
// as columns, as Resample.c in Pillow 13); each pass rounds and clips to 0…255 as Pillow does, so the
// intermediate is stored as uint8 without loss; rows (horizontal pass) and columns (vertical pass) are
// independent, and every sum is an exact integer in float64, so splitting the work changes no pixel.
//
// Turned sources (EXIF orientation 2–8) are resized in the frame they are stored in, and only the small
// result is turned: each stored axis gets the kernel of the upright axis it becomes (mirrored when it
// runs backwards), and the passes run in the order Pillow picks for the upright image, so the result
// equals Pillow's `exif_transpose` followed by `resize` byte for byte.
import Torch

/// The area of a source that a resize maps onto its output, in source pixels (Pillow's resize `box`):
/// for a JPEG decoded at 1/s, (0, 0, W/s, H/s) of the rounded-up decode, as `Image.draft` returns it.
public struct ResizeBox: Sendable, Equatable {
    public var x0, y0, x1, y1: Double
    public init(x0: Double, y0: Double, x1: Double, y1: Double) {
        (self.x0, self.y0, self.x1, self.y1) = (x0, y0, x1, y1)
    }
}

public final class RowResizer {
    /// The source as stored (before its turn).
    public let sourceWidth: Int
    public let sourceHeight: Int
    public let channels: Int
    /// The output, upright.
    public let width: Int
    public let height: Int
    /// The EXIF orientation the source still needs (1: none).
    public let orientation: Int
    let bandValues: Int
    /// The output in the stored frame: the upright size, swapped for a sideways turn.
    let outWidth: Int
    let outHeight: Int
    /// In the stored frame.
    let verticalFirst: Bool
    /// Along the stored rows and columns; nil where that side keeps its size and the box is all of it.
    let horizontal: ResampleKernel?
    let vertical: ResampleKernel?
    private var identity: Bool { horizontal == nil && vertical == nil }
    private var hasAlpha: Bool { channels == 2 || channels == 4 }
    /// Source rows received so far.
    private var received = 0
    /// Horizontal first: the first pass's output, (C, rows, width) uint8 bands (the premultiplied planes
    /// when the width stays; the source bands themselves when nothing changes).
    private var firstPass: [Tensor] = []
    /// Vertical first: source rows `pendingStart ..< received` that later output rows still read, (rows, W, C).
    private var pending: [Tensor] = []
    private var pendingStart = 0
    /// Vertical first: the next output row to make, and the finished ones, (C, rows, width) float64.
    private var nextRow = 0
    private var finished: [Tensor] = []

    /// A stored `sourceWidth`×`sourceHeight` source, fed in stored rows, to an upright `width`×`height` output:
    /// Pillow's `exif_transpose(source).resize((width, height), filter, box)` with `box` (stored frame) turned
    /// as the image is. `bandValues`: how many float64 values one piece of work holds (16 MB by default).
    public init(sourceWidth: Int, sourceHeight: Int, channels: Int, width: Int, height: Int,
                filter: ResampleFilter, orientation: Int = 1, box: ResizeBox? = nil, bandValues: Int = 1 << 21) throws {
        guard sourceWidth > 0, sourceHeight > 0, (1...4).contains(channels) else {
            throw ImageError.invalid("cannot resize a \(sourceWidth)×\(sourceHeight)×\(channels) image")
        }
        guard width > 0, height > 0 else { throw ImageError.invalid("cannot resize to \(width)×\(height)") }
        guard (1...8).contains(orientation) else { throw ImageError.invalid("EXIF orientation \(orientation) is not 1…8") }
        let box = box ?? ResizeBox(x0: 0, y0: 0, x1: Double(sourceWidth), y1: Double(sourceHeight))
        guard box.x0 >= 0, box.y0 >= 0, box.x1 <= Double(sourceWidth), box.y1 <= Double(sourceHeight),
              box.x0 < box.x1, box.y0 < box.y1 else {
            throw ImageError.invalid("resize box \(box) is not inside the \(sourceWidth)×\(sourceHeight) image")
        }
        self.sourceWidth = sourceWidth
        self.sourceHeight = sourceHeight
        self.channels = channels
        self.width = width
        self.height = height
        self.orientation = orientation
        self.bandValues = max(1, bandValues)
        // Which upright axis each stored one becomes, and whether it runs backwards there (Image.upright).
        let sideways = orientation >= 5
        let backwardsX = [2, 3, 7, 8].contains(orientation), backwardsY = [3, 4, 6, 7].contains(orientation)
        (outWidth, outHeight) = sideways ? (height, width) : (width, height)
        // Pillow's pass order is decided on the upright image, whose vertical pass runs along the stored rows
        // when it is sideways.
        let (uprightWidth, uprightHeight) = sideways ? (sourceHeight, sourceWidth) : (sourceWidth, sourceHeight)
        let lostRows = uprightHeight - height, lostColumns = uprightWidth - width
        let uprightVerticalFirst = lostRows > 0 && lostRows > 2 * lostColumns
        /// One stored axis's kernel: computed on the upright axis (its box turned with it), mirrored back.
        func kernel(size: Int, out: Int, from b0: Double, to b1: Double, backwards: Bool) -> ResampleKernel? {
            let length = Double(size)
            // Pillow's box is float32.
            let (u0, u1) = backwards ? (length - b1, length - b0) : (b0, b1)
            let upright = (Double(Float(u0)), Double(Float(u1)))
            guard out != size || upright != (0, length) else { return nil }
            let k = ResampleKernel(inSize: size, outSize: out, filter: filter, box: upright)
            return backwards ? k.mirrored() : k
        }
        horizontal = kernel(size: sourceWidth, out: outWidth, from: box.x0, to: box.x1, backwards: backwardsX)
        vertical = kernel(size: sourceHeight, out: outHeight, from: box.y0, to: box.y1, backwards: backwardsY)
        verticalFirst = vertical != nil && (sideways ? !uprightVerticalFirst : uprightVerticalFirst)
    }

    /// The next rows of the source, a uint8 (rows, sourceWidth, channels) tensor.
    public func append(_ band: Tensor) throws {
        let shape = band.shape
        guard band.dtype == .uint8, shape.count == 3, shape[1] == sourceWidth, shape[2] == channels,
              shape[0] > 0, received + shape[0] <= sourceHeight else {
            throw ImageError.invalid("a band of \(shape) \(band.dtype) does not continue a \(sourceWidth)×\(sourceHeight)×\(channels) "
                                     + "uint8 image at row \(received)")
        }
        let n = shape[0]
        received += n
        if identity {
            firstPass.append(try band.contiguous())
        } else if verticalFirst {
            pending.append(band)
            try makeReadyRows()
        } else {
            // The horizontal pass on these rows alone, in pieces of about `bandValues`.
            let rows = max(1, bandValues / (sourceWidth * channels))
            for start in stride(from: 0, to: n, by: rows) {
                let k = min(rows, n - start)
                var p = try planes(band.narrow(dim: 0, start: start, length: k))
                if let horizontal { p = try horizontal.apply(p.view([channels * k, sourceWidth])).view([channels, k, outWidth]) }
                firstPass.append(try p.to(.uint8))
            }
        }
    }

    /// The resized image, once every source row has been appended.
    public func finish() throws -> Image {
        guard received == sourceHeight else {
            throw ImageError.invalid("the resize got \(received) of the source's \(sourceHeight) rows")
        }
        if identity {
            return try Image(hwc: firstPass.count == 1 ? firstPass[0] : try Tensor.cat(firstPass, dim: 0)).upright(orientation: orientation)
        }
        var t: Tensor  // (C, outHeight, outWidth) float64
        if verticalFirst {
            t = finished.count == 1 ? finished[0] : try Tensor.cat(finished, dim: 1)
        } else {
            let middle = firstPass.count == 1 ? firstPass[0] : try Tensor.cat(firstPass, dim: 1)  // (C, H, outWidth)
            firstPass = []
            if let vertical {
                let columns = max(1, bandValues / (sourceHeight * channels))
                let pieces = try stride(from: 0, to: outWidth, by: columns).map { start in
                    let n = min(columns, outWidth - start)
                    let x = try middle.narrow(dim: 2, start: start, length: n).to(.float64).transpose(1, 2).contiguous()
                    return try vertical.apply(x.view([channels * n, sourceHeight])).view([channels, n, outHeight]).transpose(1, 2)
                }
                t = pieces.count == 1 ? pieces[0] : try Tensor.cat(pieces, dim: 2)
            } else {
                t = try middle.to(.float64)
            }
        }
        t = try t.permute([1, 2, 0])
        if hasAlpha { t = try Image.unpremultiply(t) }
        return try Image(hwc: try t.to(.uint8).contiguous()).upright(orientation: orientation)
    }

    /// Vertical first: makes the output rows whose source rows have all arrived, a block at a time, and
    /// forgets the source rows no later output row reads. A short block is made early when the rows held
    /// pass 8 · `bandValues` bytes: when a block of outputs reads much of the source (a 32-row thumbnail of a
    /// tall or turned 8000-row image reads all of it), waiting for the whole block would hold the source whole.
    private func makeReadyRows() throws {
        guard let vertical else { return }
        var ready = nextRow
        while ready < outHeight && vertical.window(ready..<(ready + 1)).upperBound <= received { ready += 1 }
        func holdsTooMuch() -> Bool { (received - pendingStart) * sourceWidth * channels > 8 * bandValues }
        while ready - nextRow >= ResampleKernel.block || (ready > nextRow && (ready == outHeight || holdsTooMuch())) {
            let outputs = nextRow..<min(ready, nextRow + ResampleKernel.block)
            let window = vertical.window(outputs)
            if pending.count > 1 { pending = [try Tensor.cat(pending, dim: 0)] }
            let rows = try pending[0].narrow(dim: 0, start: window.lowerBound - pendingStart, length: window.count)
            // Column pieces keep the float64 copy near `bandValues`.
            let columns = max(1, bandValues / (window.count * channels))
            let pieces = try stride(from: 0, to: sourceWidth, by: columns).map { start in
                let n = min(columns, sourceWidth - start)
                let p = try planes(rows.narrow(dim: 1, start: start, length: n)).transpose(1, 2).contiguous()  // (C, n, k)
                return try vertical.apply(p.view([channels * n, window.count]), outputs: outputs, inputOffset: window.lowerBound)
                    .view([channels, n, outputs.count]).transpose(1, 2)
            }
            var t = pieces.count == 1 ? pieces[0] : try Tensor.cat(pieces, dim: 2)  // (C, rows, sourceWidth)
            if let horizontal {
                t = try horizontal.apply(t.contiguous().view([channels * outputs.count, sourceWidth]))
                    .view([channels, outputs.count, outWidth])
            }
            finished.append(try t.contiguous())
            nextRow = outputs.upperBound
            let keepFrom = min(nextRow < outHeight ? vertical.window(nextRow..<(nextRow + 1)).lowerBound : received, received)
            if keepFrom > pendingStart {
                let all = pending[0]
                let kept = all.size(0) - (keepFrom - pendingStart)
                pending = kept > 0 ? [try all.narrow(dim: 0, start: keepFrom - pendingStart, length: kept).contiguous()] : []
                pendingStart = keepFrom
            }
        }
    }

    /// A uint8 (rows, columns, C) band as float64 (C, rows, columns) planes, premultiplied where there is alpha.
    private func planes(_ band: Tensor) throws -> Tensor {
        var t = try band.to(.float64)
        if hasAlpha { t = try Image.premultiply(t) }
        return try t.permute([2, 0, 1]).contiguous()
    }
}
